// The import's SQL: set-based inserts into raw_events, idempotent on (user_id, provider, source_id).
import type { Queryable } from '../../db/connect.js';

export interface RawEventColumns {
  userId: string[];
  provider: string[];
  sourceId: string[];
  payload: string[];
  occurredAt: Date[];
  sourceMeta: string[];
  batchId: string[];
}

/** Inserts the new events; ones already there are left alone. Returns how many were new. */
export async function insertRawEvents(tx: Queryable, c: RawEventColumns): Promise<number> {
  if (c.userId.length === 0) return 0;
  const { rows } = await tx.query<{ inserted: number }>(
    `
WITH inserted AS (
  INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, source_meta, batch_id)
  SELECT *
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[], $6::jsonb[], $7::uuid[])
  ON CONFLICT (user_id, provider, source_id) DO NOTHING
  RETURNING 1
)
SELECT count(*)::int AS inserted FROM inserted`,
    [c.userId, c.provider, c.sourceId, c.payload, c.occurredAt, c.sourceMeta, c.batchId],
  );
  return rows[0]?.inserted ?? 0;
}

export async function insertSyncAudit(db: Queryable, userId: string, provider: string, payload: unknown): Promise<void> {
  await db.query(
    `
INSERT INTO public.sync_audit (user_id, provider, action, payload)
VALUES ($1, $2, 'import', $3)`,
    [userId, provider, JSON.stringify(payload)],
  );
}

/** One record as the import writes it: its payload and meta as JSON text, its time as ISO 8601. */
export interface ImportRow {
  source_id: string;
  payload: string;
  occurred_at: string;
  source_meta: string;
}

/** The rows as one JSON document (payloads inlined, not escaped twice). */
function rowsJson(rows: ImportRow[]): string {
  return `[${rows.map((r) => `{"source_id":${JSON.stringify(r.source_id)},"occurred_at":${JSON.stringify(r.occurred_at)},"payload":${r.payload},"source_meta":${r.source_meta}}`).join(',')}]`;
}

/**
 * Inserts the batch's new events; an id already stored is left alone — or, with `update`, its
 * payload is replaced when it differs and it is queued for normalize again (the queue trigger
 * fires on insert only). Returns the source ids inserted and those updated.
 */
export async function writeRawEvents(
  tx: Queryable,
  o: { userId: string; provider: string; batchId: string; update: boolean },
  rows: ImportRow[],
): Promise<{ inserted: string[]; updated: string[] }> {
  if (rows.length === 0) return { inserted: [], updated: [] };
  const { rows: written } = await tx.query<{ source_id: string; inserted: boolean }>(
    o.update
      ? `
WITH written AS (
  INSERT INTO public.raw_events AS r (user_id, provider, source_id, payload, occurred_at, source_meta, batch_id)
  SELECT $1, $2, x.source_id, x.payload, x.occurred_at, x.source_meta, $3
  FROM json_to_recordset($4::json) AS x(source_id text, payload jsonb, occurred_at timestamptz, source_meta jsonb)
  ON CONFLICT (user_id, provider, source_id) DO UPDATE
  SET payload = excluded.payload, occurred_at = excluded.occurred_at, source_meta = excluded.source_meta, batch_id = excluded.batch_id
  WHERE r.payload IS DISTINCT FROM excluded.payload
  RETURNING r.id, r.user_id, r.provider, r.occurred_at, r.source_id, (r.xmax = 0) AS inserted
), queued AS (
  INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
  SELECT w.id, w.user_id, w.provider, w.occurred_at FROM written w WHERE NOT w.inserted
  ON CONFLICT (raw_event_id) DO NOTHING
)
SELECT source_id, inserted FROM written`
      : `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, source_meta, batch_id)
SELECT $1, $2, x.source_id, x.payload, x.occurred_at, x.source_meta, $3
FROM json_to_recordset($4::json) AS x(source_id text, payload jsonb, occurred_at timestamptz, source_meta jsonb)
ON CONFLICT (user_id, provider, source_id) DO NOTHING
RETURNING source_id, true AS inserted`,
    [o.userId, o.provider, o.batchId, rowsJson(rows)],
  );
  return {
    inserted: written.filter((w) => w.inserted).map((w) => w.source_id),
    updated: written.filter((w) => !w.inserted).map((w) => w.source_id),
  };
}

/** Of records whose id was already stored: the source ids whose stored payload differs from theirs. */
export async function differingPayloads(tx: Queryable, o: { userId: string; provider: string }, rows: ImportRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const { rows: differing } = await tx.query<{ source_id: string }>(
    `
SELECT x.source_id
FROM json_to_recordset($3::json) AS x(source_id text, payload jsonb, occurred_at timestamptz, source_meta jsonb)
JOIN public.raw_events r ON r.user_id = $1 AND r.provider = $2 AND r.source_id = x.source_id
WHERE r.payload IS DISTINCT FROM x.payload`,
    [o.userId, o.provider, rowsJson(rows)],
  );
  return new Set(differing.map((d) => d.source_id));
}
