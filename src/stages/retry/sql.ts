// The SQL of `errors retry`: pages of the selected open errors, their items put back in their
// stage's queue, and import errors claimed for re-parsing. Values travel as parameters; the
// selection predicate is the one every `errors` command uses.
import { z } from 'zod';
import type { Queryable } from '../../db/connect.js';
import type { RawEventRow } from '../normalize-sql.js';
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

type NullableRow = { [K in keyof RawEventRow]: RawEventRow[K] | null };

/**
 * Where a normalize retry's walk of the open errors is: by (last_seen, id). A row's place in
 * the table follows its last write, so this order reads the errors, their raw events and the
 * output much as they were written, page after page. `seen` is the database's text of the
 * timestamp, to the microsecond.
 */
export interface ErrorCursor {
  seen: string;
  id: string;
}

/** One raw event a normalize retry batch came to. */
export interface ClaimedItem {
  item_id: string;
  /** Its open errors the selection picked in this batch (what the retry counts against --limit). */
  selected: number;
  /**
   * Where its open errors are (ctid), all locked by this transaction; null when another run
   * holds one of them (that run finishes the event and resolves them).
   */
  errors: string[] | null;
  /** The raw event, null when it is gone (archived or deleted) or held elsewhere. */
  event: RawEventRow | null;
}

/**
 * The claim of a normalize retry batch, in the caller's transaction: the next open errors of
 * the selection after `after`, seen last before `before` (the run's start: an error that fails
 * again during the run is not taken twice), and for their raw events every open normalize
 * error, locked FOR UPDATE SKIP LOCKED. An event is this batch's only when all of its open errors
 * are — the claim `errors retry` processes share, and the lock a normalize batch takes
 * (lockOpenErrors) before writing the same event: whoever holds the errors first finishes the
 * event, the other skips it (a retry) or waits and finds them resolved (normalize). No queue
 * row is written: the errors are the claim. Rows are locked and later resolved by their ctid,
 * which stays put while the lock is held: one heap visit each, no index search.
 */
export async function claimNormalizeErrors(
  tx: Queryable,
  selection: ErrorSelection,
  before: Date,
  after: ErrorCursor | undefined,
  limit: number,
): Promise<{ items: ClaimedItem[]; cursor: ErrorCursor | undefined }> {
  const { rows } = await tx.query<
    { item_id: string; selected: number; errors: string[] | null; seen: string; last_id: string } & NullableRow
  >(
    `
WITH picked AS MATERIALIZED (
  SELECT e.ctid AS at, e.id, e.item_id, e.last_seen
  FROM public.raw_event_errors e
  WHERE ${SELECTION_WHERE}
    AND e.stage = 'normalize'
    AND e.status = 'open'
    AND e.item_id IS NOT NULL
    AND e.last_seen <= $9
    AND (e.last_seen, e.id) > ($10::timestamptz, $11::uuid)
  ORDER BY e.last_seen, e.id
  LIMIT $12
), items AS MATERIALIZED (
  -- Each raw event picked, with how many open errors it has in all (counted in the index).
  SELECT p.item_id, count(*)::int AS selected, min(p.last_seen) AS seen, min(p.id::text) AS first,
         (SELECT count(*)::int FROM public.raw_event_errors x
          WHERE x.stage = 'normalize' AND x.status = 'open' AND x.item_id = p.item_id) AS open
  FROM picked p
  GROUP BY p.item_id
), wanted AS (
  -- The errors picked, and every open error of an event that has more than were picked.
  SELECT p.at FROM picked p
  UNION
  SELECT x.ctid
  FROM items i
  JOIN public.raw_event_errors x ON x.stage = 'normalize' AND x.status = 'open' AND x.item_id = i.item_id
  WHERE i.open > i.selected
), locked AS MATERIALIZED (
  SELECT e.ctid AS at, e.item_id
  FROM public.raw_event_errors e
  WHERE e.ctid = ANY (ARRAY(SELECT w.at FROM wanted w)) AND e.stage = 'normalize' AND e.status = 'open'
  FOR UPDATE SKIP LOCKED
), held AS (
  SELECT l.item_id, array_agg(l.at)::text[] AS errors
  FROM locked l
  JOIN items i ON i.item_id = l.item_id
  GROUP BY l.item_id, i.open
  HAVING count(*) = i.open
), last AS (
  SELECT p.last_seen::text AS seen, p.id::text AS last_id FROM picked p ORDER BY p.last_seen DESC, p.id DESC LIMIT 1
)
SELECT i.item_id, i.selected, h.errors, last.seen, last.last_id,
       r.id, r.user_id, r.provider, r.source_id, r.occurred_at, r.payload, r.batch_id
FROM items i
CROSS JOIN last
LEFT JOIN held h ON h.item_id = i.item_id
LEFT JOIN public.raw_events r ON r.id = h.item_id
ORDER BY i.seen, i.first`,
    [
      ...selectionParams({ ...selection, statuses: ['open'] }),
      before,
      after?.seen ?? '-infinity',
      after?.id ?? '00000000-0000-0000-0000-000000000000',
      limit,
    ],
  );
  const first = rows[0];
  return {
    cursor: first && { seen: first.seen, id: first.last_id },
    items: rows.map(({ item_id, selected, errors, seen: _seen, last_id: _last, ...r }) => ({
      item_id,
      selected,
      errors,
      event: r.id === null ? null : { ...r, id: r.id, user_id: r.user_id!, provider: r.provider! },
    })),
  };
}

/**
 * Open normalize errors of the selection a retry has still to come to (after `after`, seen last
 * before `before`) or found held by another run (the errors of the `held` raw events).
 */
export async function countOpenNormalize(
  db: Queryable,
  selection: ErrorSelection,
  before: Date,
  after: ErrorCursor | undefined,
  held: string[],
): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.stage = 'normalize'
  AND e.status = 'open'
  AND e.item_id IS NOT NULL
  AND ((e.last_seen <= $9 AND (e.last_seen, e.id) > ($10::timestamptz, $11::uuid)) OR e.item_id = ANY($12::uuid[]))`,
    [
      ...selectionParams({ ...selection, statuses: ['open'] }),
      before,
      after?.seen ?? '-infinity',
      after?.id ?? '00000000-0000-0000-0000-000000000000',
      held,
    ],
  );
  return rows[0]?.n ?? 0;
}

/** Open errors of the selection and stage that name no item (a raw event never known): none to retry. */
export async function countItemless(db: Queryable, selection: ErrorSelection, stage: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.stage = $9
  AND e.status = 'open'
  AND e.item_id IS NULL`,
    [...selectionParams({ ...selection, statuses: ['open'] }), stage],
  );
  return rows[0]?.n ?? 0;
}

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

/**
 * Which embedders and insight providers made the selected open errors of embed and insights: a
 * retry that would answer them with another one (the local embedder because the key is missing
 * from a cron job's environment) must be asked for, not fallen into.
 */
export async function providersOfOpen(db: Queryable, selection: ErrorSelection): Promise<{ stage: string; provider: string }[]> {
  const { rows } = await db.query<{ stage: string; provider: string }>(
    `
SELECT DISTINCT e.stage, coalesce(e.context ->> 'embedder', e.context ->> 'insights_provider') AS provider
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.status = 'open'
  AND e.stage IN ('embed', 'insights')
  AND coalesce(e.context ->> 'embedder', e.context ->> 'insights_provider') IS NOT NULL`,
    selectionParams({ ...selection, statuses: ['open'] }),
  );
  return rows;
}
