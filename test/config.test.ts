// Configuration (flags over environment over defaults), secret masking and the mapping of
// driver/server errors to omni-ingest errors. Pure unit tests: no database.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_DATA_DIR, maskUrl, resolveConfig, secretsOf, type Config } from '../src/config.js';
import { mapPgError } from '../src/db/pg-errors.js';
import { BusyError, ConfigError, DatabaseError, type OmniError, UsageError } from '../src/errors.js';

const CWD = path.resolve('/srv/crm');

function configError(fn: () => unknown): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.exitCode, 2);
  assert.equal(caught.code, 'config');
  return caught;
}

describe('resolveConfig', () => {
  it('has defaults: the embedded database under the working directory, colour and progress on', () => {
    assert.deepEqual(resolveConfig({}, {}, CWD), {
      databaseUrl: undefined,
      dataDir: path.join(CWD, DEFAULT_DATA_DIR),
      json: false,
      quiet: false,
      verbose: false,
      progress: true,
      color: true,
      openai: { apiKey: undefined, baseUrl: undefined },
      debug: false,
      reconnectForMs: 120_000,
      progressIntervalMs: 30_000,
    } satisfies Config);
  });

  it('takes a flag over the environment, and the environment over the default', () => {
    const env = { DATABASE_URL: 'postgres://env@env-host:5432/envdb', OMNI_INGEST_DATA_DIR: 'env-data' };
    const both = resolveConfig({ databaseUrl: 'postgres://flag@flag-host:5432/flagdb', dataDir: 'flag-data' }, env, CWD);
    assert.equal(both.databaseUrl, 'postgres://flag@flag-host:5432/flagdb');
    assert.equal(both.dataDir, path.join(CWD, 'flag-data'));
    const envOnly = resolveConfig({}, env, CWD);
    assert.equal(envOnly.databaseUrl, 'postgres://env@env-host:5432/envdb');
    assert.equal(envOnly.dataDir, path.join(CWD, 'env-data'));
    assert.equal(resolveConfig({ databaseUrl: undefined }, env, CWD).databaseUrl, 'postgres://env@env-host:5432/envdb');
  });

  it('counts an empty variable as unset', () => {
    const config = resolveConfig({}, { DATABASE_URL: '', OMNI_INGEST_DATA_DIR: '' }, CWD);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, path.join(CWD, DEFAULT_DATA_DIR));
  });

  it('accepts postgresql:// as well as postgres://', () => {
    assert.equal(resolveConfig({}, { DATABASE_URL: 'postgresql://u@h/db' }, CWD).databaseUrl, 'postgresql://u@h/db');
  });

  it('refuses a non-PostgreSQL URL from the environment, naming flag, variable and source, never the password', () => {
    const err = configError(() => resolveConfig({}, { DATABASE_URL: 'mysql://root:hunter2@localhost/db' }, CWD));
    assert.ok(err.message.includes('--database-url / DATABASE_URL'), err.message);
    assert.ok(err.message.includes('(from DATABASE_URL)'), err.message);
    assert.match(err.message, /is a mysql:\/\/ URL; omni-ingest needs PostgreSQL/);
    assert.doesNotMatch(err.message, /hunter2/);
  });

  it('blames the flag for garbage given as --database-url, even over a valid variable', () => {
    const err = configError(() => resolveConfig({ databaseUrl: 'not a url' }, { DATABASE_URL: 'postgres://u@h/db' }, CWD));
    assert.ok(err.message.includes('invalid --database-url / DATABASE_URL (from --database-url)'), err.message);
    assert.match(err.message, /is not a URL/);
  });

  it('refuses an empty --data-dir', () => {
    const err = configError(() => resolveConfig({ dataDir: '' }, {}, CWD));
    assert.ok(err.message.includes('--data-dir / OMNI_INGEST_DATA_DIR (from --data-dir)'), err.message);
    assert.match(err.message, /must not be empty/);
  });

  it('refuses --quiet with --verbose', () => {
    const err = configError(() => resolveConfig({ quiet: true, verbose: true }, {}, CWD));
    assert.match(err.message, /--quiet and --verbose cannot be used together/);
    assert.equal(resolveConfig({ quiet: true }, {}, CWD).quiet, true);
    assert.equal(resolveConfig({ verbose: true }, {}, CWD).verbose, true);
  });

  it('makes the data folder absolute relative to cwd, and keeps an absolute one', () => {
    assert.equal(resolveConfig({ dataDir: 'db/here' }, {}, CWD).dataDir, path.join(CWD, 'db', 'here'));
    assert.equal(resolveConfig({ dataDir: '../elsewhere' }, {}, CWD).dataDir, path.resolve(CWD, '..', 'elsewhere'));
    const absolute = path.resolve('/var/lib/omni');
    assert.equal(resolveConfig({}, { OMNI_INGEST_DATA_DIR: absolute }, CWD).dataDir, absolute);
    assert.ok(path.isAbsolute(resolveConfig({}, {}, 'relative/cwd').dataDir));
  });

  it('turns colour off with NO_COLOR (any non-empty value) or FORCE_COLOR=0', () => {
    assert.equal(resolveConfig({}, { NO_COLOR: '1' }, CWD).color, false);
    assert.equal(resolveConfig({}, { NO_COLOR: 'yes' }, CWD).color, false);
    assert.equal(resolveConfig({}, { NO_COLOR: '' }, CWD).color, true);
    assert.equal(resolveConfig({}, { FORCE_COLOR: '0' }, CWD).color, false);
  });

  it('passes the output flags through', () => {
    const config = resolveConfig({ json: true, progress: false }, {}, CWD);
    assert.equal(config.json, true);
    assert.equal(config.progress, false);
  });
});

