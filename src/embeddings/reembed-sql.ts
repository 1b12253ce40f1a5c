// The SQL of `embeddings backfill --reembed`: which rows are still without a vector, queueing
// them, and giving each the vector of its interaction's text.
import type { Queryable } from '../db/connect.js';
import type { EmbeddingColumns } from '../db/vector-column.js';

/** Rows without a vector whose legacy value (if any) cannot be copied: what --reembed is for. */
function needsReembed(cols: EmbeddingColumns): string {
  const noVector = `e.${cols.vector.name} IS NULL`;
  return cols.legacy === null
    ? noVector
    : `${noVector} AND (e.${cols.legacy} IS NULL OR omni_ingest.legacy_vector(e.${cols.legacy}) IS NULL)`;
}

/** Queues every such row once (a row queued already stays as it is). Returns how many were added. */
export async function enqueueReembed(db: Queryable, cols: EmbeddingColumns): Promise<number> {
  const { rowCount } = await db.query(`
INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
SELECT 'swap_reembed', e.id, e.user_id, i.source, i.occurred_at
FROM public.embeddings e
LEFT JOIN public.interactions i ON e.owner_type = 'interaction' AND i.id = e.owner_id
WHERE ${needsReembed(cols)}
ON CONFLICT (stage, item_id) DO NOTHING`);
  return rowCount ?? 0;
}

export interface ReembedRow {
  id: string;
  owner_type: string | null;
  owner_id: string | null;
  has_vector: boolean;
}

export async function readRows(db: Queryable, cols: EmbeddingColumns, ids: string[]): Promise<ReembedRow[]> {
  const { rows } = await db.query<ReembedRow>(
    `
SELECT e.id::text AS id, e.owner_type, e.owner_id::text AS owner_id, e.${cols.vector.name} IS NOT NULL AS has_vector
FROM public.embeddings e
WHERE e.id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

/** For --dry-run: the next rows after `after` that --reembed would take, read without queueing. */
export async function peekReembed(db: Queryable, cols: EmbeddingColumns, after: string | null, limit: number): Promise<ReembedRow[]> {
  const { rows } = await db.query<ReembedRow>(
    `
SELECT e.id::text AS id, e.owner_type, e.owner_id::text AS owner_id, false AS has_vector
FROM public.embeddings e
WHERE ($1::uuid IS NULL OR e.id > $1) AND ${needsReembed(cols)}
ORDER BY e.id
LIMIT $2`,
    [after, limit],
  );
  return rows;
}

/** Rows without a vector (for the dry run's progress bar: no parsing). */
export async function countWithoutVector(db: Queryable, cols: EmbeddingColumns): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM public.embeddings e WHERE e.${cols.vector.name} IS NULL`);
  return rows[0]?.n ?? 0;
}

/**
 * Gives each row the vector of its interaction's first chunk, as this embedder and model stored
 * it (just now, or earlier: a chunk is never sent twice), and notes it in the row's meta. Only
 * rows still without a vector: a row that got one meanwhile keeps it. After the swap the sync
 * trigger mirrors the new vector into embedding_legacy, as it does for every vector written.
 */
export async function fillFromFirstChunk(
  tx: Queryable,
  cols: EmbeddingColumns,
  rows: { id: string[]; hash0: string[] },
  embedder: { name: string; model: string },
): Promise<string[]> {
  if (rows.id.length === 0) return [];
  const v = cols.vector.name;
  const { rows: filled } = await tx.query<{ id: string }>(
    `
UPDATE public.embeddings e
SET ${v} = c.${v},
    meta = coalesce(e.meta, '{}'::jsonb)
      || jsonb_build_object('reembedded', jsonb_build_object('provider', $3::text, 'model', $4::text, 'chunk_id', c.id, 'at', now()))
FROM unnest($1::uuid[], $2::text[]) AS x(id, hash0), public.embeddings c
WHERE e.id = x.id
  AND e.${v} IS NULL
  AND c.user_id = e.user_id
  AND c.owner_type = e.owner_type
  AND c.owner_id = e.owner_id
  AND c.content_hash = x.hash0
  AND c.chunk_index = 0
  AND c.${v} IS NOT NULL
  AND c.meta ->> 'provider' = $3
  AND c.meta ->> 'model' = $4
RETURNING e.id::text AS id`,
    [rows.id, rows.hash0, embedder.name, embedder.model],
  );
  return filled.map((r) => r.id);
}
