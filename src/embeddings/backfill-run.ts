// `embeddings backfill [--reembed]` as one run: the copy, then — unless a signal or the time
// budget stopped it — the re-embedding of what the copy left without a vector, in what is left
// of the time budget.
import type { Queryable } from '../db/connect.js';
import { embeddingColumns } from '../db/vector-column.js';
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

/**
 * Closes the open swap dead letters whose row now has a vector (its legacy value was fixed and
 * copied, or --reembed gave it one) or no longer exists: they would otherwise stay open in
 * `errors groups` and `stats` with nothing left to do about them. Few rows: one statement.
 */
async function resolveSwapLetters(db: Queryable): Promise<number> {
  const cols = await embeddingColumns(db);
  const vector = cols.vector.name === 'embedding' ? 'embedding' : 'embedding_v';
  const { rowCount } = await db.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(),
    close_reason = CASE WHEN x.id IS NULL THEN 'its embeddings row is gone' ELSE 'its embeddings row has a vector' END
FROM public.raw_event_errors o
LEFT JOIN public.embeddings x ON x.id = omni_ingest.uuid_or_null(o.context ->> 'embedding_id')
WHERE o.id = e.id
  AND e.stage = 'swap'
  AND e.status = 'open'
  AND (x.id IS NULL OR x.${vector} IS NOT NULL)`,
  );
  return rowCount ?? 0;
}

export async function backfillAndReembed(o: BackfillRunOptions): Promise<BackfillRunResult> {
  const started = o.clock.now().getTime();
  const backfill = await runEmbeddingsBackfill({ ...o, bar: o.progress.start('backfill', 0) });
  const stop = backfill.summary?.stopReason;
  const resolved = async () => (o.range.dryRun ? 0 : resolveSwapLetters(o.db));
  if (!o.embedder || stop === 'signal' || stop === 'time-budget') return { backfill, reembed: null, lettersResolved: await resolved() };
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
  return { backfill, reembed, lettersResolved: await resolved() };
}