describe('maskUrl', () => {
  it('hides the password and keeps user, host, port and database', () => {
    assert.equal(maskUrl('postgres://app:s3cretpw@db.example.com:6543/crm'), 'postgres://app:****@db.example.com:6543/crm');
  });

  it('hides a URL-encoded password', () => {
    const masked = maskUrl('postgresql://app:p%40ss%2Fw%3Ard@10.0.0.5:5432/crm_prod');
    assert.equal(masked, 'postgresql://app:****@10.0.0.5:5432/crm_prod');
    assert.doesNotMatch(masked, /p%40ss|p@ss|w%3Ard/);
  });

  it('hides password-like query parameters and keeps the others', () => {
    const masked = maskUrl('postgres://app@db.example.com:5432/crm?sslmode=require&password=hunter2&sslpassword=keypass');
    assert.doesNotMatch(masked, /hunter2|keypass/);
    const url = new URL(masked);
    assert.equal(url.searchParams.get('password'), '****');
    assert.equal(url.searchParams.get('sslpassword'), '****');
    assert.equal(url.searchParams.get('sslmode'), 'require');
    assert.equal(url.host, 'db.example.com:5432');
    assert.equal(url.pathname, '/crm');
  });

  it('leaves a URL without secrets as it is, and never echoes an unparseable one', () => {
    assert.equal(maskUrl('postgres://app@db.example.com:5432/crm'), 'postgres://app@db.example.com:5432/crm');
    assert.equal(maskUrl('not a url with pw=secret'), '<unparseable url>');
  });
});

describe('secretsOf', () => {
  const base = resolveConfig({}, {}, CWD);

  it('returns the URL password, raw and decoded, and the API keys that are set', () => {
    const config = { ...base, databaseUrl: 'postgres://app:p%40ssw0rd@h:5432/db' };
    const secrets = secretsOf(config, { OPENAI_API_KEY: 'sk-test-abcdef123456', PGPASSWORD: 'pgpw1234' });
    assert.ok(secrets.includes('p%40ssw0rd'), secrets.join(','));
    assert.ok(secrets.includes('p@ssw0rd'), secrets.join(','));
    assert.ok(secrets.includes('sk-test-abcdef123456'), secrets.join(','));
    assert.ok(secrets.includes('pgpw1234'), secrets.join(','));
  });

  it('returns nothing when there is nothing to hide', () => {
    assert.deepEqual(secretsOf(base, {}), []);
    assert.deepEqual(secretsOf({ ...base, databaseUrl: 'postgres://app@h/db' }, { OPENAI_API_KEY: '' }), []);
  });

  it('keeps a password with a literal % that is not an escape', () => {
    const secrets = secretsOf({ ...base, databaseUrl: 'postgres://app:100%sure@h:5432/db' }, {});
    assert.ok(secrets.includes('100%sure'), `got [${secrets.join(', ')}]`);
  });
});

