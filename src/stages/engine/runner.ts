// The batch loop every stage shares: the ledger run, batches until the range is done, the limit,
// the time budget or a signal says stop, progress, and a summary (SPEC §13). What a batch does
// — its claim and its transaction — belongs to the stage; whether a batch is real or a dry run,
// and what happens when the connection drops, is decided here.
import type { Clock } from '../../clock.js';
import type { Db, Queryable } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import type { Logger } from '../../logger.js';
import { pushbackOf } from '../../db/pg-errors.js';
import { BatchSize } from './batch-size.js';
import type { Counts } from './ledger.js';
import { pause, timingCommits } from './pace.js';
import type { ProgressBar } from './progress.js';
import { DEFAULT_BATCH_TARGET_MS, describeRange, type RangeOptions } from './range.js';
import { noTurns, writeTurns } from './turns.js';
import { type RunHandle, withRun } from './with-run.js';

export interface BatchInput {
  db: Db;
  range: RangeOptions;
  /** How many events this batch may take (batch size, less what the limit leaves). */
  size: number;
  /** Call inside the batch's transaction: the ledger moves with the data. */
  record(tx: Queryable, counts: Counts, checkpoint?: unknown): Promise<void>;
  /** The ledger run the batch belongs to (what resolves a dead letter says who did). */
  runId: string | null;
  /**
   * Aborts when the run must stop (a signal, the time budget). A batch that waits on a provider
   * aborts its requests, writes what is complete and gives the rest back; others may ignore it.
   */
  signal: AbortSignal;
  /**
   * A pipelined stage runs its writes through this (claim and map first, then write in a turn),
   * so that another batch of the same worker claims and maps meanwhile. Others need not call it.
   */
  writeTurn<T>(fn: () => Promise<T>): Promise<T>;
}

export interface BatchOutput<K extends string> {
  /** Events taken; 0 means the range is done. */
  taken: number;
  counts: Counts<K>;
  /** About how much data the batch held (bytes of its rows as text): adaptive sizes keep it bounded. */
  bytes?: number | undefined;
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
  /**
   * Pending events in the range (cheap: pending rows are indexed); with `before`, only those
   * pending since before that time (what a run found waiting when it started).
   */
  countPending(db: Queryable, range: RangeOptions, before?: Date): Promise<number>;
  /** Before the first batch of a real run: e.g. take back the leases of processes that died. */
  prepare?(db: Db, logger: Logger): Promise<void>;
  /**
   * On a server the runner keeps two of its batches in flight per worker (a connection each): one
   * claims and maps while the other writes. Those that write through `writeTurn` write one at a
   * time per worker.
   */
  readonly pipelined?: boolean;
  /** What one adaptive batch may hold, in the bytes its batches report (default AUTO_MAX_BYTES). */
  readonly batchBytes?: number;
  batch(input: BatchInput): Promise<BatchOutput<K>>;
  dryBatch(input: DryBatchInput<C>): Promise<DryBatchOutput<K, C>>;
}

export type StopReason = 'done' | 'limit' | 'time-budget' | 'signal';

/** Databases already told that --workers does not apply to them. */
const noted = new WeakSet<object>();

export interface RunSummary {
  runId: string | null;
  stage: string;
  /**
   * succeeded: the range is done (or the limit reached); incomplete: the range ended with work
   * it found waiting still pending (held by another process, or blocked); stopped: a signal or
   * the time budget stopped it before the end.
   */
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason: StopReason;
  /** The signal that stopped it (SIGINT, SIGTERM), when one did. */
  stopSignal?: string | undefined;
  dryRun: boolean;
  pendingAtStart: number;
  /** Of the work pending when the run started, how much is still pending now. */
  left: number;
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
  /** How long to keep reconnecting when the connection is lost (ms; default 2 minutes). */
  reconnectMs?: number | undefined;
  /**
   * Record into this run instead of a ledger row of the stage's own: a command that runs the
   * stage several times as part of one operation (`errors retry`, page by page).
   */
  run?: RunHandle | undefined;
}

function addCounts(into: Counts, from: Counts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + (v ?? 0);
}

