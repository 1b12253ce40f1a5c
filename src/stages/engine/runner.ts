// The batch loop every stage shares: ledger row, batches until the range is done, the limit,
// the time budget or a signal says stop, progress, and a summary (SPEC §13). What a batch does
// — its claim and its transaction — belongs to the stage.
import type { Clock } from '../../context.js';
import type { Db, Queryable } from '../../db/connect.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { finishRun, markAbandoned, recordBatch, startRun, type Counts } from './ledger.js';
import type { ProgressBar } from './progress.js';
import { describeRange, type RangeOptions } from './range.js';

export interface BatchInput {
  db: Db;
  range: RangeOptions;
  /** How many events this batch may take (batch size, less what the limit leaves). */
  size: number;
  /** Where the previous batch of this worker ended (dry runs walk by keyset; claims need none). */
  cursor: unknown;
  /** Call inside the batch's transaction: the ledger moves with the data. */
  record(tx: Queryable, counts: Counts, checkpoint?: unknown): Promise<void>;
}

export interface BatchOutput {
  /** Events taken; 0 means the range is done. */
  taken: number;
  counts: Counts;
  cursor?: unknown;
}

export interface Stage {
  readonly name: string;
  /** Pending events in the range, for the progress bar (cheap: pending rows are indexed). */
  countPending(db: Queryable, range: RangeOptions): Promise<number>;
  batch(input: BatchInput): Promise<BatchOutput>;
}

export type StopReason = 'done' | 'limit' | 'time-budget' | 'signal';

export interface RunSummary {
  runId: string | null;
  stage: string;
  status: 'succeeded' | 'stopped' | 'failed';
  stopReason: StopReason;
  dryRun: boolean;
  pendingAtStart: number;
  counts: Counts;
  batches: number;
  elapsedMs: number;
  eventsPerSecond: number;
}

export interface RunOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  range: RangeOptions;
  /** Parallel batch loops in this process (server only; the embedded database has one connection). */
  workers?: number;
  bar?: ProgressBar;
  signal?: AbortSignal;
  /** Extra arguments to keep in the ledger. */
  args?: Record<string, unknown>;
}

function addCounts(into: Counts, from: Counts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export async function runStage(stage: Stage, options: RunOptions): Promise<RunSummary> {
  const { db, range, logger } = options;
  const started = options.clock.now().getTime();
  const deadline = range.timeBudgetMs === undefined ? undefined : started + range.timeBudgetMs;
  const workers = range.dryRun || db.maxConnections < 2 ? 1 : Math.max(1, Math.min(options.workers ?? 1, db.maxConnections - 1));

  if (!range.dryRun) {
    const abandoned = await markAbandoned(db, stage.name);
    if (abandoned > 0) logger.warn(`${abandoned} earlier ${stage.name} run(s) stopped without a word (killed?); their unfinished batches were rolled back and are pending again`);
  }
  const pendingAtStart = await stage.countPending(db, range);
  const total = range.limit === undefined ? pendingAtStart : Math.min(pendingAtStart, range.limit);
  options.bar?.setTotal(total);
  const runId = range.dryRun ? null : await startRun(db, stage.name, { ...describeRange(range), workers, ...options.args });
  logger.debug(`${stage.name}: run ${runId ?? '(dry run)'}, ${pendingAtStart} pending, ${workers} worker(s)`);

  const counts: Counts = {};
  let batches = 0;
  let remaining = range.limit ?? Number.POSITIVE_INFINITY;
  let stopReason: StopReason = 'done';
  const record = async (tx: Queryable, delta: Counts, checkpoint?: unknown) => {
    if (runId) await recordBatch(tx, runId, delta, checkpoint);
  };
  let failure: unknown;
  const shouldStop = (): StopReason | undefined => {
    if (failure !== undefined) return 'done'; // another worker failed: the run ends with its error
    if (options.signal?.aborted) return 'signal';
    if (deadline !== undefined && options.clock.now().getTime() >= deadline) return 'time-budget';
    if (remaining <= 0) return 'limit';
    return undefined;
  };

  const loop = async () => {
    let cursor: unknown;
    for (;;) {
      const stop = shouldStop();
      if (stop) {
        if (stopReason === 'done') stopReason = stop;
        return;
      }
      const size = Math.min(range.batchSize, remaining);
      remaining -= size;
      let out: BatchOutput;
      try {
        out = await stage.batch({ db, range, size, cursor, record });
      } catch (err) {
        failure ??= err;
        return;
      }
      remaining += size - out.taken; // give back what the batch did not take
      if (out.taken === 0) return;
      batches++;
      logger.debug(`${stage.name}: batch ${batches} took ${out.taken} events`);
      cursor = out.cursor;
      addCounts(counts, out.counts);
      options.bar?.increment(out.taken);
    }
  };

  await Promise.all(Array.from({ length: workers }, loop));
  if (failure !== undefined) {
    if (runId) await finishRun(db, runId, 'failed', { error: errorMessage(failure) }).catch(() => {});
    throw failure;
  }
  const status = stopReason === 'done' || stopReason === 'limit' ? 'succeeded' : 'stopped';
  if (runId) await finishRun(db, runId, status, { stopReason: stopReason === 'done' ? undefined : stopReason });
  const elapsedMs = options.clock.now().getTime() - started;
  const taken = counts.events ?? 0;
  return {
    runId,
    stage: stage.name,
    status,
    stopReason,
    dryRun: range.dryRun,
    pendingAtStart,
    counts,
    batches,
    elapsedMs,
    eventsPerSecond: elapsedMs > 0 ? Math.round((taken * 1000) / elapsedMs) : taken,
  };
}
