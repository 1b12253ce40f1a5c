// The migration runner, in process: ordering, `--to`, the checksum history, rollback of a failing
// file, adoption of a database migrated by other means, the pgvector preflight and concurrency.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Db, Queryable, QueryResult, Row } from '../src/db/connect.js';
import { CheckFailedError, DatabaseError, MigrationError, UsageError } from '../src/errors.js';
import { checksumOf, loadMigrationFiles, type MigrationFile } from '../src/migrate/files.js';
import { ADOPTABLE_THROUGH, migrate, migrationStatus, type MigrateResult } from '../src/migrate/migrator.js';
import { migrationsDir } from '../src/paths.js';
import { runChecks } from '../src/verify/run.js';
import { freshTarget, onServer, type TestTarget } from './support/db.js';

const BASELINE = '20250830_legacy_baseline';
const HARDENING = '20250831_ingest_hardening';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-migrations-'));
  tempDirs.push(dir);
  return dir;
}

/** A writable copy of the shipped migrations folder. */
function copyOfMigrations(): string {
  const dir = tempDir();
  fs.cpSync(migrationsDir, dir, { recursive: true });
  return dir;
}

function write(dir: string, file: string, sql: string): void {
  fs.writeFileSync(path.join(dir, file), sql);
}

const names = (files: { name: string }[]): string[] => files.map((f) => f.name);

async function ledger(db: Queryable): Promise<{ name: string; checksum: string; adopted: boolean }[]> {
  if (!(await exists(db, 'omni_ingest.schema_migrations'))) return [];
  const { rows } = await db.query<{ name: string; checksum: string; adopted: boolean }>(
    'SELECT name, checksum, adopted FROM omni_ingest.schema_migrations ORDER BY name',
  );
  return rows;
}

async function exists(db: Queryable, relation: string): Promise<boolean> {
  const { rows } = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [relation]);
  return rows[0]?.present === true;
}

async function columnType(db: Queryable, table: string, column: string): Promise<string | undefined> {
  const { rows } = await db.query<{ data_type: string }>(
    `SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`,
    [table, column],
  );
  return rows[0]?.data_type;
}

/** What `omni-ingest migrate --adopt` passes (src/commands/migrate.ts). */
async function verifyAdoption(target: Db): Promise<{ ok: boolean; failures: string[] }> {
  const checks = await runChecks(target);
  const failures = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return { ok: failures.length === 0, failures };
}

/** The baseline and the hardening applied the way production got them: by hand, no ledger. */
async function applyByOtherMeans(db: Db): Promise<void> {
  const adoptable = loadMigrationFiles(migrationsDir).filter((f) => f.name <= ADOPTABLE_THROUGH);
  assert.deepEqual(names(adoptable), [BASELINE, HARDENING]);
  await db.transaction(async (tx) => {
    for (const file of adoptable) await tx.query(file.sql);
  });
}

interface Opened {
  db: Db;
  target: TestTarget;
  close(): Promise<void>;
}

async function openFresh(): Promise<Opened> {
  const target = await freshTarget();
  const db = await target.open();
  return {
    db,
    target,
    close: async () => {
      await db.close();
      await target.drop();
    },
  };
}

/** Runs `fn` on a fresh, empty database of its own. */
async function onFreshDb(fn: (db: Db) => Promise<void>): Promise<void> {
  const fresh = await openFresh();
  try {
    await fn(fresh.db);
  } finally {
    await fresh.close();
  }
}

