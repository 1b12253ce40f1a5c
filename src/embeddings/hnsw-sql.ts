// The SQL of `embeddings index`. DDL cannot take parameters: the names come from the catalog or
// are constants, and m / ef_construction are whole numbers checked by the command's schemas.
import type { Queryable } from '../db/connect.js';
import type { VectorColumn } from '../db/vector-column.js';

/** The index search uses, whichever column holds the vectors (a rename keeps it). */
export const INDEX_NAME = 'embeddings_vector_hnsw_idx';

/** A rebuild's new index while the old one still serves search; renamed INDEX_NAME once the old is dropped. */
export const NEW_INDEX_NAME = `${INDEX_NAME}_new`;

export interface HnswParams {
  m: number;
  efConstruction: number;
}

export async function createHnswIndex(
  conn: Queryable,
  column: VectorColumn,
  name: string,
  p: HnswParams,
  concurrently: boolean,
): Promise<void> {
  await conn.query(`
CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${name}
ON public.embeddings USING hnsw (${column.name} ${column.schema}.vector_cosine_ops)
WITH (m = ${Math.trunc(p.m)}, ef_construction = ${Math.trunc(p.efConstruction)})`);
}

export async function dropIndex(conn: Queryable, name: string, concurrently: boolean): Promise<void> {
  await conn.query(`DROP INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF EXISTS public.${quoteIdent(name)}`);
}

export async function renameIndex(conn: Queryable, from: string, to: string): Promise<void> {
  await conn.query(`ALTER INDEX public.${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
}

/** Index names come from the catalog: quoted, so any name an operator gave one is safe here. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Sets (or with null, resets) maintenance_work_mem for this session. */
export async function setMaintenanceWorkMem(conn: Queryable, value: string | null): Promise<void> {
  if (value === null) await conn.query(`RESET maintenance_work_mem`);
  else await conn.query(`SELECT set_config('maintenance_work_mem', $1, false)`, [value]);
}

export async function maintenanceWorkMem(conn: Queryable): Promise<{ setting: string; bytes: number }> {
  const { rows } = await conn.query<{ setting: string; bytes: number }>(`
SELECT current_setting('maintenance_work_mem') AS setting, pg_size_bytes(current_setting('maintenance_work_mem'))::float8 AS bytes`);
  return rows[0]!;
}

export interface BuildProgress {
  phase: string;
  blocks_total: number;
  blocks_done: number;
  tuples_total: number;
  tuples_done: number;
}

/** What the build of an index on public.embeddings is doing (read from another connection). */
export async function buildProgress(db: Queryable): Promise<BuildProgress | undefined> {
  const { rows } = await db.query<BuildProgress>(`
SELECT phase, blocks_total::float8 AS blocks_total, blocks_done::float8 AS blocks_done,
       tuples_total::float8 AS tuples_total, tuples_done::float8 AS tuples_done
FROM pg_stat_progress_create_index
WHERE relid = to_regclass('public.embeddings')
LIMIT 1`);
  return rows[0];
}

/** Rows with a vector: what the index will hold (for the memory estimate). */
export async function countVectors(db: Queryable, column: VectorColumn): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM public.embeddings WHERE ${column.name} IS NOT NULL`);
  return rows[0]?.n ?? 0;
}

/** Fresh statistics, so the planner sees the index's worth at once (not at autovacuum's next turn). */
export async function analyzeEmbeddings(db: Queryable): Promise<void> {
  await db.query(`ANALYZE public.embeddings`);
}
