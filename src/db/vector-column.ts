// Which column of public.embeddings holds the vectors: `embedding_v` until `embeddings swap`
// (SPEC §10) renames it `embedding` (and the legacy text `embedding_legacy`). Everything that
// reads or writes vectors asks here, so it follows the swap without a flag.
import { ConfigError } from '../errors.js';
import type { Queryable } from './connect.js';

/** Where vectors go: the column's name, pgvector's type and its OID (for binary parameters). */
export interface VectorColumn {
  name: 'embedding_v' | 'embedding';
  /** The type schema-qualified (`extensions.vector` on Supabase), for casts whatever the search_path. */
  type: string;
  /** pgvector's schema, quoted: its operator classes (vector_cosine_ops) are qualified with it. */
  schema: string;
  typeOid: number;
}

/**
 * A column's type as SQL text that means the same whatever the session's search_path:
 * `format_type` would print `extensions.vector(1536)` where pgvector's schema is not on the path
 * (and `vector(1536)` where it is), so pgvector's own type prints as `vector(n)` wherever the
 * extension lives; a `vector` type of any other origin keeps its qualified name. Expects `a` to
 * be the pg_attribute row.
 */
export const COLUMN_TYPE_SQL = `CASE
  WHEN a.atttypid = (SELECT t.oid FROM pg_type t JOIN pg_extension e ON e.extnamespace = t.typnamespace
                     WHERE e.extname = 'vector' AND t.typname = 'vector')
  THEN 'vector' || CASE WHEN a.atttypmod > 0 THEN '(' || a.atttypmod || ')' ELSE '' END
  ELSE format_type(a.atttypid, a.atttypmod)
END`;

/** Before `embeddings swap`, or after it (`swap --rollback` goes back). */
export type SwapPhase = 'before-swap' | 'swapped';

export interface EmbeddingColumns {
  phase: SwapPhase;
  vector: VectorColumn;
  /** The legacy text column: `embedding` before the swap, `embedding_legacy` after; null once dropped. */
  legacy: 'embedding' | 'embedding_legacy' | null;
}

interface ColumnRow {
  name: string;
  typname: string;
  schema: string;
  type_oid: number;
}

const NOT_MIGRATED = 'public.embeddings has no vector column (embedding_v or embedding)';

/** Reads the three candidate columns from the catalog: no assumption about search_path or names. */
export async function embeddingColumns(db: Queryable): Promise<EmbeddingColumns> {
  const { rows } = await db.query<ColumnRow>(`
SELECT a.attname AS name, t.typname, quote_ident(n.nspname) AS schema, a.atttypid::int AS type_oid
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE a.attrelid = to_regclass('public.embeddings')
  AND a.attname IN ('embedding_v', 'embedding', 'embedding_legacy')
  AND a.attnum > 0
  AND NOT a.attisdropped`);
  const col = (name: string) => rows.find((r) => r.name === name);
  const vectorRow = [col('embedding_v'), col('embedding')].find((r) => r?.typname === 'vector');
  if (!vectorRow) throw new ConfigError(NOT_MIGRATED, { hint: 'run `omni-ingest migrate`' });
  const vector: VectorColumn = {
    name: vectorRow.name === 'embedding' ? 'embedding' : 'embedding_v',
    type: `${vectorRow.schema}.vector`,
    schema: vectorRow.schema,
    typeOid: vectorRow.type_oid,
  };
  const isText = (name: string) => col(name)?.typname === 'text';
  if (vector.name === 'embedding_v') return { phase: 'before-swap', vector, legacy: isText('embedding') ? 'embedding' : null };
  return { phase: 'swapped', vector, legacy: isText('embedding_legacy') ? 'embedding_legacy' : null };
}

/**
 * The vector column: `embedding_v` until `embeddings swap` (SPEC §10) renames it `embedding`.
 * Read from the catalog so the stages work on both sides of the swap, wherever the extension's
 * schema is (Supabase keeps it in `extensions`).
 */
export async function vectorColumn(db: Queryable): Promise<VectorColumn> {
  return (await embeddingColumns(db)).vector;
}

/** vectorColumn read once per database a stage is handed (a run's workers share one). */
export function vectorColumnPerDb(): (db: Queryable) => Promise<VectorColumn> {
  const columns = new WeakMap<Queryable, Promise<VectorColumn>>();
  return (db) => {
    let c = columns.get(db);
    if (!c) {
      c = vectorColumn(db);
      columns.set(db, c);
    }
    return c;
  };
}