describe('migrate --to and re-runs', () => {
  it('--to the baseline applies only it; a full migrate applies the rest; a third applies nothing', async () => {
    await onFreshDb(async (db) => {
      const files = loadMigrationFiles(migrationsDir);
      assert.deepEqual(names(files).slice(0, 2), [BASELINE, HARDENING]);
      const rest = names(files).slice(1);

      const first = await migrate(db, { files, to: BASELINE });
      assert.deepEqual(names(first.applied), [BASELINE]);
      assert.deepEqual(first.adopted, []);
      assert.deepEqual(first.pendingAfter, rest);
      assert.deepEqual(names(await ledger(db)), [BASELINE]);
      assert.equal(await columnType(db, 'raw_events', 'occurred_at'), 'timestamp without time zone');
      assert.equal(await exists(db, 'public.contact_identities'), false);
      assert.deepEqual(
        (await migrationStatus(db, files)).map((s) => [s.name, s.state]),
        files.map((f) => [f.name, f.name === BASELINE ? 'applied' : 'pending']),
      );

      const second = await migrate(db, { files });
      assert.deepEqual(names(second.applied), rest);
      assert.deepEqual(second.skipped, []);
      assert.deepEqual(second.pendingAfter, []);
      assert.equal(await columnType(db, 'raw_events', 'occurred_at'), 'timestamp with time zone');
      assert.equal(await exists(db, 'public.contact_identities'), true);

      const third = await migrate(db, { files });
      assert.deepEqual(third, { applied: [], adopted: [], skipped: [], pendingAfter: [] });

      const rows = await ledger(db);
      assert.deepEqual(
        rows.map((r) => [r.name, r.checksum, r.adopted]),
        files.map((f) => [f.name, f.checksum, false]),
      );
    });
  });

  it('--to accepts the file name with .sql; an unknown name is a usage error and applies nothing', async () => {
    await onFreshDb(async (db) => {
      const files = loadMigrationFiles(migrationsDir);
      await assert.rejects(migrate(db, { files, to: '20990101_nope' }), (err: unknown) => {
        assert.ok(err instanceof UsageError, String(err));
        assert.equal(err.exitCode, 2);
        assert.match(err.message, /unknown migration "20990101_nope"/);
        assert.match(err.hint ?? '', new RegExp(`${BASELINE}, ${HARDENING}`));
        return true;
      });
      assert.deepEqual(await ledger(db), []);
      assert.equal(await exists(db, 'public.raw_events'), false);

      const result = await migrate(db, { files, to: `${BASELINE}.sql` });
      assert.deepEqual(names(result.applied), [BASELINE]);
      assert.deepEqual(names(await ledger(db)), [BASELINE]);
    });
  });
});

