// Each test gets a database of its own: a new database on the server when TEST_DATABASE_URL is
// set, else a copy of a freshly initialised PGlite folder (copying beats initdb by seconds).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDb, type Db } from '../../src/db/connect.js';
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

let templateDir: string | undefined;

async function pgliteTemplate(): Promise<string> {
  if (templateDir) return templateDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-template-'));
  const db = await openDb({ databaseUrl: undefined, dataDir: path.join(dir, 'db') });
  await db.close();
  templateDir = path.join(dir, 'db');
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return templateDir;
}

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

export async function freshTarget(): Promise<TestTarget> {
  if (serverUrl) {
    const name = `omni_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`));
    const url = withDatabase(serverUrl, name);
    const config = { databaseUrl: url, dataDir: '' };
    return {
      args: ['--database-url', url],
      config,
      url,
      open: () => openDb(config),
      drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
    };
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-test-'));
  const dataDir = path.join(root, 'db');
  fs.cpSync(await pgliteTemplate(), dataDir, { recursive: true });
  const config = { databaseUrl: undefined, dataDir };
  return {
    args: ['--data-dir', dataDir],
    config,
    url: undefined,
    open: () => openDb(config),
    drop: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** A fresh database migrated to `to` (default: everything), opened for the test. */
export async function migratedDb(to?: string): Promise<{ db: Db; target: TestTarget; close(): Promise<void> }> {
  const target = await freshTarget();
  const db = await target.open();
  await migrate(db, { files: loadMigrationFiles(migrationsDir), to });
  return {
    db,
    target,
    close: async () => {
      await db.close();
      await target.drop();
    },
  };
}
