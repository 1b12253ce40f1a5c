// Closing dead letters by hand and deleting closed ones (SPEC §12): `errors discard` marks open
// errors discarded with the operator's reason (nothing is deleted); `errors purge` deletes
// resolved and discarded errors closed long enough ago, never open ones. Both work in bounded
// batches, so neither holds a long transaction on a large table.
import type { Queryable } from '../db/connect.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from './select.js';

const CHUNK = 10_000;

/**
 * Discards up to CHUNK open errors of the selection; returns how many. Rows another process holds
 * (a retry in flight) are skipped, not waited for.
 */
export async function discardChunk(db: Queryable, selection: ErrorSelection, runId: string | null, reason: string): Promise<number> {
  const { rowCount } = await db.query(
    `
WITH picked AS (
  SELECT e.id
  FROM public.raw_event_errors e
  WHERE ${SELECTION_WHERE}
    AND e.status = 'open'
  ORDER BY e.id
  LIMIT $11
  FOR UPDATE SKIP LOCKED
)
UPDATE public.raw_event_errors e
SET status = 'discarded', closed_at = now(), closed_by = $9, close_reason = $10
FROM picked
WHERE e.id = picked.id`,
    [...selectionParams({ ...selection, statuses: ['open'] }), runId, reason, CHUNK],
  );
  return rowCount ?? 0;
}

/** Open errors of the selection (what a discard would close). */
export async function countOpen(db: Queryable, selection: ErrorSelection): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.status = 'open'`,
    selectionParams({ ...selection, statuses: ['open'] }),
  );
  return rows[0]?.n ?? 0;
}

const PURGEABLE = `${SELECTION_WHERE}
  AND e.status IN ('resolved', 'discarded')
  AND e.closed_at < now() - make_interval(days => $9::int)`;

/** Resolved and discarded errors of the selection closed more than `days` ago. */
export async function countPurgeable(db: Queryable, selection: ErrorSelection, days: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${PURGEABLE}`,
    [...selectionParams(selection), days],
  );
  return rows[0]?.n ?? 0;
}

/** Deletes up to CHUNK of them; returns how many. */
export async function purgeChunk(db: Queryable, selection: ErrorSelection, days: number): Promise<number> {
  const { rowCount } = await db.query(
    `
DELETE FROM public.raw_event_errors
WHERE id IN (
  SELECT e.id
  FROM public.raw_event_errors e
  WHERE ${PURGEABLE}
  LIMIT $10
)`,
    [...selectionParams(selection), days, CHUNK],
  );
  return rowCount ?? 0;
}
