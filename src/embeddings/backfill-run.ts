// `embeddings backfill [--reembed]` as one run: the copy, then — unless a signal or the time
// budget stopped it — the re-embedding of what the copy left without a vector, in what is left
// of the time budget.
import type { Embedder } from '../embed/embedder.js';
import type { Progress } from '../stages/engine/progress.js';
import { type BackfillOptions, type BackfillResult, runEmbeddingsBackfill } from './backfill.js';
import { type ReembedResult, runReembed } from './reembed.js';

export interface BackfillRunOptions extends Omit<BackfillOptions, 'bar'> {
  /** Set: re-embed the rows left without a vector (`--reembed`). */
  embedder: Embedder | undefined;
  concurrency: number;
  progress: Progress;
}

export interface BackfillRunResult {
  backfill: BackfillResult;
  reembed: ReembedResult | null;
}

export async function backfillAndReembed(o: BackfillRunOptions): Promise<BackfillRunResult> {
  const started = o.clock.now().getTime();
  const backfill = await runEmbeddingsBackfill({ ...o, bar: o.progress.start('backfill', 0) });
  const stop = backfill.summary?.stopReason;
  if (!o.embedder || stop === 'signal' || stop === 'time-budget') return { backfill, reembed: null };
  const budget = o.range.timeBudgetMs;
  const left = budget === undefined ? undefined : Math.max(1, budget - (o.clock.now().getTime() - started));
  const reembed = await runReembed({
    db: o.db,
    clock: o.clock,
    logger: o.logger,
    range: { ...o.range, timeBudgetMs: left },
    embedder: o.embedder,
    concurrency: o.concurrency,
    workers: o.workers,
    signal: o.signal,
    bar: o.progress.start('reembed', 0),
  });
  return { backfill, reembed };
}
