// Running a transaction again when it lost a clash with another one (SPEC §13: parallel workers).
import { DatabaseError } from '../errors.js';
import { CLASH_STATES } from './pg-errors.js';

/**
 * Runs `fn` (a whole transaction) again when PostgreSQL aborted it in a clash — a deadlock with
 * a concurrent writer of the same rows that locked them in another order, or a serialization
 * failure — up to `attempts` times, with a short random pause so the two do not meet again.
 */
export async function retryOnClash<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const state = err instanceof DatabaseError ? err.sqlState : undefined;
      if (attempt >= attempts || state === undefined || !CLASH_STATES.has(state)) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
    }
  }
}
