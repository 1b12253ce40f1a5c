// `errors retry --dry-run`: what a retry would do with each selected error, and why it is
// selected, read without writing anything.
import type { Db } from '../../db/connect.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from '../../dead-letters/select.js';
import { notRetryable } from './import.js';
import { countOpenByStage } from './sql.js';

interface PlannedRetry {
  id: string;
  stage: string;
  provider: string | null;
  attempts: number;
  signature: string;
  error: string;
  /** What the retry would do, or why it cannot. */
  action: string;
  retryable: boolean;
}

export interface RetryPlan {
  /** Open errors of the selection by stage (all of them, not only those listed). */
  open: Record<string, number>;
  errors: PlannedRetry[];
  /** Listed up to the limit; more are selected. */
  truncated: boolean;
}

interface PlanRow {
  id: string;
  stage: string;
  provider: string | null;
  user_id: string | null;
  item_id: string | null;
  attempts: number;
  signature: string;
  error: string;
  context: Record<string, unknown>;
  item_exists: boolean;
}

/** What to do about a swap letter instead: `errors retry` has no stage that copies a legacy value. */
export const SWAP_ADVICE =
  'fix the legacy value and run `embeddings backfill`, or give the row a vector with `embeddings backfill --reembed`';

function action(r: PlanRow): { action: string; retryable: boolean } {
  if (r.stage === 'swap') return { action: `not retried by errors retry: ${SWAP_ADVICE}`, retryable: false };
  if (r.stage === 'import') {
    const why = notRetryable(r);
    if (why) return { action: `not retryable: ${why}`, retryable: false };
    const rec = r.context.record as { bytes: number; sha256: string };
    return { action: `re-parse the kept record (${rec.bytes} bytes, sha256 ${rec.sha256.slice(0, 12)}…) and import it`, retryable: true };
  }
  const what = { normalize: 'raw event', embed: 'interaction', insights: 'contact' }[r.stage] ?? 'item';
  if (!r.item_exists)
    return {
      action: `not retryable: its ${what} ${r.item_id ?? '(unknown)'} is not in the database (archived or deleted); discard it, or restore the archive first`,
      retryable: false,
    };
  const verb = { normalize: 're-normalize', embed: 're-embed', insights: 'regenerate the insights of' }[r.stage] ?? 'retry';
  return { action: `${verb} ${what} ${r.item_id}`, retryable: true };
}

export async function planRetry(db: Db, selection: ErrorSelection, limit: number): Promise<RetryPlan> {
  const { rows } = await db.query<PlanRow>(
    `
SELECT e.id, e.stage, e.provider, e.user_id, e.item_id, e.attempts, e.signature, e.error, e.context,
       CASE e.stage
         WHEN 'normalize' THEN EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = e.item_id)
         WHEN 'embed' THEN EXISTS (SELECT 1 FROM public.interactions i WHERE i.id = e.item_id)
         WHEN 'insights' THEN EXISTS (SELECT 1 FROM public.contacts c WHERE c.id = e.item_id)
         ELSE true
       END AS item_exists
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.status = 'open'
  AND e.stage = ANY($9::text[])
ORDER BY array_position($9::text[], e.stage), e.id
LIMIT $10`,
    [...selectionParams({ ...selection, statuses: ['open'] }), ['import', 'normalize', 'embed', 'insights', 'swap'], limit + 1],
  );
  const open = Object.fromEntries(await countOpenByStage(db, selection));
  return {
    open,
    errors: rows.slice(0, limit).map((r) => ({
      id: r.id,
      stage: r.stage,
      provider: r.provider,
      attempts: r.attempts,
      signature: r.signature,
      error: r.error,
      ...action(r),
    })),
    truncated: rows.length > limit,
  };
}
