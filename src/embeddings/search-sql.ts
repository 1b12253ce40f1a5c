// `search`: the interactions nearest to a vector by cosine distance (pgvector `<=>`).
import pgvector from 'pgvector';
import type { Queryable } from '../db/connect.js';
import type { VectorColumn } from '../db/vector-column.js';
import { rangeParams, rangeWhere, type RangeOptions } from '../stages/engine/range.js';

export interface SearchHit {
  interaction_id: string;
  type: string;
  source: string | null;
  occurred_at: Date;
  /** The contact's name, else the sender's name or address as the source recorded it. */
  who: string | null;
  subject: string | null;
  snippet: string;
  distance: number;
}

const IN_RANGE = rangeWhere({ at: 'i.occurred_at', user: 'e.user_id', provider: 'i.source', item: 'i.id' });

type Filters = Pick<RangeOptions, 'since' | 'until' | 'userId' | 'provider'>;

/**
 * The inner ORDER BY distance LIMIT is the shape an HNSW index serves (the operator qualified
 * with pgvector's schema, whatever the search_path); the chunks of one interaction collapse
 * after it, which is why it takes four chunks per hit wanted. Only filters on the interaction
 * (time, source) join it inside: without them the nearest chunks come from embeddings alone.
 * A chunk counts only when its interaction belongs to the chunk's user (the join at the end
 * checks it on every path).
 */
function nearestQuery(c: VectorColumn, vector: number[], limit: number, f: Filters): { text: string; values: unknown[] } {
  const joined = f.since !== undefined || f.until !== undefined || f.provider !== undefined;
  // $1..$5 the range (rangeWhere), or $1 the user alone; then the vector and the limit.
  const [q, n] = joined ? ['$6', '$7'] : ['$2', '$3'];
  const distance = `e.${c.name} OPERATOR(${c.schema}.<=>) ${q}::${c.type}`;
  const text = `
WITH nearest AS (
  SELECT e.owner_id, e.user_id, ${distance} AS distance
  FROM public.embeddings e
  ${joined ? 'JOIN public.interactions i ON i.id = e.owner_id AND i.user_id = e.user_id' : ''}
  WHERE e.owner_type = 'interaction'
    AND e.${c.name} IS NOT NULL
    AND ${joined ? IN_RANGE : '($1::uuid IS NULL OR e.user_id = $1)'}
  ORDER BY ${distance}
  LIMIT ${n} * 4
), best AS (
  SELECT owner_id, user_id, min(distance) AS distance FROM nearest GROUP BY owner_id, user_id
)
SELECT i.id::text AS interaction_id, i.type, i.source, i.occurred_at,
       coalesce(c.display_name, i.source_meta -> 'names' ->> (i.source_meta -> 'from' -> 0 ->> 'value'),
                i.source_meta -> 'from' -> 0 ->> 'value', c.primary_email, c.primary_phone) AS who,
       i.subject,
       left(btrim(regexp_replace(coalesce(i.body_text, ''), '\\s+', ' ', 'g')), 160) AS snippet,
       b.distance::float8 AS distance
FROM best b
JOIN public.interactions i ON i.id = b.owner_id AND i.user_id = b.user_id
LEFT JOIN public.contacts c ON c.id = i.contact_id
ORDER BY b.distance, i.id
LIMIT ${n}`;
  const tail = [pgvector.toSql(vector), limit];
  return { text, values: joined ? [...rangeParams(f), ...tail] : [f.userId ?? null, ...tail] };
}

export async function nearestInteractions(
  db: Queryable,
  column: VectorColumn,
  vector: number[],
  limit: number,
  filters: Filters,
): Promise<SearchHit[]> {
  const q = nearestQuery(column, vector, limit, filters);
  const { rows } = await db.query<SearchHit>(q.text, q.values);
  return rows;
}

/** The same query under EXPLAIN ANALYZE: its plan, one line per row, the query vector elided. */
export async function explainNearest(
  db: Queryable,
  column: VectorColumn,
  vector: number[],
  limit: number,
  filters: Filters,
): Promise<string[]> {
  const q = nearestQuery(column, vector, limit, filters);
  const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, q.values);
  return rows.map((r) => r['QUERY PLAN'].replace(/'\[[-0-9.,e+ ]{40,}\]'/g, `'[…${vector.length} values]'`));
}

/**
 * Search settings for this transaction: how many candidates HNSW keeps (enough for four chunks
 * per hit), and with pgvector 0.8+, an iterative scan so filters do not starve the result.
 */
export async function tuneSearch(tx: Queryable, efSearch: number): Promise<void> {
  const { rows } = await tx.query<{ iterative: boolean }>(`
SELECT coalesce(string_to_array(extversion, '.')::int[] >= '{0,8}'::int[], false) AS iterative
FROM pg_extension WHERE extname = 'vector'`);
  await tx.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(efSearch)]);
  if (rows[0]?.iterative) await tx.query(`SELECT set_config('hnsw.iterative_scan', 'strict_order', true)`);
}
