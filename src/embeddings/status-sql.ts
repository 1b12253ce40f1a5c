// `embeddings status`: what the table holds, which state the swap is in, the index.
import type { Queryable } from '../db/connect.js';
import type { EmbeddingColumns } from '../db/vector-column.js';

export interface LegacyCounts {
  rows: number;
  with_vector: number;
  valid: number;
  wrong_dimension: number;
  malformed: number;
  non_finite: number;
  null: number;
  /** Valid legacy values whose vector is not there yet: what the backfill will copy. */
  to_copy: number;
}

/**
 * Rows by the state of their legacy value. Only values not judged yet are parsed: one the
 * backfill rejected keeps its kind while it is unchanged (same MD5), and one whose vector is
 * there counts as valid (the backfill or the sync trigger copied it; `embeddings verify`
 * compares each). So status is cheap once the backfill has run, and exact before.
 */
export async function legacyCounts(db: Queryable, cols: EmbeddingColumns): Promise<LegacyCounts> {
  const v = `e.${cols.vector.name}`;
  const kind =
    cols.legacy === null
      ? `'null'`
      : `CASE
       WHEN e.${cols.legacy} IS NULL THEN 'null'
       WHEN r.embedding_id IS NOT NULL AND r.legacy_md5 = md5(e.${cols.legacy}) THEN r.kind
       WHEN ${v} IS NOT NULL THEN 'valid'
       ELSE omni_ingest.legacy_embedding_kind(e.${cols.legacy})
     END`;
  const { rows } = await db.query<LegacyCounts>(`
SELECT count(*)::int AS rows,
       count(*) FILTER (WHERE has_vector)::int AS with_vector,
       count(*) FILTER (WHERE kind = 'valid')::int AS valid,
       count(*) FILTER (WHERE kind = 'wrong_dimension')::int AS wrong_dimension,
       count(*) FILTER (WHERE kind = 'malformed')::int AS malformed,
       count(*) FILTER (WHERE kind = 'non_finite')::int AS non_finite,
       count(*) FILTER (WHERE kind = 'null')::int AS "null",
       count(*) FILTER (WHERE kind = 'valid' AND NOT has_vector)::int AS to_copy
FROM (
  SELECT ${v} IS NOT NULL AS has_vector,
     ${kind} AS kind
  FROM public.embeddings e
  LEFT JOIN omni_ingest.embedding_legacy_rejects r ON r.embedding_id = e.id
) k`);
  return rows[0]!;
}

export interface VectorIndex {
  name: string;
  method: string;
  opclass: string;
  valid: boolean;
  options: string[] | null;
  bytes: number;
  definition: string;
}

/** The vector indexes (hnsw, ivfflat) on the vector column, valid or not. */
export async function vectorIndexes(db: Queryable, column: string): Promise<VectorIndex[]> {
  const { rows } = await db.query<VectorIndex>(
    `
SELECT i.relname AS name, am.amname AS method, opc.opcname AS opclass, x.indisvalid AS valid,
       i.reloptions AS options, pg_relation_size(x.indexrelid)::float8 AS bytes, pg_get_indexdef(x.indexrelid) AS definition
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
JOIN pg_opclass opc ON opc.oid = x.indclass[0]
JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
WHERE x.indrelid = to_regclass('public.embeddings')
  AND am.amname IN ('hnsw', 'ivfflat')
  AND a.attname = $1
ORDER BY i.relname`,
    [column],
  );
  return rows;
}

export interface BackfillProgress {
  pass: number;
  ranges: number;
  ranges_done: number;
  rows_planned: number;
  rows_examined: number;
  planned_at: Date;
  finished_at: Date | null;
}

/** The latest backfill pass: its ranges and how far they got. */
export async function latestPass(db: Queryable): Promise<BackfillProgress | null> {
  const { rows } = await db.query<BackfillProgress>(`
SELECT pass, count(*)::int AS ranges, count(done_at)::int AS ranges_done,
       sum(rows_planned)::float8 AS rows_planned, sum(rows_examined)::float8 AS rows_examined,
       min(planned_at) AS planned_at,
       CASE WHEN count(done_at) = count(*) THEN max(done_at) END AS finished_at
FROM omni_ingest.embedding_backfill_ranges
WHERE pass = (SELECT max(pass) FROM omni_ingest.embedding_backfill_ranges)
GROUP BY pass`);
  return rows[0] ?? null;
}

/** Rows queued for `--reembed` and not done yet. */
export async function queuedReembeds(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'swap_reembed'`);
  return rows[0]?.n ?? 0;
}
