// `search`: the interactions nearest to a vector by cosine distance (pgvector `<=>`).
import pgvector from 'pgvector';
import type { Queryable } from '../db/connect.js';
import type { VectorColumn } from '../db/vector-column.js';
import { rangeParams, rangeWhere, type RangeOptions } from '../stages/engine/range.js';

export interface SearchHit {
  interaction_id: string;
  type: string;
  source: string | null;
  /** `pg` reads an infinite timestamptz (written by other means) as the number ±Infinity. */
  occurred_at: Date | number | null;
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
 * with pgvector's schema, whatever the search_path): the `pool` nearest chunks. The chunks of one
 * interaction collapse after it, so a pool can hold fewer interactions than wanted; its size
 * (`pooled`, on every row, and on a row of nulls when nothing matched) tells the caller whether
 * a larger pool could find more. Only filters on the interaction (time, source) join it inside:
 * without them the nearest chunks come from embeddings alone. A chunk counts only when its
 * interaction belongs to the chunk's user (the join at the end checks it on every path).
 */
function nearestQuery(c: VectorColumn, vector: number[], limit: number, pool: number, f: Filters): { text: string; values: unknown[] } {
  const joined = f.since !== undefined || f.until !== undefined || f.provider !== undefined;
  // $1..$5 the range (rangeWhere), or $1 the user alone; then the vector, the limit and the pool.
  const [q, n, p] = joined ? ['$6', '$7', '$8'] : ['$2', '$3', '$4'];
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
  LIMIT ${p}
), best AS (
  SELECT owner_id, user_id, min(distance) AS distance FROM nearest GROUP BY owner_id, user_id
), hits AS (
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
  LIMIT ${n}
)
SELECT h.*, p.pooled
FROM (SELECT count(*)::int AS pooled FROM nearest) p
LEFT JOIN hits h ON true
ORDER BY h.distance, h.interaction_id`;
  const tail = [pgvector.toSql(vector), limit, pool];
  return { text, values: joined ? [...rangeParams(f), ...tail] : [f.userId ?? null, ...tail] };
}

interface NearestRow extends Omit<SearchHit, 'interaction_id'> {
  interaction_id: string | null;
  pooled: number;
}

export interface Nearest {
  hits: SearchHit[];
  /** The chunks the pool held: as many as asked for means a larger pool may hold more interactions. */
  pooled: number;
}

export async function nearestInteractions(
  db: Queryable,
  column: VectorColumn,
  vector: number[],
  limit: number,
  pool: number,
  filters: Filters,
): Promise<Nearest> {
  const q = nearestQuery(column, vector, limit, pool, filters);
  const { rows } = await db.query<NearestRow>(q.text, q.values);
  const hits = rows.filter((r): r is NearestRow & SearchHit => r.interaction_id !== null).map(({ pooled: _, ...hit }) => hit);
  return { hits, pooled: rows[0]?.pooled ?? 0 };
}

/** The same query under EXPLAIN ANALYZE: its plan, one line per row, the query vector elided. */
export async function explainNearest(
  db: Queryable,
  column: VectorColumn,
  vector: number[],
  limit: number,
  pool: number,
  filters: Filters,
): Promise<string[]> {
  const q = nearestQuery(column, vector, limit, pool, filters);
  const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, q.values);
  return rows.map((r) => r['QUERY PLAN'].replace(/'\[[-0-9.,e+ ]{40,}\]'/g, `'[…${vector.length} values]'`));
}

/** hnsw.max_scan_tuples' default: how many tuples an iterative scan visits before it stops (raised, never lowered). */
const MAX_SCAN_TUPLES = 20_000;

/**
 * Search settings for this transaction, for the nearest `pool` chunks: how many candidates HNSW
 * keeps (ef_search: the whole pool, up to its maximum of 1000), and with pgvector 0.8+ an
 * iterative scan, so that neither a filter nor a pool past ef_search starves the result (the
 * scan goes on until the pool is full; it may visit a few times the pool's tuples). Without
 * iterative scans an index returns at most ef_search rows: a larger pool is read without it.
 */
export async function tuneSearch(tx: Queryable, pool: number): Promise<void> {
  const { rows } = await tx.query<{ iterative: boolean }>(`
SELECT coalesce(string_to_array(extversion, '.')::int[] >= '{0,8}'::int[], false) AS iterative
FROM pg_extension WHERE extname = 'vector'`);
  const iterative = rows[0]?.iterative === true;
  await tx.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(Math.min(1000, Math.max(40, pool)))]);
  if (iterative) {
    await tx.query(`SELECT set_config('hnsw.iterative_scan', 'strict_order', true)`);
    if (pool * 4 > MAX_SCAN_TUPLES)
      await tx.query(
        `SELECT set_config('hnsw.max_scan_tuples', greatest(coalesce(current_setting('hnsw.max_scan_tuples', true)::int, $2), $1)::text, true)`,
        [pool * 4, MAX_SCAN_TUPLES],
      );
  } else if (pool > 1000) {
    await tx.query(`SELECT set_config('enable_indexscan', 'off', true)`);
  }
}