describe('mapPgError', () => {
  const target = 'postgres://app:****@db.example.com:5432/crm';

  function pgError(code: string, message: string, extra: { hint?: string; detail?: string } = {}): Error {
    return Object.assign(new Error(message), { code }, extra);
  }

  function asDatabaseError(err: OmniError): DatabaseError {
    assert.ok(err instanceof DatabaseError, `expected a DatabaseError, got ${err.name}: ${err.message}`);
    return err;
  }

  it('ECONNREFUSED is a connection error naming the target', () => {
    const cause = pgError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:5432');
    const err = asDatabaseError(mapPgError(cause, target));
    assert.equal(err.code, 'connection');
    assert.equal(err.exitCode, 1);
    assert.equal(err.message, `cannot connect to PostgreSQL at ${target}: ECONNREFUSED`);
    assert.match(err.hint ?? '', /is the server running/);
    assert.equal(err.cause, cause);
  });

  it('a dropped connection without a code is still a connection error', () => {
    const err = asDatabaseError(mapPgError(new Error('Connection terminated unexpectedly'), target));
    assert.equal(err.code, 'connection');
    assert.ok(err.message.includes(target));
  });

  it('3D000 (no such database) is a configuration error (exit 2) that says to create it, never retried as a lost connection', () => {
    const err = asDatabaseError(mapPgError(pgError('3D000', 'database "crm" does not exist'), target));
    assert.equal(err.sqlState, '3D000');
    assert.equal(err.code, 'no_database');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /database does not exist at .*: database "crm" does not exist/);
    assert.match(err.hint ?? '', /create it first \(createdb\)/);
  });

  it('0A000 about extension "vector" is pgvector_missing with the install hint', () => {
    const err = asDatabaseError(mapPgError(pgError('0A000', 'extension "vector" is not available'), target));
    assert.equal(err.code, 'pgvector_missing');
    assert.equal(err.sqlState, '0A000');
    assert.ok(err.message.includes(target));
    assert.match(err.hint ?? '', /install-pgvector\.sh/);
  });

  it('0A000 about something else is not mistaken for pgvector', () => {
    const err = asDatabaseError(mapPgError(pgError('0A000', 'cannot ALTER TABLE "t" because it is being used'), target));
    assert.equal(err.code, 'database');
    assert.equal(err.sqlState, '0A000');
    assert.equal(err.hint, undefined);
  });

  it('55P03 (lock not available) is busy: exit 75', () => {
    const err = mapPgError(pgError('55P03', 'canceling statement due to lock timeout'), target);
    assert.ok(err instanceof BusyError, err.name);
    assert.equal(err.exitCode, 75);
    assert.equal(err.code, 'busy');
    assert.match(err.hint ?? '', /retry later/);
  });

  it('42501 is a permission error', () => {
    const err = asDatabaseError(mapPgError(pgError('42501', 'permission denied for table raw_events'), target));
    assert.equal(err.code, 'permission');
    assert.equal(err.sqlState, '42501');
    assert.match(err.message, /permission denied at .*: permission denied for table raw_events/);
  });

  it("an unknown SQLSTATE keeps the state, the detail and the server's hint", () => {
    const err = asDatabaseError(
      mapPgError(pgError('P0001', 'refusing to add the unique keys', { detail: '3 groups', hint: 'resolve the duplicates' }), target),
    );
    assert.equal(err.code, 'database');
    assert.equal(err.exitCode, 1);
    assert.equal(err.sqlState, 'P0001');
    assert.equal(err.message, 'refusing to add the unique keys (3 groups)');
    assert.equal(err.hint, 'resolve the duplicates');
  });

  it('a non-SQLSTATE code is not reported as one', () => {
    const err = asDatabaseError(mapPgError(pgError('ERR_SOMETHING', 'odd'), target));
    assert.equal(err.sqlState, undefined);
  });

  it('passes an OmniError through unchanged', () => {
    const usage = new UsageError('bad flag', { hint: 'see --help' });
    assert.equal(mapPgError(usage, target), usage);
    const busy = new BusyError('busy');
    assert.equal(mapPgError(busy, target), busy);
  });
});
