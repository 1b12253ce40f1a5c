// backfill: every stage in order over a range, each through the engine, under one ledger run
// whose checkpoint says which stages are done. A re-run of an interrupted backfill (same
// arguments) continues from that checkpoint; the stages' queues make each stage resumable.
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import type { Logger } from '../../logger.js';
import type { Progress } from '../engine/progress.js';
import { describeRange, type RangeOptions } from '../engine/range.js';
import { runStage, type RunSummary, type Stage, type StopReason } from '../engine/runner.js';
import { withRun } from '../engine/with-run.js';
import { STAGE_ORDER, type StageName } from '../names.js';
import { findResumable, type BackfillCheckpoint } from './ledger-sql.js';
import { requeueRange } from './sql.js';

export interface BackfillOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  range: RangeOptions;
  stages: StageName[];
  /** Walk the whole range again, whatever earlier runs did (puts its rows back in the queues). */
  reprocess: boolean;
  build: (name: StageName) => Stage;
  progress: Progress;
  signal?: AbortSignal | undefined;
  workers?: number | undefined;
  /** How long to keep reconnecting when the connection is lost (ms). */
  reconnectMs?: number | undefined;
  /** Settings that change what the stages do (providers, models), kept in the ledger. */
  settings: Record<string, unknown>;
}

interface BackfillStageSummary extends RunSummary {
  requeued: number;
  skipped?: 'done in the resumed run';
}

export interface BackfillSummary {
  runId: string | null;
  /** incomplete: a stage ended with work it found waiting still pending (held elsewhere, blocked). */
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason: StopReason;
  stopSignal?: string | undefined;
  resumedFrom: string | null;
  stages: BackfillStageSummary[];
  elapsedMs: number;
}

export async function runBackfill(o: BackfillOptions): Promise<BackfillSummary> {
  const started = o.clock.now().getTime();
  const deadline = o.range.timeBudgetMs === undefined ? undefined : started + o.range.timeBudgetMs;
  const order = STAGE_ORDER.filter((s) => o.stages.includes(s));
  const args = { ...describeRange(o.range), timeBudgetMs: undefined, stages: order, reprocess: o.reprocess || undefined, ...o.settings };
  const resumable = o.range.dryRun ? undefined : await findResumable(o.db, args);
  const checkpoint: BackfillCheckpoint = resumable?.checkpoint ?? { requeued: [], completed: [] };
  if (resumable)
    o.logger.info(
      `resuming backfill ${resumable.id}: ${checkpoint.completed.length ? `${checkpoint.completed.join(', ')} done` : 'no stage finished yet'}`,
    );

  return withRun(
    o.db,
    {
      command: 'backfill',
      args: { ...args, resumedFrom: resumable?.id },
      dryRun: o.range.dryRun,
      logger: o.logger,
      reconnectMs: o.reconnectMs,
    },
    async (run) => {
      const summary: BackfillSummary = {
        runId: run.id,
        status: 'succeeded',
        stopReason: 'done',
        resumedFrom: resumable?.id ?? null,
        stages: [],
        elapsedMs: 0,
      };
      const bars = new Map(order.map((name) => [name, o.progress.start(name, 0)]));
      for (const name of order) {
        if (checkpoint.completed.includes(name)) {
          summary.stages.push({ ...emptySummary(name, o.range.dryRun), requeued: 0, skipped: 'done in the resumed run' });
          continue;
        }
        let requeued = 0;
        if (o.reprocess && !o.range.dryRun && !checkpoint.requeued.includes(name)) {
          // Idempotent (ON CONFLICT DO NOTHING): safe to run again on a new connection.
          requeued = await retryOnConnectionLoss(() => requeueRange(o.db, name, o.range), {
            logger: o.logger,
            what: `backfill: requeueing ${name}`,
            forMs: o.reconnectMs ?? 120_000,
          });
          checkpoint.requeued.push(name);
          await run.checkpoint(checkpoint);
        }
        const remaining = deadline === undefined ? undefined : Math.max(1, deadline - o.clock.now().getTime());
        // Contacts have no provider: insights of a --provider backfill are those of every queued contact.
        const provider = name === 'insights' ? undefined : o.range.provider;
        const stage = await runStage(o.build(name), {
          db: o.db,
          clock: o.clock,
          logger: o.logger,
          range: { ...o.range, provider, timeBudgetMs: remaining },
          workers: o.workers,
          bar: bars.get(name),
          signal: o.signal,
          args: { backfill: run.id },
          reconnectMs: o.reconnectMs,
        });
        summary.stages.push({ ...stage, requeued });
        if (stage.status === 'stopped') {
          summary.status = 'stopped';
          summary.stopReason = stage.stopReason;
          summary.stopSignal = stage.stopSignal;
          break;
        }
        // The later stages still run on what is there; the next backfill finishes the rest.
        if (stage.status === 'incomplete') summary.status = 'incomplete';
        checkpoint.completed.push(name);
        await run.checkpoint(checkpoint);
      }
      summary.elapsedMs = o.clock.now().getTime() - started;
      return summary;
    },
  );
}

function emptySummary(stage: string, dryRun: boolean): RunSummary {
  return {
    runId: null,
    stage,
    status: 'succeeded',
    stopReason: 'done',
    dryRun,
    pendingAtStart: 0,
    left: 0,
    counts: {},
    batches: 0,
    elapsedMs: 0,
    eventsPerSecond: 0,
  };
}
