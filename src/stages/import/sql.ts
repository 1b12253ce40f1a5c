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