describe('the migration history', () => {
  let fresh: Opened;
  let db: Db;
  let dir: string;
  let original: MigrationFile[];

  before(async () => {
    fresh = await openFresh();
    db = fresh.db;
    dir = copyOfMigrations();
    original = loadMigrationFiles(dir);
    const result = await migrate(db, { files: original });
    assert.deepEqual(names(result.applied), names(original));
  });
  after(async () => {
    await fresh?.close();
  });

  it('a CRLF checkout of applied files is not a change', async () => {
    for (const file of original) {
      const crlf = file.sql.replace(/\r?\n/g, '\r\n');
      assert.notEqual(crlf, file.sql, `${file.name} has no line breaks to convert`);
      fs.writeFileSync(file.file, crlf);
    }
    try {
      const files = loadMigrationFiles(dir);
      assert.ok(files.every((f) => f.sql.includes('\r\n')));
      assert.deepEqual(
        files.map((f) => f.checksum),
        original.map((f) => f.checksum),
      );
      assert.equal(checksumOf('a;\r\nb;\r\n'), checksumOf('a;\nb;\n'));
      assert.notEqual(checksumOf('a;\nb;\n'), checksumOf('a;\nb;\n-- x\n'));
      assert.deepEqual(
        (await migrationStatus(db, files)).map((s) => s.state),
        files.map(() => 'applied'),
      );
      assert.deepEqual(await migrate(db, { files }), { applied: [], adopted: [], skipped: [], pendingAfter: [] });
    } finally {
      for (const file of original) fs.writeFileSync(file.file, file.sql);
    }
  });

  it('a new file sorting before the last applied one is refused as out of order', async () => {
    write(dir, '20250101_early_table.sql', 'CREATE TABLE early_table (id int);\n');
    try {
      const files = loadMigrationFiles(dir);
      await assert.rejects(migrate(db, { files }), (err: unknown) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.equal(err.exitCode, 1);
        assert.match(err.message, new RegExp(`pending migration 20250101_early_table sorts before the applied ${original.at(-1)?.name}`));
        assert.match(err.hint ?? '', /after the last applied migration/);
        return true;
      });
      assert.equal(await exists(db, 'public.early_table'), false);
      assert.deepEqual(names(await ledger(db)), names(original));
    } finally {
      fs.rmSync(path.join(dir, '20250101_early_table.sql'));
    }
  });

  it('a badly named file is refused when the folder is read', () => {
    write(dir, 'add_stuff.sql', 'SELECT 1;\n');
    try {
      assert.throws(
        () => loadMigrationFiles(dir),
        (err: unknown) => {
          assert.ok(err instanceof MigrationError, String(err));
          assert.match(err.message, /migration file add_stuff\.sql is not named YYYYMMDD\[HHMM\]_name\.sql/);
          return true;
        },
      );
    } finally {
      fs.rmSync(path.join(dir, 'add_stuff.sql'));
    }
    for (const bad of ['2025083_short.sql', '20250830-dash.sql', '20250830_Upper.sql']) {
      const other = tempDir();
      write(other, bad, 'SELECT 1;\n');
      assert.throws(() => loadMigrationFiles(other), MigrationError, bad);
    }
  });

  it('a ledger row without a file is shown as unknown and refused', async () => {
    const ghost = '20991231_from_a_newer_version';
    await db.query(`INSERT INTO omni_ingest.schema_migrations (name, checksum) VALUES ($1, 'abc123')`, [ghost]);
    try {
      const statuses = await migrationStatus(db, original);
      assert.deepEqual(statuses.at(-1), {
        name: ghost,
        state: 'unknown',
        checksum: null,
        appliedChecksum: 'abc123',
        appliedAt: statuses.at(-1)?.appliedAt,
        adopted: false,
      });
      assert.match(statuses.at(-1)?.appliedAt ?? '', /^\d{4}-\d\d-\d\dT/);
      await assert.rejects(migrate(db, { files: original }), (err: unknown) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.match(err.message, new RegExp(`does not know: ${ghost}`));
        assert.match(err.hint ?? '', /upgrade omni-ingest/);
        return true;
      });
    } finally {
      await db.query('DELETE FROM omni_ingest.schema_migrations WHERE name = $1', [ghost]);
    }
  });

  it('an applied file edited afterwards stops migrate, and status shows it as changed', async () => {
    const edited = original.find((f) => f.name === BASELINE);
    assert.ok(edited);
    fs.appendFileSync(edited.file, '\n-- a harmless-looking afterthought\nSELECT 1;\n');
    write(dir, '20991231_after_the_edit.sql', 'CREATE TABLE after_the_edit (id int);\n');
    const files = loadMigrationFiles(dir);
    const changed = files.find((f) => f.name === BASELINE);
    assert.ok(changed);
    assert.notEqual(changed.checksum, edited.checksum);

    await assert.rejects(migrate(db, { files }), (err: unknown) => {
      assert.ok(err instanceof MigrationError, String(err));
      assert.match(err.message, new RegExp(`migration ${BASELINE} changed after it was applied`));
      assert.equal(err.exitCode, 2, 'a configuration error: nothing runs until the file is restored');
      assert.match(err.message, new RegExp(`recorded checksum ${edited.checksum.slice(0, 12)}, file now ${changed.checksum.slice(0, 12)}`));
      assert.match(err.hint ?? '', /new migration file/);
      return true;
    });

    const statuses = await migrationStatus(db, files);
    const byName = new Map(statuses.map((s) => [s.name, s]));
    assert.equal(byName.get(BASELINE)?.state, 'changed');
    assert.equal(byName.get(BASELINE)?.appliedChecksum, edited.checksum);
    assert.equal(byName.get(BASELINE)?.checksum, changed.checksum);
    assert.equal(byName.get(HARDENING)?.state, 'applied');
    assert.equal(byName.get('20991231_after_the_edit')?.state, 'pending');
    assert.equal(await exists(db, 'public.after_the_edit'), false);
    assert.deepEqual(names(await ledger(db)), names(original));
  });
});

describe('migration ordering', () => {
  // SPEC §3: files are applied in name order. loadMigrationFiles sorts by code unit, where
  // `202509011200_b` < `20250901_a` ('1' < '_'), so that is the order they are applied in.
  it('status lists migrations in the order they are applied, and out-of-order files are caught across 8- and 12-digit names', async () => {
    await onFreshDb(async (db) => {
      const dir = tempDir();
      write(dir, '20250901_a.sql', 'CREATE TABLE order_a (id int);\n');
      write(dir, '202509011200_b.sql', 'CREATE TABLE order_b (id int);\n');
      const files = loadMigrationFiles(dir);
      assert.deepEqual(names(files), ['202509011200_b', '20250901_a']);
      const result = await migrate(db, { files });
      assert.deepEqual(names(result.applied), ['202509011200_b', '20250901_a']);
      assert.deepEqual(names(await migrationStatus(db, files)), names(files));

      // Sorts between the two applied files: a fresh database would get b, c, a; this one would get b, a, c.
      write(dir, '202509011300_c.sql', 'CREATE TABLE order_c (id int);\n');
      const withC = loadMigrationFiles(dir);
      assert.deepEqual(names(withC), ['202509011200_b', '202509011300_c', '20250901_a']);
      await assert.rejects(migrate(db, { files: withC }), (err: unknown) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.match(err.message, /pending migration 202509011300_c sorts before the applied 20250901_a/);
        return true;
      });
      assert.equal(await exists(db, 'public.order_c'), false);
    });
  });
});

