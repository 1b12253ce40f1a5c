// `embeddings verify`: every row, in keyset batches, one read-only statement each.
import type { Queryable } from '../db/connect.js';
import type { EmbeddingColumns } from '../db/vector-column.js';

export interface VerifyBatch {
  rows: number;
  /** The last id of the batch: the next one starts after it. */
  last_id: string | null;
  no_vector: number;
  no_vector_examples: string[] | null;
  differs: number;
  differs_examples: string[] | null;
}

/**
 * Checks the `limit` rows after `after` (up to `hi`, inclusive): which have no 1536-d vector, and which hold a valid
 * legacy value their vector differs from by more than `tolerance` in some component. Each
 * row's comparison is computed once (MATERIALIZED), then counted and sampled.
 */
export async function verifyBatch(
  db: Queryable,
  cols: EmbeddingColumns,
  after: string | null,
  hi: string | null,
  limit: number,
  tolerance: number,
): Promise<VerifyBatch> {
  const v = `e.${cols.vector.name}`;
  // Without a legacy column there is nothing to compare (and no $4 to type).
  const differs = cols.legacy === null ? 'false' : `omni_ingest.legacy_embedding_differs(e.${cols.legacy}, ${v}, $4)`;
  const { rows } = await db.query<VerifyBatch>(
    `
WITH checked AS MATERIALIZED (
  SELECT e.id,
         ${v} IS NULL OR ${cols.vector.schema}.vector_dims(${v}) <> 1536 AS no_vector,
         ${differs} AS differs
  FROM public.embeddings e
  WHERE ($1::uuid IS NULL OR e.id > $1)
    AND ($3::uuid IS NULL OR e.id <= $3)
  ORDER BY e.id
  LIMIT $2
)
SELECT count(*)::int AS rows,
       (array_agg(id ORDER BY id DESC))[1]::text AS last_id,
       count(*) FILTER (WHERE no_vector)::int AS no_vector,
       ((array_agg(id ORDER BY id) FILTER (WHERE no_vector))[1:3])::text[] AS no_vector_examples,
       count(*) FILTER (WHERE differs)::int AS differs,
       ((array_agg(id ORDER BY id) FILTER (WHERE differs))[1:3])::text[] AS differs_examples
FROM checked`,
    cols.legacy === null ? [after, limit, hi] : [after, limit, hi, tolerance],
  );
  return rows[0]!;
}

export async function countEmbeddings(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.embeddings`);
  return rows[0]?.n ?? 0;
}
