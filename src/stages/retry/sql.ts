// The SQL of `errors retry`: pages of the selected open errors, their items put back in their
// stage's queue, and import errors claimed for re-parsing. Values travel as parameters; the
// selection predicate is the one every `errors` command uses.
import { z } from 'zod';
import type { Queryable } from '../../db/connect.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from '../../dead-letters/select.js';

const openErrorRow = z.object({
  id: z.string(),
  stage: z.string(),
  item_id: z.string().nullable(),
  user_id: z.string().nullable(),
  provider: z.string().nullable(),
  attempts: z.number(),
  error: z.string(),
  context: z.record(z.string(), z.unknown()),
});
export type OpenError = z.infer<typeof openErrorRow>;

const COLUMNS = 'e.id, e.stage, e.item_id, e.user_id, e.provider, e.attempts, e.error, e.context';

/**
 * The next open errors of `stage` in the selection after `afterId`, by id (a stable keyset).
 * `lock`: take them FOR UPDATE SKIP LOCKED in the caller's transaction (import retries claim
 * their errors; the queued stages claim their items instead).
 */
async function openErrorsAfter(
  db: Queryable,
  selection: ErrorSelection,
  stage: string,
  afterId: string | undefined,
  limit: number,
  lock: boolean,
): Promise<OpenError[]> {
  const { rows } = await db.query(
    `
SELECT ${COLUMNS}
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.stage = $9
  AND e.status = 'open'
  AND ($10::uuid IS NULL OR e.id > $10)
ORDER BY e.id
LIMIT $11
${lock ? 'FOR UPDATE SKIP LOCKED' : ''}`,
    [...selectionParams({ ...selection, statuses: ['open'] }), stage, afterId ?? null, limit],
  );
  return rows.map((r) => openErrorRow.parse(r));
}

export const pageOpenErrors = (db: Queryable, selection: ErrorSelection, stage: string, afterId: string | undefined, limit: number) =>
  openErrorsAfter(db, selection, stage, afterId, limit, false);

export const claimOpenErrors = (tx: Queryable, selection: ErrorSelection, stage: string, afterId: string | undefined, limit: number) =>
  openErrorsAfter(tx, selection, stage, afterId, limit, true);

/** Counts the open errors of the selection by stage. */
export async function countOpenByStage(db: Queryable, selection: ErrorSelection): Promise<Map<string, number>> {
  const { rows } = await db.query<{ stage: string; n: number }>(
    `
SELECT e.stage, count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.status = 'open'
GROUP BY e.stage`,
    selectionParams({ ...selection, statuses: ['open'] }),
  );
  return new Map(rows.map((r) => [r.stage, r.n]));
}

/**
 * Where each stage's items live and how they go back in its queue. Only items whose error is
 * still open are queued (another process may have resolved it since the page was read), and
 * ON CONFLICT DO NOTHING leaves an item already queued — and any lease on it — as it is.
 */
const REQUEUE = {
  normalize: `
WITH wanted AS (
  SELECT DISTINCT e.item_id FROM public.raw_event_errors e WHERE e.id = ANY($1::uuid[]) AND e.status = 'open'
), present AS (
  SELECT r.id, r.user_id, r.provider, r.occurred_at FROM public.raw_events r JOIN wanted w ON w.item_id = r.id
), queued AS (
  INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
  SELECT p.id, p.user_id, p.provider, p.occurred_at FROM present p
  ON CONFLICT (raw_event_id) DO NOTHING
)
SELECT p.id FROM present p`,
  embed: `
WITH wanted AS (
  SELECT DISTINCT e.item_id FROM public.raw_event_errors e WHERE e.id = ANY($1::uuid[]) AND e.status = 'open'
), present AS (
  SELECT i.id, i.user_id, i.source, i.occurred_at FROM public.interactions i JOIN wanted w ON w.item_id = i.id
), queued AS (
  INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
  SELECT 'embed', p.id, p.user_id, p.source, p.occurred_at FROM present p
  ON CONFLICT (stage, item_id) DO NOTHING
)
SELECT p.id FROM present p`,
  insights: `
WITH wanted AS (
  SELECT DISTINCT e.item_id FROM public.raw_event_errors e WHERE e.id = ANY($1::uuid[]) AND e.status = 'open'
), present AS (
  SELECT c.id, c.user_id,
         (SELECT max(i.occurred_at) FROM public.interactions i WHERE i.contact_id = c.id) AS occurred_at
  FROM public.contacts c JOIN wanted w ON w.item_id = c.id
), queued AS (
  INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
  SELECT 'insights', p.id, p.user_id, p.occurred_at FROM present p
  ON CONFLICT (stage, item_id) DO NOTHING
)
SELECT p.id FROM present p`,
} as const;

export type QueuedStage = keyof typeof REQUEUE;

/** Queues the items of these errors for their stage; returns the ids of the items that still exist. */
export async function requeueItems(db: Queryable, stage: QueuedStage, errorIds: string[]): Promise<string[]> {
  if (errorIds.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(REQUEUE[stage], [errorIds]);
  return rows.map((r) => r.id);
}

/** Resolves these open errors (an import record re-parsed and stored). */
export async function resolveErrorsById(tx: Queryable, ids: string[], runId: string | null, reason: string): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(), closed_by = $2, close_reason = $3
WHERE e.id = ANY($1::uuid[]) AND e.status = 'open'`,
    [ids, runId, reason],
  );
  return rowCount ?? 0;
}
