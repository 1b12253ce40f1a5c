// `embeddings backfill [--reembed]` as one run: the copy, then — unless a signal or the time
// budget stopped it — the re-embedding of what the copy left without a vector, in what is left
// of the time budget.
import { embeddingColumns } from '../db/vector-column.js';
import { resolveSwapLetters } from '../dead-letters/sql.js';
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
  /** Open swap dead letters closed because their row now has a vector, or is gone. */
  lettersResolved: number;
}

export async function backfillAndReembed(o: BackfillRunOptions): Promise<BackfillRunResult> {
  const started = o.clock.now().getTime();
  const backfill = await runEmbeddingsBackfill({ ...o, bar: o.progress.start('backfill', 0) });
  const stop = backfill.summary?.stopReason;
  // The rows a run gave a vector (or that are gone) close their swap letters, named after the run.
  const resolved = async (runId: string | null | undefined) =>
    o.range.dryRun ? 0 : resolveSwapLetters(o.db, (await embeddingColumns(o.db)).vector.name, runId ?? null);
  if (!o.embedder || stop === 'signal' || stop === 'time-budget')
    return { backfill, reembed: null, lettersResolved: await resolved(backfill.summary?.runId) };
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
  return { backfill, reembed, lettersResolved: await resolved(reembed.summary.runId ?? backfill.summary?.runId) };
}
