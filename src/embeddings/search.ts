// `search "<text>"` (and the demo's semantic search): embeds the text with the embedder `embed`
// uses, then asks for the nearest interactions — through the HNSW cosine index when there is
// one (`embeddings index`), whichever column holds the vectors.
import type { Db } from '../db/connect.js';
import { embeddingColumns } from '../db/vector-column.js';
import { EXPECTED_DIMENSIONS, refuseDimensions, type Embedder } from '../embed/embedder.js';
import type { RangeOptions } from '../stages/engine/range.js';
import { explainNearest, nearestInteractions, type SearchHit, tuneSearch } from './search-sql.js';
import { vectorIndexes } from './status-sql.js';

export type { SearchHit } from './search-sql.js';

export interface SearchOptions {
  text: string;
  limit: number;
  filters: Pick<RangeOptions, 'since' | 'until' | 'userId' | 'provider'>;
  embedder: Embedder;
  /** Also run the query under EXPLAIN ANALYZE and return its plan. */
  explain: boolean;
}

export interface SearchResult {
  query: string;
  embedder: { name: string; model: string; lexical: boolean };
  vectorColumn: string;
  /** The valid HNSW cosine index on the vector column, if any. */
  index: string | null;
  hits: SearchHit[];
  plan: string[] | null;
  /** Whether the plan went through that index (with --explain). */
  usesIndex: boolean | null;
}

export async function searchInteractions(db: Db, o: SearchOptions): Promise<SearchResult> {
  const { embedder } = o;
  const [vector] = (await embedder.embed([o.text])).vectors;
  if (!vector || vector.length !== EXPECTED_DIMENSIONS) throw refuseDimensions(embedder.model, vector?.length ?? 0, 'returned');
  const query = Array.from(vector);
  const cols = await embeddingColumns(db);
  const index =
    (await vectorIndexes(db, cols.vector.name)).find((i) => i.valid && i.method === 'hnsw' && i.opclass === 'vector_cosine_ops')?.name ??
    null;
  const { hits, plan } = await db.transaction(async (tx) => {
    // Four chunks per interaction wanted, to start with; a long document's chunks can fill that
    // pool, so while it came back full and short of interactions, a pool four times larger.
    let pool = o.limit * 4;
    for (;;) {
      await tuneSearch(tx, pool);
      const found = await nearestInteractions(tx, cols.vector, query, o.limit, pool, o.filters);
      if (found.hits.length < o.limit && found.pooled >= pool) {
        pool *= 4;
        continue;
      }
      return { hits: found.hits, plan: o.explain ? await explainNearest(tx, cols.vector, query, o.limit, pool, o.filters) : null };
    }
  });
  return {
    query: o.text,
    embedder: { name: embedder.name, model: embedder.model, lexical: embedder.lexical },
    vectorColumn: cols.vector.name,
    index,
    hits,
    plan,
    usesIndex: plan === null ? null : index !== null && plan.some((line) => line.includes(index)),
  };
}
