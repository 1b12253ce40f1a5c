// The statements of `archive restore`: archived lines put back into public.raw_events, what the
// table then holds for each of them, and the claims and queue entries restored rows no longer
// need. Run in a transaction set up by `utcSession` (rows-sql.ts): a line is compared with its row
// as to_jsonb, whose timestamps are the session's time zone.
import type { Queryable } from '../db/connect.js';

/**
 * Puts archived lines back: each line becomes the row it was (jsonb_populate_record over the
 * table's own type: every column, by name). Rows already there — by id, or by their
 * (user, provider, source_id) — are left alone, so restoring twice adds nothing. A line whose
 * event another batch than `batchId` claims and whose row is gone is left out too: that batch
 * archived the event later, as it was then (changed since this batch wrote it, or restored and
 * archived again), and its version is the one to put back.
 */
export async function insertLines(tx: Queryable, lines: string[], batchId: string): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `
INSERT INTO public.raw_events
SELECT (jsonb_populate_record(NULL::public.raw_events, x::jsonb)).*
FROM unnest($1::text[]) AS x
WHERE NOT EXISTS (
SELECT 1
FROM omni_ingest.archived_events a
WHERE a.raw_event_id = (x::jsonb ->> 'id')::uuid AND a.batch_id::text <> $2)
ON CONFLICT DO NOTHING
RETURNING id::text AS id`,
    [lines, batchId],
  );
  return rows.map((r) => r.id);
}

/** What raw_events holds for a chunk of archived lines (restore's report, and its dry run). */
export interface LinesState {
  /** The row is there, exactly as the line has it. */
  same: number;
  /** The row is there, another version of it (changed since, or a newer archive of it restored). */
  otherVersion: number;
  /** Not there; another batch archived a newer version of it (insertLines leaves it out). */
  newerElsewhere: number;
  /** Not there; another event holds its (user, provider, source_id). */
  sourceTaken: number;
  /** Not there, and nothing keeps it out: what an insert would put back. */
  free: number;
}

export async function linesState(tx: Queryable, lines: string[], batchId: string): Promise<LinesState> {
  const { rows } = await tx.query<LinesState>(
    `
WITH x AS (
SELECT t.line::jsonb AS j, (t.line::jsonb ->> 'id')::uuid AS id
FROM unnest($1::text[]) AS t(line)
),
s AS (
SELECT r.id IS NOT NULL AS hot,
       r.id IS NOT NULL AND to_jsonb(r) = x.j AS same,
       EXISTS (SELECT 1 FROM omni_ingest.archived_events a WHERE a.raw_event_id = x.id AND a.batch_id::text <> $2) AS elsewhere,
       EXISTS (
       SELECT 1
       FROM public.raw_events o
       WHERE o.user_id = (x.j ->> 'user_id')::uuid AND o.provider = x.j ->> 'provider' AND o.source_id = x.j ->> 'source_id') AS taken
FROM x
LEFT JOIN public.raw_events r ON r.id = x.id
)
SELECT count(*) FILTER (WHERE same)::int AS same,
       count(*) FILTER (WHERE hot AND NOT same)::int AS "otherVersion",
       count(*) FILTER (WHERE NOT hot AND elsewhere)::int AS "newerElsewhere",
       count(*) FILTER (WHERE NOT hot AND NOT elsewhere AND taken)::int AS "sourceTaken",
       count(*) FILTER (WHERE NOT hot AND NOT elsewhere AND NOT taken)::int AS free
FROM s`,
    [lines, batchId],
  );
  return rows[0]!;
}

/** Restored events are not normalized again unless asked: take them off the queue the insert trigger put them on. */
export async function unqueue(tx: Queryable, ids: string[]): Promise<void> {
  await tx.query(`DELETE FROM omni_ingest.normalize_queue WHERE raw_event_id = ANY($1::uuid[])`, [ids]);
}

/** Restored rows are hot again: their claims go, so a later run can archive them anew. */
export async function dropClaims(tx: Queryable, ids: string[]): Promise<void> {
  await tx.query(
    `
DELETE FROM omni_ingest.archived_events a
WHERE a.raw_event_id = ANY($1::uuid[])
  AND EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = a.raw_event_id)`,
    [ids],
  );
}

/** Claims of the batch whose row is still not in raw_events: events the restore did not put back. */
export async function claimsNotHot(db: Queryable, batchId: string): Promise<{ n: number; sample: string[] }> {
  const { rows } = await db.query<{ n: number; sample: string[] | null }>(
    `
SELECT count(*)::int AS n, (array_agg(a.raw_event_id::text ORDER BY a.raw_event_id))[1:3] AS sample
FROM omni_ingest.archived_events a
WHERE a.batch_id = $1 AND NOT EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = a.raw_event_id)`,
    [batchId],
  );
  return { n: rows[0]?.n ?? 0, sample: rows[0]?.sample ?? [] };
}
