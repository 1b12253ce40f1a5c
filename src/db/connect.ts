// One way to the database for every command: a pg.Pool, either on a real server or on the
// embedded PGlite database (through PGlite's node-postgres adapter, pool size 1).
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.js';
import { maskUrl } from '../config.js';
import { DatabaseError, errorMessage, OmniError } from '../errors.js';
import type { Logger } from '../logger.js';
import { inspectDataDir, lockDataDir, noDatabaseError } from './data-dir.js';
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
  /**
   * May an embedded database be created where there is none (default true)? Only `migrate` and
   * `demo` do: any other command started in the wrong folder must say so, not quietly make an
   * empty database there.
   */
  create?: boolean;
}

function wrapQueryable(inner: pg.PoolClient, target: string): Queryable {
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

const isConnectionLoss = (err: unknown): boolean => err instanceof DatabaseError && err.code === 'connection';

/**
 * One statement on a pooled connection, which goes back to the pool unless the connection itself
 * broke. pg-pool's own `query` closes the connection whenever the statement fails; on PGlite that
 * is the only connection, and its replacement shares the WASM backend with the old one's queued
 * protocol messages (the Bind, Execute and Sync that follow a failed Parse): the next query then
 * hangs, or those messages run after close and crash the process. A failed statement leaves a
 * connection usable (it answers ReadyForQuery after the Sync), so nothing is lost by keeping it.
 */
function pooledQueryable(pool: pg.Pool, target: string): Queryable {
  return {
    async query<R extends object>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw mapPgError(err, target);
      }
      let broken: Error | undefined;
      const onClientError = (err: Error) => {
        broken = err;
      };
      client.on('error', onClientError);
      try {
        return await wrapQueryable(client, target).query<R>(sql, params);
      } catch (err) {
        if (isConnectionLoss(err)) broken ??= err as Error;
        throw err;
      } finally {
        client.off('error', onClientError);
        client.release(broken);
      }
    },
  };
}

function createDb(pool: pg.Pool, kind: Db['kind'], target: string, maxConnections: number, onClose: () => Promise<void>): Db {
  const pooled = pooledQueryable(pool, target);
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
        // The statements' own errors are mapped already (wrapQueryable); anything else is the
        // caller's (a bug, a provider's error) and keeps its class and stack: calling it a
        // database error would send the operator to the wrong place.
        throw err;
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
        // A server connection may keep session settings fn did not undo: close it. PGlite's is
        // the only one (see pooledQueryable): keep it unless it broke.
        if (kind === 'server' || isConnectionLoss(err)) failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(failed);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // PGlite's adapter runs protocol messages from a queue of its own, which may still hold the
      // Sync after a failed statement; pool.end() does not wait for it, and PGlite closed under it
      // crashes the process. A query answers only after everything queued before it.
      if (kind === 'embedded')
        await settled(
          pooled.query('SELECT 1').then(
            () => undefined,
            () => undefined,
          ),
          10_000,
        );
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

async function openEmbedded(dataDir: string, options: OpenOptions): Promise<Db> {
  const isNew = inspectDataDir(dataDir) === 'absent';
  if (isNew && options.create === false) throw noDatabaseError(dataDir);
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const unlock = lockDataDir(dataDir);
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
    if (err instanceof OmniError) throw err;
    throw new DatabaseError(`cannot open the embedded database in ${dataDir}: ${describeThrown(err)}`, {
      cause: err,
      code: 'embedded',
      hint: 'is the folder writable? If it was written by a different PGlite version, move it aside',
    });
  }
}

/** Waits for the promise, or at most `ms`. */
async function settled(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([promise, timeout]);
  clearTimeout(timer);
}

/** PGlite sometimes throws plain objects (an Emscripten exit status): say what is in them. */
function describeThrown(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null) {
    try {
      return JSON.stringify(err);
    } catch {
      return Object.prototype.toString.call(err);
    }
  }
  return String(err);
}

export async function openDb(config: Pick<Config, 'databaseUrl' | 'dataDir'>, options: OpenOptions = {}): Promise<Db> {
  return config.databaseUrl ? openServer(config.databaseUrl, options) : openEmbedded(config.dataDir, options);
}
