// The first run and its mistakes (issue 12, items 4 and 5): an un-migrated database, a data
// folder that is not one, a wrong database name or role, a migration changed after it was
// applied. Each is a configuration error (exit 2) with a hint, quickly: never a hang, a stack of
// minified PGlite source, or a database created where the operator did not mean one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDb } from '../src/db/connect.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir } from '../src/paths.js';
import { runCli } from './support/cli.js';
import { freshTarget, migratedTarget, onServer, poolerUrl, serverUrl, type TestTarget } from './support/db.js';

const MIGRATIONS = loadMigrationFiles(migrationsDir).length;
const USER = '11111111-1111-4111-8111-111111111111';
const FIXTURE = 'fixtures/demo/gmail.ndjson';

/** Every command that reads or writes the pipeline's tables, with the arguments it needs to start. */
const COMMANDS: string[][] = [
  ['runs', 'list'],
  ['runs', 'show', '5cdb29c3-536c-4480-ab67-68f878226939'],
  ['import', FIXTURE, '--provider', 'gmail', '--user', USER],
  ['normalize'],
  ['resolve'],
  ['embed'],
  ['insights'],
  ['timeline'],
  ['backfill', '--since', '30d'],
  ['purge', 'insights'],
  ['stats'],
  ['search', 'pricing'],
  ['embeddings', 'status'],
  ['errors', 'retry', '--all', '--dry-run'],
];

/** Under a second of our own work; the rest is Node starting and the machine being shared. */
const QUICK_MS = 5_000;

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-first-run-'));
}

async function timed(args: string[], env?: Record<string, string | undefined>) {
  const started = Date.now();
  const r = await runCli(args, { timeoutMs: 60_000, ...(env ? { env } : {}) });
  return { ...r, ms: Date.now() - started };
}

