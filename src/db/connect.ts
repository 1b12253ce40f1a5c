// One way to the database for every command: a pg.Pool, either on a real server or on the
// embedded PGlite database (through PGlite's node-postgres adapter, pool size 1).
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.js';
import { maskUrl } from '../config.js';
import { BusyError, DatabaseError, errorMessage } from '../errors.js';
import { isAlive } from '../liveness.js';
import type { Logger } from '../logger.js';
import { mapPgError } from './pg-errors.js';

export type Row = Record<string, unknown>;

export interface QueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** Something that runs a query: the pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends object = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'embedded' | 'server';
  /** Where it is, safe to print: the masked URL or the data folder. */
  readonly target: string;
  /** How many connections may be used at once (1 on the embedded database). */
  readonly maxConnections: number;
  /** Runs `fn` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on one connection of its own, outside any transaction: for statements that cannot
   * run in one (CREATE INDEX CONCURRENTLY) and the session settings they need. `fn` must undo
   * what it set; a connection that failed is closed, not given back to the pool.
   */
  session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenOptions {
  logger?: Logger;
  /** Pool size on a real server. */
  poolSize?: number;
}

function wrapQueryable(inner: pg.Pool | pg.PoolClient, target: string): Queryable {
  return {
    async query<R extends object>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      try {
        const result = await inner.query(sql, params as unknown[] | undefined);
        return { rows: result.rows as R[], rowCount: result.rowCount };
      } catch (err) {
        throw mapPgError(err, target);
      }
    },
  };
}

function createDb(pool: pg.Pool, kind: Db['kind'], target: string, maxConnections: number, onClose: () => Promise<void>): Db {
  const pooled = wrapQueryable(pool, target);
  let closed = false;
  return {
    kind,
    target,
    maxConnections,
    query: pooled.query,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw mapPgError(err, target);
      }
      const tx = wrapQueryable(client, target);
      let broken: unknown;
      // A connection that dies while checked out (backend terminated, server gone) also emits
      // 'error' on the client; unheard, Node would crash. The query in flight rejects anyway.
      const onClientError = (err: Error) => {
        broken = err;
      };
      client.on('error', onClientError);
      try {
        await tx.query('BEGIN');
        const result = await fn(tx);
        await tx.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr; // the connection is unusable; do not return it to the pool
        }
        throw mapPgError(err, target);
      } finally {
        client.off('error', onClientError);
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw mapPgError(err, target);
      }
      let failed: Error | undefined;
      try {
        return await fn(wrapQueryable(client, target));
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(failed);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
      await onClose();
    },
  };
}

async function openServer(url: string, options: OpenOptions): Promise<Db> {
  const target = maskUrl(url);
  const max = options.poolSize ?? 4;
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 10_000,
    application_name: 'omni-ingest',
  });
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  pool.on('error', (err) => options.logger?.debug(`idle connection error: ${err.message}`));
  const db = createDb(pool, 'server', target, max, async () => {});
  try {
    await db.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => {});
    // Dropped before the first answer: whatever listens there is not speaking PostgreSQL to us.
    if (err instanceof DatabaseError && err.code === 'connection' && /lost/.test(err.message)) {
      throw new DatabaseError(`could not talk to PostgreSQL at ${target}: ${errorMessage(err.cause)}`, {
        cause: err,
        code: 'connection',
        hint: 'is this a PostgreSQL server? check the host and port of the URL',
      });
    }
    throw err;
  }
  return db;
}

/** Two processes must never open one PGlite folder: it would corrupt it. */
function lockDataDir(dataDir: string): () => void {
  const lockPath = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new BusyError(`the embedded database at ${dataDir} is in use by process ${pid}`, {
          hint: 'wait for it to finish, or use a real server (--database-url) to run several processes at once',
        });
      }
      fs.rmSync(lockPath, { force: true }); // left behind by a process that died
    }
  }
  throw new BusyError(`could not lock the embedded database at ${dataDir}`);
}

async function openEmbedded(dataDir: string, options: OpenOptions): Promise<Db> {
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const unlock = lockDataDir(dataDir);
  const isNew = !fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  try {
    // Loaded lazily: PGlite's WASM is large and most invocations (--help) never need it.
    const [{ PGlite }, { vector }, { createPgConfig }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('@electric-sql/pglite-pgvector'),
      import('@electric-sql/pglite/node-postgres'),
    ]);
    if (isNew) options.logger?.info(`creating the embedded database in ${dataDir} (first use; takes a few seconds)`);
    const pglite = await PGlite.create(dataDir, { extensions: { vector } });
    const pool = new pg.Pool(createPgConfig(pglite) as unknown as pg.PoolConfig);
    return createDb(pool, 'embedded', dataDir, 1, async () => {
      try {
        await pglite.close();
      } finally {
        unlock();
      }
    });
  } catch (err) {
    unlock();
    if (err instanceof BusyError) throw err;
    throw new DatabaseError(`cannot open the embedded database in ${dataDir}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      code: 'embedded',
      hint: 'is the folder writable? If it was written by a different PGlite version, move it aside',
    });
  }
}

export async function openDb(config: Pick<Config, 'databaseUrl' | 'dataDir'>, options: OpenOptions = {}): Promise<Db> {
  return config.databaseUrl ? openServer(config.databaseUrl, options) : openEmbedded(config.dataDir, options);
}
