// `errors retry` (SPEC §12): the selected open errors re-run through their stage now. Import
// errors re-parse their kept record (import.ts). Normalize errors run normalize's batch on their
// raw events, claimed through the errors themselves (normalize.ts). Embed and insights errors
// put their item back in the stage's queue and run the stage on exactly those items, page by
// page. Either way the stage's own batch resolves an error in the same transaction as the
// writes that make it obsolete, or records one more attempt. A retry killed at any point leaves
// each error open (its item queued, or its event untouched, so a later run finishes it) or
// resolved with its output; several processes share the work through the stages' claims.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import type { ErrorSelection } from '../../dead-letters/select.js';
import type { Logger } from '../../logger.js';
import type { Counts } from '../engine/ledger.js';
import type { ProgressBar } from '../engine/progress.js';
import { makeRange } from '../engine/range.js';
import { runStage, type Stage, type StopReason } from '../engine/runner.js';
import { type RunHandle, withRun } from '../engine/with-run.js';
import { prefixed, retryImportErrors } from './import.js';
import { normalizeRetry } from './normalize.js';
import { countItemless, countOpenByStage, pageOpenErrors, type QueuedStage, requeueItems } from './sql.js';

const RETRY_STAGES = ['import', 'normalize', 'embed', 'insights'] as const;
type RetryStage = (typeof RETRY_STAGES)[number];

export interface RetryOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  selection: ErrorSelection;
  batchSize: number;
  /** At most this many errors. */
  limit: number | undefined;
  timeBudgetMs: number | undefined;
  /** The stage objects for the stages that call providers (built only when needed). */
  stage(name: QueuedStage): Stage;
  signal?: AbortSignal | undefined;
  bar?: ProgressBar | undefined;
  reconnectMs?: number | undefined;
  args: Record<string, unknown>;
}

interface RetryStageSummary {
  stage: RetryStage;
  /** Open errors selected when the stage's turn came. */
  selected: number;
  counts: Counts;
  /** Errors whose item is gone (archived or deleted): left open, to discard. */
  gone: number;
}

export interface RetrySummary {
  runId: string | null;
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason: StopReason;
  stopSignal?: string | undefined;
  stages: RetryStageSummary[];
  /** Open swap letters in the selection: `embeddings backfill` handles them, not this command. */
  elsewhere: number;
  /** Errors resolved, failed again, and still open of the selection at the end. */
  resolved: number;
  stillOpen: number;
  elapsedMs: number;
}

interface QueuedOutcome {
  counts: Counts;
  gone: number;
  stopReason: StopReason;
  status: 'succeeded' | 'incomplete' | 'stopped';
}

/** Items per page: a few batches' worth, so a page's id list stays a modest parameter. */
const PAGE_BATCHES = 5;

async function retryQueued(
  o: RetryOptions,
  name: QueuedStage,
  run: RunHandle,
  stop: AbortSignal,
  deadline: number | undefined,
  budget: { left: number },
): Promise<QueuedOutcome> {
  const counts: Counts = {};
  let gone = 0;
  let after: string | undefined;
  let status: 'succeeded' | 'incomplete' | 'stopped' = 'succeeded';
  const reconnectMs = o.reconnectMs ?? 120_000;
  const stage = o.stage(name);
  while (budget.left > 0) {
    const page = await retryOnConnectionLoss(
      () => pageOpenErrors(o.db, o.selection, name, after, Math.min(budget.left, o.batchSize * PAGE_BATCHES)),
      { logger: o.logger, what: `errors retry: reading ${name} errors`, forMs: reconnectMs },
    );
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    budget.left -= page.length;
    const items = await retryOnConnectionLoss(
      () =>
        requeueItems(
          o.db,
          name,
          page.map((e) => e.id),
        ),
      { logger: o.logger, what: `errors retry: queueing ${name} items`, forMs: reconnectMs },
    );
    const present = new Set(items);
    gone += page.filter((e) => e.item_id === null || !present.has(e.item_id)).length;
    if (items.length === 0) continue;
    const summary = await runStage(stage, {
      db: o.db,
      clock: o.clock,
      logger: o.logger,
      range: makeRange({
        items,
        batchSize: o.batchSize,
        timeBudgetMs: deadline === undefined ? undefined : Math.max(1, deadline - o.clock.now().getTime()),
      }),
      signal: stop,
      run: { ...run, record: (tx, c, checkpoint) => run.record(tx, prefixed(name, c), checkpoint) },
      reconnectMs,
    });
    for (const [k, v] of Object.entries(summary.counts)) counts[k] = (counts[k] ?? 0) + (v ?? 0);
    o.bar?.increment(page.length);
    if (summary.status === 'stopped') return { counts, gone, stopReason: summary.stopReason, status: 'stopped' };
    if (summary.status === 'incomplete') status = 'incomplete';
  }
  return { counts, gone, stopReason: 'done', status };
}