describe('an embedded data folder that does not exist yet', { skip: onServer ? 'embedded only' : false }, () => {
  let root: string;
  before(() => {
    root = scratch();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('every command but migrate, demo and doctor exits 2 at once, says to migrate, and creates nothing', async () => {
    const dataDir = path.join(root, 'db');
    for (const command of [...COMMANDS, ['verify'], ['migrate', 'status']]) {
      const r = await timed(['--data-dir', dataDir, ...command], { OPENAI_API_KEY: undefined });
      const what = `${command.join(' ')}: ${r.stderr}`;
      assert.equal(r.code, 2, what);
      // Nothing ran: no word about the embedder it would have used.
      assert.doesNotMatch(r.stderr, /local embedder/, what);
      assert.match(
        r.stderr,
        new RegExp(
          `the database is not migrated \\(0 of ${MIGRATIONS} applied; there is no embedded database in .*db yet\\): run \`omni-ingest migrate\``,
        ),
        what,
      );
      assert.match(r.stderr, /hint: .*--data-dir \/ OMNI_INGEST_DATA_DIR/, what);
      assert.ok(r.stderr.length < 1000, `${command.join(' ')} printed ${r.stderr.length} bytes`);
      assert.ok(r.ms < QUICK_MS, `${command.join(' ')} took ${r.ms} ms`);
      assert.equal(fs.existsSync(dataDir), false, `${command.join(' ')} created ${dataDir}`);
    }
  });

  it('doctor reports it (exit 3) without creating it; the environment variable is honoured the same way', async () => {
    const dataDir = path.join(root, 'elsewhere');
    const r = await timed(['doctor', '--json'], { OMNI_INGEST_DATA_DIR: dataDir });
    assert.equal(r.code, 3, r.stderr);
    const body = r.json<{ findings: { name: string; ok: boolean; detail: string }[] }>();
    assert.deepEqual(
      body.findings.map((f) => [f.name, f.ok]),
      [['connect', false]],
    );
    assert.match(body.findings[0]!.detail, /no embedded database in .*elsewhere/);
    assert.equal(fs.existsSync(dataDir), false);
  });

  it('migrate creates it, says so, and then the other commands run', async () => {
    const dataDir = path.join(root, 'made');
    const m = await runCli(['--data-dir', dataDir, 'migrate']);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /creating the embedded database in .*made/);
    const r = await runCli(['--data-dir', dataDir, 'runs', 'list']);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('a data folder that is not a database', { skip: onServer ? 'embedded only' : false }, () => {
  let root: string;
  before(() => {
    root = scratch();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a file, /dev/null, a folder of other files or a path through a file is refused naming the flag and the variable', async () => {
    const file = path.join(root, 'notes.txt');
    fs.writeFileSync(file, 'hello');
    const full = path.join(root, 'photos');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'a.jpg'), 'x');
    const cases: [string, RegExp][] = [
      [file, /is a file, not a folder/],
      ['/dev/null', /is a device or special file, not a folder/],
      [full, /is a folder of other files, not an embedded database/],
      [path.join(file, 'db'), /is inside a file, not a folder/],
    ];
    for (const [dataDir, why] of cases) {
      for (const command of [['migrate'], ['runs', 'list'], ['demo']]) {
        const r = await timed(['--data-dir', dataDir, ...command]);
        const what = `${dataDir} ${command.join(' ')}: ${r.stderr}`;
        assert.equal(r.code, 2, what);
        assert.match(r.stderr, /--data-dir \/ OMNI_INGEST_DATA_DIR/, what);
        assert.match(r.stderr, why, what);
        assert.doesNotMatch(r.stderr, /\[object Object\]/, what);
        assert.ok(r.ms < QUICK_MS, `${what} took ${r.ms} ms`);
      }
    }
    assert.deepEqual(fs.readdirSync(full), ['a.jpg']);
    assert.equal(fs.readFileSync(file, 'utf8'), 'hello');
  });

  it('a folder that cannot be made there (no one writes in /proc, not even root) is refused with a hint, not a bare ENOENT', async () => {
    const r = await timed(['--data-dir', '/proc/omni-ingest-nowhere', 'migrate']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot use \/proc\/omni-ingest-nowhere for the embedded database/);
    assert.match(r.stderr, /hint: .*--data-dir \/ OMNI_INGEST_DATA_DIR/);
  });
});

describe('a database that exists but is not migrated', () => {
  let target: TestTarget;
  before(async () => {
    target = await freshTarget();
  });
  after(async () => {
    await target.drop();
  });

  it('every command but migrate, demo and doctor exits 2 with how many migrations are applied, and never hangs', async () => {
    // Those the issue saw hang or crash, and one of each other kind (the check is one, in run.ts).
    const seen = ['runs', 'import', 'normalize', 'embed', 'backfill', 'purge', 'embeddings', 'errors'];
    for (const command of [...COMMANDS.filter((c) => seen.includes(c[0]!)), ['verify']]) {
      const r = await timed([...target.args, ...command], { OPENAI_API_KEY: undefined });
      assert.doesNotMatch(r.stderr, /local embedder/, `${command.join(' ')}: ${r.stderr}`);
      const what = `${command.join(' ')}: ${r.stderr}`;
      assert.equal(r.code, 2, what);
      assert.match(
        r.stderr,
        new RegExp(`the database is not migrated \\(0 of ${MIGRATIONS} applied\\): run \`omni-ingest migrate\``),
        what,
      );
      assert.ok(r.stderr.length < 1000, `${command.join(' ')} printed ${r.stderr.length} bytes`);
      // The embedded database takes a second or two to open; a hang would hit runCli's limit.
      assert.ok(r.ms < (onServer ? QUICK_MS : 20_000), `${command.join(' ')} took ${r.ms} ms`);
    }
  });

  it('--json prints the error as its one document', async () => {
    const r = await runCli([...target.args, '--json', 'runs', 'list']);
    assert.equal(r.code, 2);
    const body = r.json<{ ok: boolean; error: { code: string; message: string } }>();
    assert.equal(body.ok, false);
    assert.equal(body.error.code, 'config');
    assert.match(body.error.message, /not migrated/);
  });

  it('half migrated: says how many of how many', async () => {
    const db = await target.open();
    try {
      await migrate(db, { files: loadMigrationFiles(migrationsDir), to: '20250831_ingest_hardening' });
    } finally {
      await db.close();
    }
    const r = await runCli([...target.args, 'stats']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`not migrated \\(2 of ${MIGRATIONS} applied\\)`));
    // verify checks the schema however it was applied: here it is, so it runs.
    const v = await runCli([...target.args, 'verify', '--json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

describe('a migration file changed after it was applied', () => {
  let target: TestTarget;
  before(async () => {
    target = await migratedTarget();
    const db = await target.open();
    try {
      await db.query(`UPDATE omni_ingest.schema_migrations SET checksum = repeat('0', 64) WHERE name = '20261129_stage_queues'`);
    } finally {
      await db.close();
    }
  });
  after(async () => {
    await target.drop();
  });

  it('is a configuration error that names it, for migrate itself and every command that needs the schema', async () => {
    for (const command of [['migrate'], ['stats'], ['normalize'], ['runs', 'list']]) {
      const r = await runCli([...target.args, ...command]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /migration 20261129_stage_queues changed after it was applied/);
      assert.match(r.stderr, /hint: restore the file/);
    }
  });
});

describe('the embedded database after a failed statement', { skip: onServer ? 'embedded only' : false }, () => {
  it('keeps its one connection, answers the next query and closes cleanly', async () => {
    const root = scratch();
    try {
      const db = await openDb({ databaseUrl: undefined, dataDir: path.join(root, 'db') });
      // A parameterised statement fails at Parse; the Bind, Execute and Sync queued behind it used
      // to run on a replacement connection or after close, hanging or crashing the process.
      await assert.rejects(db.query('SELECT * FROM no_such_table WHERE id = $1', [1]), /no_such_table/);
      assert.deepEqual((await db.query<{ x: number }>('SELECT $1::int AS x', [7])).rows, [{ x: 7 }]);
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          await tx.query('SELECT * FROM no_such_table WHERE id = $1', [1]);
        }),
        /no_such_table/,
      );
      await assert.rejects(db.query('SELECT * FROM no_such_table WHERE id = $1', [2]), /no_such_table/);
      await db.close(); // immediately after a failure: the queued Sync must not outlive PGlite
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a server URL naming what does not exist', { skip: onServer ? false : 'needs a real server' }, () => {
  const url = (change: (u: URL) => void) => {
    const u = new URL(serverUrl!);
    change(u);
    return u.toString();
  };

  it('a wrong database name or an unknown role exits 2 with a hint, quickly', async () => {
    const cases: [string, RegExp, RegExp][] = [
      [
        url((u) => {
          u.pathname = '/no_such_database_xyz';
        }),
        /database does not exist at .*no_such_database_xyz/,
        /hint: fix the database name/,
      ],
      [
        url((u) => {
          u.username = 'no_such_role_xyz';
          u.password = 'pw-of-nobody';
        }),
        /authentication failed at .*role "no_such_role_xyz" does not exist/,
        /hint: fix the user name/,
      ],
    ];
    for (const [databaseUrl, message, hint] of cases) {
      for (const command of [['stats'], ['migrate'], ['verify']]) {
        const r = await timed(['--database-url', databaseUrl, ...command]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, hint);
        assert.doesNotMatch(r.stderr, /pw-of-nobody/);
        assert.ok(r.ms < QUICK_MS, `${command.join(' ')} took ${r.ms} ms`);
      }
    }
  });

  it('through PgBouncer, which answers both with a protocol error (08P01), the same', {
    skip: poolerUrl ? false : 'needs TEST_PGBOUNCER_URL',
  }, async () => {
    const pooled = (change: (u: URL) => void) => {
      const u = new URL(poolerUrl!);
      change(u);
      return u.toString();
    };
    // Once each, and a database name of this run's own: after a failed server login PgBouncer
    // holds further logins to that database for server_login_retry (15 s) and they time out.
    const database = `no_such_database_${process.pid}_${Date.now()}`;
    const cases: [string, RegExp, RegExp][] = [
      [
        pooled((u) => {
          u.pathname = `/${database}`;
        }),
        new RegExp(`database does not exist at .*${database}`),
        /hint: fix the database name/,
      ],
      [
        pooled((u) => {
          u.username = 'no_such_role_xyz';
          u.password = 'pw-of-nobody';
        }),
        /authentication failed at .*no_such_role_xyz/,
        /hint: check the user and password .*PgBouncer's auth_file/,
      ],
    ];
    for (const [databaseUrl, message, hint] of cases) {
      const r = await timed(['--database-url', databaseUrl, 'stats']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, hint);
      assert.doesNotMatch(r.stderr, /pw-of-nobody/);
      assert.ok(r.ms < QUICK_MS, `took ${r.ms} ms`);
    }
  });

  it('demo refuses a database that holds other data unless --force', async () => {
    const cases: [string, RegExp][] = [
      ['CREATE TABLE public.customers (id int)', /it holds tables omni-ingest did not make \(customers\)/],
      // Not only `public`: an application's own schema counts as much.
      ['CREATE SCHEMA sales; CREATE TABLE sales.orders (id int)', /it holds tables omni-ingest did not make \(sales\.orders\)/],
    ];
    for (const [ddl, refusal] of cases) {
      const target = await freshTarget();
      const db = await target.open();
      try {
        await db.query(ddl);
      } finally {
        await db.close();
      }
      try {
        const r = await runCli([...target.args, 'demo']);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`refusing to write the demo data into .*: ${refusal.source}`));
        assert.match(r.stderr, /--force/);
        const check = await target.open();
        try {
          const { rows } = await check.query<{ ours: boolean }>(`SELECT to_regclass('omni_ingest.schema_migrations') IS NOT NULL AS ours`);
          assert.equal(rows[0]?.ours, false, 'the demo migrated the database it refused');
        } finally {
          await check.close();
        }
      } finally {
        await target.drop();
      }
    }
  });
});

describe('help', () => {
  it('`help <command>` and `help <command> <subcommand>` exit 0 with the usage on stdout', async () => {
    for (const args of [['help', 'import'], ['help', 'runs'], ['help', 'errors', 'retry'], ['help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: omni-ingest/);
    }
  });
});
