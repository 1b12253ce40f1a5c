// Taking a lock on public.embeddings under a live application, the way GitLab's and pgroll's
// migrations do: a short lock_timeout, so that while we wait the readers and writers queued behind
// us wait at most that long; and on a timeout, roll back, pause (growing, with jitter), try again.
// Only transaction-scoped locks: nothing survives a dropped connection or a pooler (PgBouncer).
import type { Db, Queryable } from '../db/connect.js';
import { BusyError } from '../errors.js';
import type { Logger } from '../logger.js';
import { sleep } from '../openai/retry.js';
import { setLockTimeout } from './swap-sql.js';

export interface LockRetryOptions {
  /** How long one attempt waits for its lock. */
  lockTimeoutMs: number;
  /** Attempts before giving up with a BusyError (exit 75). */
  attempts: number;
  logger: Logger;
  /** What is being done, for messages ("swap", "install the sync trigger"). */
  what: string;
  signal?: AbortSignal | undefined;
}

export interface Locked<T> {
  value: T;
  attempts: number;
  /** How long the successful transaction took, lock wait included: what readers may have waited. */
  heldMs: number;
}

/** The pause before attempt `n + 1`: 100 ms doubling to 5 s, between half and all of it. */
function backoffMs(n: number): number {
  return Math.min(5_000, 100 * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
}

/** Runs `fn` in one transaction whose locks wait at most `lockTimeoutMs`, retrying on a timeout. */
export async function withLockRetry<T>(db: Db, o: LockRetryOptions, fn: (tx: Queryable) => Promise<T>): Promise<Locked<T>> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      const value = await db.transaction(async (tx) => {
        await setLockTimeout(tx, o.lockTimeoutMs);
        return fn(tx);
      });
      return { value, attempts: attempt, heldMs: performance.now() - started };
    } catch (err) {
      if (!(err instanceof BusyError)) throw err;
      if (attempt >= o.attempts) {
        throw new BusyError(`${o.what}: public.embeddings stayed locked by other sessions through ${attempt} attempts`, {
          cause: err,
          hint: 'a long transaction or another swap holds it; retry later (or raise --lock-timeout / --lock-attempts)',
        });
      }
      const pause = backoffMs(attempt);
      o.logger.info(
        `${o.what}: public.embeddings is busy (lock_timeout ${o.lockTimeoutMs} ms); attempt ${attempt + 1} in ${Math.round(pause)} ms`,
      );
      await sleep(pause, o.signal);
    }
  }
}