/** Normalize errors: one run of normalize's batch over the selection, claimed through the errors. */
async function retryNormalize(
  o: RetryOptions,
  run: RunHandle,
  stop: AbortSignal,
  deadline: number | undefined,
  budget: { left: number },
): Promise<QueuedOutcome> {
  const retry = normalizeRetry({ selection: o.selection, before: run.startedAt, budget, bar: o.bar });
  const itemless = await countItemless(o.db, o.selection, 'normalize');
  const summary = await runStage(retry.stage, {
    db: o.db,
    clock: o.clock,
    logger: o.logger,
    range: makeRange({
      batchSize: o.batchSize,
      timeBudgetMs: deadline === undefined ? undefined : Math.max(1, deadline - o.clock.now().getTime()),
    }),
    signal: stop,
    run: { ...run, record: (tx, c, checkpoint) => run.record(tx, prefixed('normalize', c), checkpoint) },
    reconnectMs: o.reconnectMs ?? 120_000,
  });
  return { counts: summary.counts, gone: itemless + retry.gone(), stopReason: summary.stopReason, status: summary.status };
}

export async function retryErrors(o: RetryOptions): Promise<RetrySummary> {
  const started = o.clock.now().getTime();
  const deadline = o.timeBudgetMs === undefined ? undefined : started + o.timeBudgetMs;
  return withRun(
    o.db,
    { command: 'errors retry', args: o.args, dryRun: false, logger: o.logger, reconnectMs: o.reconnectMs },
    async (run) => {
      const stop = new AbortController();
      const onAbort = () => stop.abort(o.signal?.reason);
      if (o.signal?.aborted) onAbort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = deadline === undefined ? undefined : setTimeout(() => stop.abort('time-budget'), o.timeBudgetMs);
      timer?.unref();
      try {
        const open = await countOpenByStage(o.db, o.selection);
        o.bar?.setTotal(
          Math.min(
            o.limit ?? Number.POSITIVE_INFINITY,
            [...open.values()].reduce((a, b) => a + b, 0),
          ),
        );
        const budget = { left: o.limit ?? Number.POSITIVE_INFINITY };
        const summary: RetrySummary = {
          runId: run.id,
          status: 'succeeded',
          stopReason: 'done',
          stages: [],
          elsewhere: open.get('swap') ?? 0,
          resolved: 0,
          stillOpen: 0,
          elapsedMs: 0,
        };
        for (const name of RETRY_STAGES) {
          const selected = Math.min(open.get(name) ?? 0, budget.left);
          if (selected === 0) continue;
          if (stop.signal.aborted) break;
          if (name === 'import') {
            const counts = await retryImportErrors({
              db: o.db,
              clock: o.clock,
              logger: o.logger,
              selection: o.selection,
              batchSize: o.batchSize,
              limit: selected,
              batchId: randomUUID(),
              run,
              signal: stop.signal,
              reconnectMs: o.reconnectMs ?? 120_000,
            });
            budget.left -= counts.events ?? 0;
            o.bar?.increment(counts.events ?? 0);
            summary.stages.push({ stage: name, selected, counts, gone: 0 });
            continue;
          }
          const r =
            name === 'normalize'
              ? await retryNormalize(o, run, stop.signal, deadline, budget)
              : await retryQueued(o, name, run, stop.signal, deadline, budget);
          summary.stages.push({ stage: name, selected, counts: r.counts, gone: r.gone });
          if (r.status === 'incomplete') summary.status = 'incomplete';
          if (r.status === 'stopped') {
            summary.status = 'stopped';
            summary.stopReason = r.stopReason;
            break;
          }
        }
        if (stop.signal.aborted && summary.status !== 'stopped') {
          summary.status = 'stopped';
          summary.stopReason = stop.signal.reason === 'time-budget' ? 'time-budget' : 'signal';
        }
        if (summary.stopReason === 'signal' && typeof stop.signal.reason === 'string') summary.stopSignal = stop.signal.reason;
        summary.resolved = summary.stages.reduce((n, s) => n + (s.counts.resolved ?? 0), 0);
        const after = await countOpenByStage(o.db, o.selection);
        summary.stillOpen = [...after.values()].reduce((a, b) => a + b, 0);
        summary.elapsedMs = o.clock.now().getTime() - started;
        return summary;
      } finally {
        if (timer) clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      }
    },
  );
}