describe('a failing migration', () => {
  it('is rolled back as a whole and not recorded; earlier files stay applied', async () => {
    await onFreshDb(async (db) => {
      const dir = tempDir();
      write(dir, '20250101_first.sql', 'CREATE TABLE t0 (id int);\n');
      write(dir, '20250102_boom.sql', 'CREATE TABLE t1 (id int); SELECT 1/0;\n');
      write(dir, '20250103_never.sql', 'CREATE TABLE t2 (id int);\n');
      const files = loadMigrationFiles(dir);
      await assert.rejects(migrate(db, { files }), (err: unknown) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.equal(err.exitCode, 1);
        assert.match(err.message, /migration 20250102_boom failed and was rolled back: division by zero/);
        assert.ok(err.cause instanceof DatabaseError, String(err.cause));
        assert.equal(err.cause.sqlState, '22012');
        return true;
      });
      assert.equal(await exists(db, 'public.t0'), true);
      assert.equal(await exists(db, 'public.t1'), false);
      assert.equal(await exists(db, 'public.t2'), false);
      assert.deepEqual(names(await ledger(db)), ['20250101_first']);
      assert.deepEqual(
        (await migrationStatus(db, files)).map((s) => [s.name, s.state]),
        [
          ['20250101_first', 'applied'],
          ['20250102_boom', 'pending'],
          ['20250103_never', 'pending'],
        ],
      );
    });
  });
});

describe('a database migrated by other means', () => {
  it('is refused by a plain migrate with a hint to --adopt, then adopted after verification', async () => {
    await onFreshDb(async (db) => {
      await applyByOtherMeans(db);
      const dir = copyOfMigrations();
      write(dir, '20991231_after_adoption.sql', 'CREATE TABLE after_adoption (id int);\n');
      const files = loadMigrationFiles(dir);
      const adoptable = names(files.filter((f) => f.name <= ADOPTABLE_THROUGH));
      const later = names(files.filter((f) => f.name > ADOPTABLE_THROUGH));
      assert.deepEqual(adoptable, [BASELINE, HARDENING]);
      assert.ok(later.includes('20991231_after_adoption'));

      await assert.rejects(migrate(db, { files }), (err: unknown) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.match(err.message, /already has the ingestion schema, applied by other means; nothing was migrated/);
        assert.match(err.hint ?? '', /--adopt/);
        return true;
      });
      assert.deepEqual(await ledger(db), []);
      assert.equal(await exists(db, 'public.after_adoption'), false);
      assert.equal((await verifyAdoption(db)).ok, true);

      let verified = 0;
      const result: MigrateResult = await migrate(db, {
        files,
        adopt: true,
        verifyAdoption: async (target) => {
          verified++;
          return verifyAdoption(target);
        },
      });
      assert.equal(verified, 1);
      assert.deepEqual(result.adopted, adoptable);
      assert.deepEqual(names(result.applied), later);
      assert.deepEqual(result.pendingAfter, []);
      assert.equal(await exists(db, 'public.after_adoption'), true);
      assert.deepEqual(
        (await ledger(db)).map((r) => [r.name, r.checksum, r.adopted]),
        files.map((f) => [f.name, f.checksum, f.name <= ADOPTABLE_THROUGH]),
      );
      const statuses = await migrationStatus(db, files);
      assert.deepEqual(
        statuses.map((s) => [s.name, s.state, s.adopted]),
        files.map((f) => [f.name, 'applied', f.name <= ADOPTABLE_THROUGH]),
      );

      // Adopting again records nothing new.
      const again = await migrate(db, { files, adopt: true, verifyAdoption });
      assert.deepEqual(again, { applied: [], adopted: [], skipped: [], pendingAfter: [] });
    });
  });

  it('is not adopted when a promise is broken: exit 3, the failed check named, nothing recorded', async () => {
    await onFreshDb(async (db) => {
      await applyByOtherMeans(db);
      await db.query('DROP POLICY raw_events_select_own ON public.raw_events');
      const files = loadMigrationFiles(migrationsDir);
      await assert.rejects(migrate(db, { files, adopt: true, verifyAdoption }), (err: unknown) => {
        assert.ok(err instanceof CheckFailedError, String(err));
        assert.equal(err.exitCode, 3);
        assert.match(err.message, /refusing to adopt/);
        assert.match(err.message, /\(1 failed checks\)/);
        assert.match(err.message, /✗ row level security on raw_events: no SELECT policy for authenticated with user_id = auth\.uid\(\)/);
        assert.match(err.hint ?? '', /nothing was recorded/);
        return true;
      });
      assert.deepEqual(await ledger(db), []);
      // Nor did it fall back to running the migrations.
      assert.equal(await exists(db, 'public.after_adoption'), false);
    });
  });
});

