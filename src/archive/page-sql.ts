// The reads that write a batch's parts: its rows a page at a time in key order, as their lines
// (to_jsonb(row)::text, or the same bytes put together column by column). Both run in a
// transaction set up by `utcSession` (rows-sql.ts): timestamps are written in UTC.
import type { Queryable } from '../db/connect.js';

/** public.raw_events's columns, in order, with their types as format_type spells them. */
export async function rawEventColumns(db: Queryable): Promise<{ name: string; type: string }[]> {
  const { rows } = await db.query<{ name: string; type: string }>(`
SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'public.raw_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`);
  return rows;
}

/**
 * The ids of the next page of a batch, after `after`, in key order: from the claims'
 * (batch_id, raw_event_id) index. A statement of its own, so that the rows' read has one plan
 * whatever the statistics say (a merge join over the whole of raw_events, which a stale estimate
 * once chose, read the table once per page).
 */
export async function pageIds(tx: Queryable, batchId: string, after: string | null, limit: number): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `
SELECT raw_event_id::text AS id
FROM omni_ingest.archived_events
WHERE batch_id = $1 AND ($2::uuid IS NULL OR raw_event_id > $2)
ORDER BY batch_id, raw_event_id
LIMIT $3`,
    [batchId, after, limit],
  );
  return rows.map((r) => r.id);
}

/**
 * The line of raw_events row `r`: to_jsonb(r)::text's bytes, put together from each column's own
 * JSON — the keys in jsonb's order (shorter names first, then bytewise), ", " and ": " between
 * them, a jsonb column as its text, any other as to_json of the value (the same escaping and the
 * same ISO 8601 timestamps as to_jsonb). Only for the columns `RAW_EVENT_COLUMNS` lists (page.ts):
 * whoever reads with it checks the table has exactly those, in the same transaction. One concat()
 * rather than a chain of `||`, each of which copies the line so far. 200,000 rows of ~900 bytes
 * through \copy: 1.6 s, where the `||` chain took 1.9–2.1 s, as did to_jsonb(r), which rebuilds
 * every jsonb value of the row before printing it.
 */
const LINE_OF_R = `concat('{"id": ', to_json(r.id)::text,
', "payload": ', coalesce(r.payload::text, 'null'),
', "user_id": ', coalesce(to_json(r.user_id)::text, 'null'),
', "batch_id": ', coalesce(to_json(r.batch_id)::text, 'null'),
', "provider": ', coalesce(to_json(r.provider)::text, 'null'),
', "source_id": ', coalesce(to_json(r.source_id)::text, 'null'),
', "contact_id": ', coalesce(to_json(r.contact_id)::text, 'null'),
', "created_at": ', coalesce(to_json(r.created_at)::text, 'null'),
', "occurred_at": ', coalesce(to_json(r.occurred_at)::text, 'null'),
', "source_meta": ', coalesce(r.source_meta::text, 'null'),
'}')`;

/** These rows (those still there), in the order of `ids`, as their lines (LINE_OF_R). */
export async function rowLines(tx: Queryable, ids: string[]): Promise<{ id: string; line: string }[]> {
  const { rows } = await tx.query<{ id: string; line: string }>(
    `
SELECT r.id::text AS id, ${LINE_OF_R} AS line
FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)
JOIN public.raw_events r ON r.id = x.id
ORDER BY x.n`,
    [ids],
  );
  return rows;
}

/** These rows (those still there), in the order of `ids`, as to_jsonb(row)::text. */
export async function rowsAsJsonb(tx: Queryable, ids: string[]): Promise<{ id: string; line: string }[]> {
  const { rows } = await tx.query<{ id: string; line: string }>(
    `
SELECT r.id::text AS id, to_jsonb(r)::text AS line
FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)
JOIN public.raw_events r ON r.id = x.id
ORDER BY x.n`,
    [ids],
  );
  return rows;
}
