// The one way a command writes the run ledger (SPEC §13): a row when it starts, counts and
// checkpoints in each batch's own transaction, a heartbeat while it lives, and its end —
// succeeded, incomplete, stopped or failed with the error. Dry runs record nothing.
import type { Db, Queryable } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { finishRun, markAbandoned, recordBatch, saveCheckpoint, startRun, touchRun, type Counts } from './ledger.js';

export interface RunHandle {
  /** The ledger row; null in a dry run. */
  readonly id: string | null;
  /** When the run started, by the database's clock (queue rows are stamped by it too). */
  readonly startedAt: Date;
  /** Adds a batch's counts (and moves the checkpoint) inside the batch's transaction. */
  record(tx: Queryable, counts: Counts, checkpoint?: unknown): Promise<void>;
  /** Saves a checkpoint on its own (between stages of a backfill). */
  checkpoint(value: unknown): Promise<void>;
}

export interface RunOutcome {
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason?: string | undefined;
}

export interface WithRunOptions {
  command: string;
  args: Record<string, unknown>;
  dryRun: boolean;
  logger: Logger;
  /** How long ledger writes keep reconnecting when the connection is lost (ms). */
  reconnectMs?: number | undefined;
  /**
   * What becomes of a dead run's unfinished work, said when one is found. Stages roll a batch back
   * with its transaction; a command whose work outlives its transactions (archive's batches are
   * continued from their last committed step) says so here.
   */
  leftWork?: string | undefined;
}

/** How often a live run says so, so `runs list` can tell it from a dead one. */
const HEARTBEAT_MS = 30_000;

async function serverNow(db: Db): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return rows[0]!.now;
}

export async function withRun<T extends RunOutcome>(db: Db, o: WithRunOptions, fn: (run: RunHandle) => Promise<T>): Promise<T> {
  const reconnectMs = o.reconnectMs ?? 120_000;
  const ledger = <R>(what: string, work: () => Promise<R>, forMs = reconnectMs) =>
    retryOnConnectionLoss(work, { logger: o.logger, what: `${o.command}: ${what}`, forMs });
  if (o.dryRun) {
    return fn({ id: null, startedAt: await serverNow(db), record: async () => {}, checkpoint: async () => {} });
  }
  const { id, startedAt } = await ledger('starting the run', () => startRun(db, o.command, o.args));
  const abandoned = await ledger('looking for dead runs', () => markAbandoned(db, o.command, id));
  if (abandoned > 0) {
    o.logger.warn(
      `${abandoned} earlier ${o.command} run(s) died without a word (killed?); ${o.leftWork ?? 'their unfinished batches were rolled back and are pending again'}`,
    );
  }
  const timer = setInterval(() => {
    touchRun(db, id).catch((err: unknown) => o.logger.debug(`heartbeat of run ${id} failed: ${errorMessage(err)}`));
  }, HEARTBEAT_MS);
  timer.unref();
  const handle: RunHandle = {
    id,
    startedAt,
    record: (tx, counts, checkpoint) => recordBatch(tx, id, counts, checkpoint),
    checkpoint: (value) => ledger('saving the checkpoint', () => saveCheckpoint(db, id, value)),
  };
  try {
    const outcome = await fn(handle);
    clearInterval(timer);
    await ledger('finishing the run', () =>
      finishRun(db, id, outcome.status, { stopReason: outcome.stopReason === 'done' ? undefined : outcome.stopReason }),
    );
    return outcome;
  } catch (err) {
    clearInterval(timer);
    // Briefly: when the failure is the connection itself, the run has waited long enough already;
    // if this cannot be written either, the next run finds this one dead and says so.
    await ledger(
      'recording the failure',
      () => finishRun(db, id, 'failed', { error: errorMessage(err) }),
      Math.min(reconnectMs, 10_000),
    ).catch(() => {});
    throw err;
  }
}
