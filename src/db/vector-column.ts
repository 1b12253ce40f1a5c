// Which column of public.embeddings holds the vectors: `embedding_v` until `embeddings swap`
// (SPEC §10) renames it `embedding`. Everything that reads or writes vectors asks here, so it
// follows the swap without a flag.
import type { Queryable } from './connect.js';

/** Where vectors go: the column's name, pgvector's type and its OID (for binary parameters). */
export interface VectorColumn {
  name: 'embedding_v' | 'embedding';
  /** The type schema-qualified (`extensions.vector` on Supabase), for casts whatever the search_path. */
  type: string;
  typeOid: number;
}

/**
 * The vector column: `embedding_v` until `embeddings swap` (SPEC §10) renames it `embedding`.
 * Read from the catalog so the stage works on both sides of the swap, wherever the extension's
 * schema is (Supabase keeps it in `extensions`).
 */
export async function vectorColumn(db: Queryable): Promise<VectorColumn> {
  const { rows } = await db.query<{ name: string; type: string; type_oid: number }>(`
SELECT a.attname AS name, quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS type, a.atttypid::int AS type_oid
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE a.attrelid = 'public.embeddings'::regclass
  AND a.attname IN ('embedding_v', 'embedding')
  AND t.typname = 'vector'
  AND NOT a.attisdropped
ORDER BY a.attname = 'embedding_v' DESC
LIMIT 1`);
  const row = rows[0];
  if (!row) throw new Error('public.embeddings has no vector column (embedding_v or embedding): run `omni-ingest migrate`');
  return { name: row.name === 'embedding' ? 'embedding' : 'embedding_v', type: row.type, typeOid: row.type_oid };
}