/** A real Db whose server seems to lack pgvector: `pg_available_extensions` answers no rows. */
function withoutPgvector(inner: Db): Db & { asked: number } {
  const proxy = {
    asked: 0,
    kind: inner.kind,
    target: inner.target,
    maxConnections: inner.maxConnections,
    async query<R extends object = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      if (/pg_available_extensions/.test(sql)) {
        proxy.asked++;
        return { rowCount: 0, rows: [] };
      }
      return inner.query<R>(sql, params);
    },
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return inner.transaction(fn);
    },
    session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
      return inner.session(fn);
    },
    close(): Promise<void> {
      return inner.close();
    },
  };
  return proxy;
}

describe('pgvector missing on the server', () => {
  it('stops migrate before anything is applied, with the install hint', async () => {
    await onFreshDb(async (real) => {
      const db = withoutPgvector(real);
      const files = loadMigrationFiles(migrationsDir);
      await assert.rejects(migrate(db, { files }), (err: unknown) => {
        assert.ok(err instanceof DatabaseError, String(err));
        assert.equal(err.code, 'pgvector_missing');
        assert.equal(err.exitCode, 1);
        assert.match(err.message, /pgvector is not installed/);
        assert.ok(err.message.includes(real.target), err.message);
        assert.match(err.hint ?? '', /install-pgvector/);
        return true;
      });
      assert.ok(db.asked >= 1);
      assert.equal(await exists(real, 'public.raw_events'), false);
      assert.deepEqual(await ledger(real), []);

      // The baseline alone does not need pgvector.
      const baseline = await migrate(db, { files, to: BASELINE });
      assert.deepEqual(names(baseline.applied), [BASELINE]);
      await assert.rejects(migrate(db, { files }), (err: unknown) => err instanceof DatabaseError && err.code === 'pgvector_missing');
      assert.deepEqual(names(await ledger(real)), [BASELINE]);
      assert.equal(await columnType(real, 'raw_events', 'occurred_at'), 'timestamp without time zone');
    });
  });
});

describe('concurrent migrate in process', { skip: onServer ? false : 'needs a real server (two connections)' }, () => {
  it('two migrators on two connections apply every migration exactly once', async () => {
    const files = loadMigrationFiles(migrationsDir);
    for (let round = 1; round <= 3; round++) {
      const target = await freshTarget();
      const [one, two] = await Promise.all([target.open(), target.open()]);
      try {
        assert.ok(one && two);
        const results = await Promise.all([migrate(one, { files }), migrate(two, { files })]);
        const applied = results.flatMap((r) => names(r.applied));
        assert.equal(applied.length, files.length, `round ${round}: applied ${applied.join(', ')}`);
        assert.deepEqual([...applied].sort(), names(files), `round ${round}: applied twice or missed`);
        for (const r of results) {
          assert.deepEqual(r.pendingAfter, []);
          // Each saw every file pending: it applied it, or found it applied once it got the lock.
          assert.deepEqual([...names(r.applied), ...r.skipped].sort(), names(files), `round ${round}`);
        }
        const rows = await ledger(one);
        assert.deepEqual(names(rows), names(files));
      } finally {
        await one?.close();
        await two?.close();
        await target.drop();
      }
    }
  });
});