/** One signal for "stop now": the caller's (SIGINT/SIGTERM) or the time budget running out. */
function stopController(
  signal: AbortSignal | undefined,
  deadline: number | undefined,
  clock: Clock,
): { stop: AbortController; dispose(): void } {
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    deadline === undefined ? undefined : setTimeout(() => stop.abort('time-budget'), Math.max(0, deadline - clock.now().getTime()));
  timer?.unref();
  return {
    stop,
    dispose() {
      signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
    },
  };
}

export async function runStage<K extends string, C>(stage: Stage<K, C>, options: RunOptions): Promise<RunSummary> {
  const { db, range, logger } = options;
  const started = options.clock.now().getTime();
  const deadline = range.timeBudgetMs === undefined ? undefined : started + range.timeBudgetMs;
  const workers = range.dryRun || db.maxConnections < 2 ? 1 : Math.max(1, Math.min(options.workers ?? 1, db.maxConnections - 1));
  // Two batches per worker when the stage is pipelined and the pool has a connection for each
  // (and one for the ledger); a worker's batches still write one at a time.
  const depth = stage.pipelined && !range.dryRun && db.maxConnections >= 2 * workers + 1 ? 2 : 1;
  const turns = depth > 1 ? writeTurns(workers) : noTurns;
  if ((options.workers ?? 1) > 1 && db.maxConnections < 2 && !noted.has(db)) {
    noted.add(db); // once per database, not once per stage of a backfill
    logger.info(`--workers ${options.workers} ignored: the embedded database has one connection (use --database-url for parallel batches)`);
  }
  const args = { ...describeRange(range), workers, ...options.args };
  const reconnectMs = options.reconnectMs ?? 120_000;
  const { stop, dispose } = stopController(options.signal, deadline, options.clock);
  const reconnecting = <T>(what: string, fn: () => Promise<T>) =>
    retryOnConnectionLoss(fn, { logger, what: `${stage.name}: ${what}`, forMs: reconnectMs, signal: stop.signal });

  try {
    const body = async (run: RunHandle): Promise<RunSummary> => {
      if (!range.dryRun && stage.prepare) await reconnecting('prepare', () => stage.prepare!(db, logger));
      const pendingAtStart = await reconnecting('count', () => stage.countPending(db, range));
      const total = range.limit === undefined ? pendingAtStart : Math.min(pendingAtStart, range.limit);
      options.bar?.setTotal(total);
      logger.debug(`${stage.name}: run ${run.id ?? '(dry run)'}, ${pendingAtStart} pending, ${workers} worker(s)`);

      const counts: Counts = {};
      let batches = 0;
      let remaining = range.limit ?? Number.POSITIVE_INFINITY;
      // Set by the worker loops (closures), so TypeScript must not narrow it to 'done'.
      let stopReason = 'done' as StopReason;
      let failure: unknown;
      const shouldStop = (): StopReason | undefined => {
        if (failure !== undefined) return 'done'; // another worker failed: the run ends with its error
        // The budget by the run's clock (tests pin it); the timer covers a batch still in flight.
        if (deadline !== undefined && !stop.signal.aborted && options.clock.now().getTime() >= deadline) stop.abort('time-budget');
        if (stop.signal.aborted) return stop.signal.reason === 'time-budget' ? 'time-budget' : 'signal';
        if (remaining <= 0) return 'limit';
        return undefined;
      };
      const now = () => performance.now();
      const sizing = new BatchSize({
        mode: range.batchTargetMs === undefined ? 'fixed' : 'auto',
        start: range.batchSize,
        targetMs: range.batchTargetMs ?? DEFAULT_BATCH_TARGET_MS,
        maxRate: range.maxRate,
        now,
        inFlight: workers * depth,
        maxBytes: stage.batchBytes,
      });
      const oneBatch = async (
        size: number,
        cursor: C | undefined,
        batchDb: Db,
      ): Promise<{ taken: number; counts: Counts; cursor: C | undefined; bytes?: number | undefined }> => {
        if (range.dryRun) return stage.dryBatch({ db: batchDb, range, size, cursor });
        // A batch rolled back by a lost connection is run again on a new one: batches are idempotent.
        const out = await reconnecting('batch', () =>
          stage.batch({ db: batchDb, range, size, record: run.record, runId: run.id, signal: stop.signal, writeTurn: turns.take }),
        );
        return { ...out, cursor: undefined };
      };

      const loop = async () => {
        let cursor: C | undefined;
        // One per loop, not per batch: stages may cache by their database (embed's vector column).
        const commits = { total: 0 };
        const batchDb = sizing.adaptive && workers * depth === 1 ? timingCommits(db, now, commits) : db;
        for (;;) {
          if (remaining > 0 && failure === undefined) await pause(sizing.waitMs(), stop.signal);
          const before = shouldStop();
          if (before) {
            if (stopReason === 'done') stopReason = before;
            return;
          }
          const size = Math.min(sizing.next(), remaining);
          remaining -= size;
          let out: Awaited<ReturnType<typeof oneBatch>>;
          commits.total = 0;
          const started = now();
          try {
            out = await oneBatch(size, cursor, batchDb);
          } catch (err) {
            // Adaptive batches back off when the database pushes back (the batch rolled back
            // whole); a fixed size fails the run as it always has.
            const pushback = sizing.adaptive && !stop.signal.aborted ? pushbackOf(err) : undefined;
            const backedOff = pushback && sizing.report({ taken: 0, durationMs: now() - started, pushback });
            if (!backedOff || sizing.exhausted) {
              failure ??= err;
              return;
            }
            remaining += size;
            logger.warn(
              `${stage.name}: the database pushed back (${pushback}); next batch ${backedOff.size} events, in ${(backedOff.pauseMs / 1000).toFixed(1)} s`,
            );
            continue;
          }
          // With several batches in flight a commit's answer may wait behind another batch's work
          // on this event loop: only a lone batch loop's commit times are the database's own.
          const commitMs = workers * depth === 1 ? commits.total : undefined;
          const backedOff = sizing.report({ taken: out.taken, durationMs: now() - started, commitMs, bytes: out.bytes });
          if (backedOff)
            logger.warn(
              `${stage.name}: commits are slowing down; next batch ${backedOff.size} events, in ${(backedOff.pauseMs / 1000).toFixed(1)} s`,
            );
          remaining += size - out.taken; // give back what the batch did not take
          if (out.taken > 0) {
            batches++;
            logger.debug(`${stage.name}: batch ${batches} took ${out.taken} events`);
            if (!backedOff && sizing.next() !== size && out.taken === size)
              logger.debug(`${stage.name}: next batches ${sizing.next()} events (${size} took ${Math.round(now() - started)} ms)`);
            cursor = out.cursor;
            addCounts(counts, out.counts);
            options.bar?.increment(out.taken);
          }
          // A batch cut short by a stop may have taken nothing: the stop, not an empty range, ends it.
          if (out.taken === 0 && !stop.signal.aborted) return;
        }
      };

      await Promise.all(Array.from({ length: workers * depth }, loop));
      if (failure !== undefined) throw failure;
      // Work that arrived after the start is not this run's; a borrowed run's range names its items.
      const since = options.run ? undefined : run.startedAt;
      const left = range.dryRun ? 0 : await reconnecting('count', () => stage.countPending(db, range, since));
      const stopped = stopReason === 'signal' || stopReason === 'time-budget';
      const status = stopped ? 'stopped' : left > 0 && stopReason === 'done' ? 'incomplete' : 'succeeded';
      if (status === 'incomplete')
        logger.warn(`${stage.name}: ${left} of the events pending at the start are still pending: held by another run, or blocked`);
      const elapsedMs = options.clock.now().getTime() - started;
      const taken = counts.events ?? 0;
      return {
        runId: run.id,
        stage: stage.name,
        status,
        stopReason,
        stopSignal: stopReason === 'signal' && typeof stop.signal.reason === 'string' ? stop.signal.reason : undefined,
        dryRun: range.dryRun,
        pendingAtStart,
        left,
        counts,
        batches,
        elapsedMs,
        eventsPerSecond: elapsedMs > 0 ? Math.round((taken * 1000) / elapsedMs) : taken,
      } satisfies RunSummary;
    };
    if (options.run) return await body(options.run);
    return await withRun(db, { command: stage.name, args, dryRun: range.dryRun, logger, reconnectMs }, body);
  } finally {
    dispose();
  }
}
