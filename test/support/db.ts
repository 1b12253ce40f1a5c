// Each test gets a database of its own, copied from a template that is migrated once per set of
// migration files: a PGlite folder copy on the embedded database, `CREATE DATABASE … TEMPLATE`
// on the server (TEST_DATABASE_URL). Copying beats initdb + migrate by seconds per test.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDb, type Db, type Queryable } from '../../src/db/connect.js';
import { loadMigrationFiles } from '../../src/migrate/files.js';
import { migrate } from '../../src/migrate/migrator.js';
import { migrationsDir } from '../../src/paths.js';

export const serverUrl = process.env.TEST_DATABASE_URL || undefined;
export const onServer = serverUrl !== undefined;

export interface TestTarget {
  /** Global CLI flags that point the binary at this database. */
  args: string[];
  /** The same as configuration for openDb. */
  config: { databaseUrl: string | undefined; dataDir: string };
  /** Opens a connection for the test itself. On PGlite close it before spawning the CLI. */
  open(): Promise<Db>;
  /** A second database URL for the same server (server only). */
  url: string | undefined;
  drop(): Promise<void>;
}

/** Which migrations a template holds: their names and checksums. */
function migrationsKey(): string {
  const files = loadMigrationFiles(migrationsDir);
  return createHash('sha256')
    .update(files.map((f) => `${f.name}:${f.checksum}`).join('\n'))
    .digest('hex')
    .slice(0, 12);
}

const KEY = migrationsKey();

// ---- embedded database (PGlite folders) ----

const templateRoot = path.join(os.tmpdir(), 'omni-ingest-test-templates');

/** A template of another migration set unused for this long is removed. */
const STALE_MS = 24 * 3_600_000;

/**
 * A PGlite folder built once and shared by every test process: built in a private folder and
 * renamed into place, so a process that loses the race simply uses the winner's.
 */
async function pgliteTemplate(kind: 'bare' | 'migrated'): Promise<string> {
  const final = path.join(templateRoot, `${kind}-${KEY}`);
  if (fs.existsSync(path.join(final, 'PG_VERSION'))) return final;
  fs.mkdirSync(templateRoot, { recursive: true });
  const work = fs.mkdtempSync(path.join(templateRoot, `building-${kind}-`));
  const dataDir = path.join(work, 'db');
  const db = await openDb({ databaseUrl: undefined, dataDir });
  try {
    if (kind === 'migrated') await migrate(db, { files: loadMigrationFiles(migrationsDir) });
  } finally {
    await db.close();
  }
  try {
    fs.renameSync(dataDir, final);
  } catch (err) {
    if (!fs.existsSync(path.join(final, 'PG_VERSION'))) throw err;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  // Templates of other migration sets are stale once unused for a day (another checkout on
  // this machine may still be using its own).
  for (const name of fs.readdirSync(templateRoot)) {
    const other = path.join(templateRoot, name);
    if (/^(bare|migrated)-/.test(name) && !name.endsWith(KEY) && Date.now() - fs.statSync(other).mtimeMs > STALE_MS) {
      fs.rmSync(other, { recursive: true, force: true });
    }
  }
  return final;
}

function pgliteTarget(template: string): TestTarget {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-test-'));
  const dataDir = path.join(root, 'db');
  fs.cpSync(template, dataDir, { recursive: true });
  const config = { databaseUrl: undefined, dataDir };
  return {
    args: ['--data-dir', dataDir],
    config,
    url: undefined,
    open: () => openDb(config),
    drop: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

// ---- server ----

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

let serverTemplate: Promise<string> | undefined;

/**
 * A migrated database used as the template of each test's: built under a private name and
 * renamed into place (atomic), so parallel test processes never see a half-migrated one.
 */
function migratedServerTemplate(): Promise<string> {
  serverTemplate ??= (async () => {
    const name = `omni_tpl_${KEY}`;
    const exists = await admin(async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
    if (exists) return name;
    const building = `omni_tpl_building_${process.pid}_${randomBytes(3).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${building}`));
    const db = await openDb({ databaseUrl: withDatabase(serverUrl!, building), dataDir: '' });
    try {
      await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    } finally {
      await db.close();
    }
    await admin(async (c) => {
      try {
        await c.query(`ALTER DATABASE ${building} RENAME TO ${name}`);
        await c.query(`COMMENT ON DATABASE ${name} IS '${new Date().toISOString()}'`);
      } catch {
        await c.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`); // another process won the race
      }
      // Templates of other migration sets, made over a day ago (another checkout may use a newer one).
      const stale = await c.query<{ datname: string }>(
        `
SELECT d.datname
FROM pg_database d
LEFT JOIN pg_shdescription s ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass
WHERE d.datname LIKE 'omni\\_tpl\\_%' AND d.datname NOT LIKE 'omni\\_tpl\\_building\\_%' AND d.datname <> $1
  AND coalesce(s.description, '1970-01-01')::timestamptz < now() - interval '1 day'`,
        [name],
      );
      for (const r of stale.rows) await c.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => {});
    });
    return name;
  })();
  return serverTemplate;
}

async function serverTarget(template: string | undefined): Promise<TestTarget> {
  const name = `omni_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`));
  const url = withDatabase(serverUrl!, name);
  const config = { databaseUrl: url, dataDir: '' };
  return {
    args: ['--database-url', url],
    config,
    url,
    open: () => openDb(config),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A new, empty (not migrated) database. */
export async function freshTarget(): Promise<TestTarget> {
  return serverUrl ? serverTarget(undefined) : pgliteTarget(await pgliteTemplate('bare'));
}

/** A new database with every migration applied. */
export async function migratedTarget(): Promise<TestTarget> {
  return serverUrl ? serverTarget(await migratedServerTemplate()) : pgliteTarget(await pgliteTemplate('migrated'));
}

/** A fresh database migrated to `to` (default: everything), opened for the test. */
export async function migratedDb(to?: string): Promise<{ db: Db; target: TestTarget; close(): Promise<void> }> {
  const target = to === undefined ? await migratedTarget() : await freshTarget();
  const db = await target.open();
  if (to !== undefined) await migrate(db, { files: loadMigrationFiles(migrationsDir), to });
  return {
    db,
    target,
    close: async () => {
      await db.close();
      await target.drop();
    },
  };
}

/** A copy of `source` (closed: no connection may be open to it) as a new database. */
export async function cloneTarget(source: TestTarget): Promise<TestTarget> {
  if (serverUrl) return serverTarget(new URL(source.url!).pathname.slice(1));
  return pgliteTarget(source.config.dataDir);
}

/** PgBouncer in transaction pooling mode in front of the test server (scripts/start-pgbouncer.sh). */
export const poolerUrl = process.env.TEST_PGBOUNCER_URL || undefined;

/** The same database reached through the pooler: for the CLI and the test's own connections. */
export function throughPooler(target: TestTarget): TestTarget {
  if (!poolerUrl || !target.url) throw new Error('throughPooler needs TEST_PGBOUNCER_URL and a server target');
  const u = new URL(target.url);
  const p = new URL(poolerUrl);
  u.host = p.host;
  const url = u.toString();
  const config = { databaseUrl: url, dataDir: '' };
  return { ...target, args: ['--database-url', url], config, url, open: () => openDb(config) };
}

/** Resolves once some session of the database waits for a lock (the one a test holds open). */
export async function someoneWaitsForLock(db: Queryable): Promise<void> {
  for (;;) {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}
