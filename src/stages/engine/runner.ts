// The batch loop every stage shares: the ledger run, batches until the range is done, the limit,
// the time budget or a signal says stop, progress, and a summary (SPEC §13). What a batch does
// — its claim and its transaction — belongs to the stage; whether a batch is real or a dry run
// is decided here.
import type { Clock } from '../../clock.js';
import type { Db, Queryable } from '../../db/connect.js';
import type { Logger } from '../../logger.js';
import type { Counts } from './ledger.js';
import type { ProgressBar } from './progress.js';
import { describeRange, type RangeOptions } from './range.js';
import { withRun } from './with-run.js';

export interface BatchInput {
  db: Db;
  range: RangeOptions;
  /** How many events this batch may take (batch size, less what the limit leaves). */
  size: number;
  /** Call inside the batch's transaction: the ledger moves with the data. */
  record(tx: Queryable, counts: Counts, checkpoint?: unknown): Promise<void>;
}

export interface BatchOutput<K extends string> {
  /** Events taken; 0 means the range is done. */
  taken: number;
  counts: Counts<K>;
}

export interface DryBatchInput<C> {
  db: Db;
  range: RangeOptions;
  size: number;
  /** Where this worker's previous dry batch ended (undefined for the first). */
  cursor: C | undefined;
}

export interface DryBatchOutput<K extends string, C> extends BatchOutput<K> {
  cursor: C;
}

/**
 * A stage: `K` names its counts, `C` is the keyset cursor of its dry run. A real batch claims
 * its work (nothing to remember between batches); a dry batch reads without taking, after `C`.
 */
export interface Stage<K extends string = string, C = unknown> {
  readonly name: string;
  /** Pending events in the range, for the progress bar (cheap: pending rows are indexed). */
  countPending(db: Queryable, range: RangeOptions): Promise<number>;
  batch(input: BatchInput): Promise<BatchOutput<K>>;
  dryBatch(input: DryBatchInput<C>): Promise<DryBatchOutput<K, C>>;
}

export type StopReason = 'done' | 'limit' | 'time-budget' | 'signal';

export interface RunSummary {
  runId: string | null;
  stage: string;
  status: 'succeeded' | 'stopped';
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
  workers?: number | undefined;
  bar?: ProgressBar | undefined;
  signal?: AbortSignal | undefined;
  /** Extra arguments to keep in the ledger. */
  args?: Record<string, unknown> | undefined;
}

function addCounts(into: Counts, from: Counts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + (v ?? 0);
}

export async function runStage<K extends string, C>(stage: Stage<K, C>, options: RunOptions): Promise<RunSummary> {
  const { db, range, logger } = options;
  const started = options.clock.now().getTime();
  const deadline = range.timeBudgetMs === undefined ? undefined : started + range.timeBudgetMs;
  const workers = range.dryRun || db.maxConnections < 2 ? 1 : Math.max(1, Math.min(options.workers ?? 1, db.maxConnections - 1));
  const args = { ...describeRange(range), workers, ...options.args };

  return withRun(db, { command: stage.name, args, dryRun: range.dryRun, logger }, async (run) => {
    const pendingAtStart = await stage.countPending(db, range);
    const total = range.limit === undefined ? pendingAtStart : Math.min(pendingAtStart, range.limit);
    options.bar?.setTotal(total);
    logger.debug(`${stage.name}: run ${run.id ?? '(dry run)'}, ${pendingAtStart} pending, ${workers} worker(s)`);

    const counts: Counts = {};
    let batches = 0;
    let remaining = range.limit ?? Number.POSITIVE_INFINITY;
    let stopReason: StopReason = 'done';
    let failure: unknown;
    const shouldStop = (): StopReason | undefined => {
      if (failure !== undefined) return 'done'; // another worker failed: the run ends with its error
      if (options.signal?.aborted) return 'signal';
      if (deadline !== undefined && options.clock.now().getTime() >= deadline) return 'time-budget';
      if (remaining <= 0) return 'limit';
      return undefined;
    };
    const oneBatch = async (size: number, cursor: C | undefined): Promise<{ taken: number; counts: Counts; cursor: C | undefined }> => {
      if (range.dryRun) return stage.dryBatch({ db, range, size, cursor });
      const out = await stage.batch({ db, range, size, record: run.record });
      return { ...out, cursor: undefined };
    };

    const loop = async () => {
      let cursor: C | undefined;
      for (;;) {
        const stop = shouldStop();
        if (stop) {
          if (stopReason === 'done') stopReason = stop;
          return;
        }
        const size = Math.min(range.batchSize, remaining);
        remaining -= size;
        let out: Awaited<ReturnType<typeof oneBatch>>;
        try {
          out = await oneBatch(size, cursor);
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
    if (failure !== undefined) throw failure;
    const status = stopReason === 'done' || stopReason === 'limit' ? 'succeeded' : 'stopped';
    const elapsedMs = options.clock.now().getTime() - started;
    const taken = counts.events ?? 0;
    return {
      runId: run.id,
      stage: stage.name,
      status,
      stopReason,
      dryRun: range.dryRun,
      pendingAtStart,
      counts,
      batches,
      elapsedMs,
      eventsPerSecond: elapsedMs > 0 ? Math.round((taken * 1000) / elapsedMs) : taken,
    } satisfies RunSummary;
  });
}
