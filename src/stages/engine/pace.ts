// The runner's side of batch pacing (batch-size.ts decides): waiting between batches, and timing
// each batch's commits, which the stage runs inside its own transactions.
import type { Db } from '../../db/connect.js';

/** Waits `ms`, or less when the run is told to stop (the stop is then seen between batches). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * The database as a batch sees it, adding the time each of its transactions spent committing
 * to `commitMs`: from the end of the transaction's work to the end of the transaction, which is
 * the COMMIT (and giving the connection back).
 */
export function timingCommits(db: Db, now: () => number, commitMs: { total: number }): Db {
  return {
    kind: db.kind,
    target: db.target,
    maxConnections: db.maxConnections,
    query: db.query.bind(db),
    session: db.session.bind(db),
    close: db.close.bind(db),
    async transaction(fn) {
      let workDone = 0;
      const result = await db.transaction(async (tx) => {
        const out = await fn(tx);
        workDone = now();
        return out;
      });
      commitMs.total += now() - workDone;
      return result;
    },
  };
}
