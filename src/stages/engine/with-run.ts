// The one way a command writes the run ledger (SPEC §13): a row when it starts, counts and
// checkpoints in each batch's own transaction, a heartbeat while it lives, and its end —
// succeeded, stopped or failed with the error. Dry runs record nothing.
import type { Db, Queryable } from '../../db/connect.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { finishRun, markAbandoned, recordBatch, saveCheckpoint, startRun, touchRun, type Counts } from './ledger.js';

export interface RunHandle {
  /** The ledger row; null in a dry run. */
  readonly id: string | null;
  /** Adds a batch's counts (and moves the checkpoint) inside the batch's transaction. */
  record(tx: Queryable, counts: Counts, checkpoint?: unknown): Promise<void>;
  /** Saves a checkpoint on its own (between stages of a backfill). */
  checkpoint(value: unknown): Promise<void>;
}

export interface RunOutcome {
  status: 'succeeded' | 'stopped';
  stopReason?: string | undefined;
}

export interface WithRunOptions {
  command: string;
  args: Record<string, unknown>;
  dryRun: boolean;
  logger: Logger;
}

/** How often a live run says so, so `runs list` can tell it from a dead one. */
const HEARTBEAT_MS = 30_000;

export async function withRun<T extends RunOutcome>(db: Db, o: WithRunOptions, fn: (run: RunHandle) => Promise<T>): Promise<T> {
  if (o.dryRun) {
    return fn({ id: null, record: async () => {}, checkpoint: async () => {} });
  }
  const abandoned = await markAbandoned(db, o.command);
  if (abandoned > 0) {
    o.logger.warn(
      `${abandoned} earlier ${o.command} run(s) stopped without a word (killed?); their unfinished batches were rolled back and are pending again`,
    );
  }
  const id = await startRun(db, o.command, o.args);
  const timer = setInterval(() => {
    touchRun(db, id).catch((err: unknown) => o.logger.debug(`heartbeat of run ${id} failed: ${errorMessage(err)}`));
  }, HEARTBEAT_MS);
  timer.unref();
  const handle: RunHandle = {
    id,
    record: (tx, counts, checkpoint) => recordBatch(tx, id, counts, checkpoint),
    checkpoint: (value) => saveCheckpoint(db, id, value),
  };
  try {
    const outcome = await fn(handle);
    clearInterval(timer);
    await finishRun(db, id, outcome.status, { stopReason: outcome.stopReason === 'done' ? undefined : outcome.stopReason });
    return outcome;
  } catch (err) {
    clearInterval(timer);
    await finishRun(db, id, 'failed', { error: errorMessage(err) }).catch(() => {});
    throw err;
  }
}
