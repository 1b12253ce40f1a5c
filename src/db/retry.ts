// Running work again when the database, not the data, made it fail: a clash with a concurrent
// transaction (deadlock, serialization), or a lost connection (backend terminated, server
// restarted, failover, network reset). The work passed in must be idempotent: a whole batch
// transaction whose rollback puts everything back, or a statement safe to repeat.
import { DatabaseError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { CLASH_STATES } from './pg-errors.js';

/**
 * Runs `fn` (a whole transaction) again when PostgreSQL aborted it in a clash — a deadlock with
 * a concurrent writer of the same rows that locked them in another order, or a serialization
 * failure — up to `attempts` times, with a short random pause so the two do not meet again.
 */
export async function retryOnClash<T>(fn: () => Promise<T>, attempts = 3, states: ReadonlySet<string> = CLASH_STATES): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const state = err instanceof DatabaseError ? err.sqlState : undefined;
      if (attempt >= attempts || state === undefined || !states.has(state)) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
    }
  }
}

/** The connection failed (not the statement): a new connection may run the work again. */
function isConnectionLost(err: unknown): err is DatabaseError {
  return err instanceof DatabaseError && err.code === 'connection';
}

export interface ReconnectOptions {
  logger: Logger;
  /** What is being retried, for the log line ("normalize batch"). */
  what: string;
  /** Give up once the connection has been lost for this long (ms). */
  forMs: number;
  /** Stop waiting (and throw the last error) when this aborts. */
  signal?: AbortSignal | undefined;
}

/**
 * Runs `fn` again, with backoff (0.5 s doubling to 10 s), while it fails because the connection
 * was lost, for at most `forMs` in all; then throws the last error. Each retry is a warning.
 */
export async function retryOnConnectionLoss<T>(fn: () => Promise<T>, o: ReconnectOptions): Promise<T> {
  let lostSince: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionLost(err)) throw err;
      lostSince ??= Date.now();
      const waited = Date.now() - lostSince;
      if (waited >= o.forMs || o.signal?.aborted) throw err;
      const pause = Math.min(10_000, 500 * 2 ** (attempt - 1), o.forMs - waited);
      o.logger.warn(
        `${o.what}: ${errorMessage(err)}; reconnecting in ${(pause / 1000).toFixed(1)} s (attempt ${attempt}, giving up after ${Math.round(o.forMs / 1000)} s)`,
      );
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
