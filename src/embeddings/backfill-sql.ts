// The backfill's SQL: passes of keyset ranges over public.embeddings.id, claimed with
// FOR UPDATE SKIP LOCKED; a batch copies the valid legacy values of the next ids of its range in
// one set-based UPDATE, and records what it could not copy.
import type { Queryable } from '../db/connect.js';
import type { EmbeddingColumns } from '../db/vector-column.js';

/**
 * Rows the backfill still has to look at: a legacy value, no vector, not already judged invalid.
 * The MD5 is computed only for rows with a judgement (the CASE): hashing every legacy value would
 * read the whole table's text.
 */
export async function countUncopied(db: Queryable, cols: EmbeddingColumns, legacy: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n
FROM public.embeddings e
LEFT JOIN omni_ingest.embedding_legacy_rejects r ON r.embedding_id = e.id
WHERE e.${legacy} IS NOT NULL
  AND e.${cols.vector.name} IS NULL
  AND CASE WHEN r.embedding_id IS NULL THEN true ELSE r.legacy_md5 <> md5(e.${legacy}) END`);
  return rows[0]?.n ?? 0;
}

export interface PassState {
  pass: number;
  open: number;
  /** Rows planned less rows examined, over the open ranges. */
  remaining: number;
}

/** The latest pass and how much of it is left (null before the first). */
export async function currentPass(db: Queryable): Promise<PassState | null> {
  const { rows } = await db.query<PassState>(`
SELECT pass,
       count(*) FILTER (WHERE done_at IS NULL)::int AS open,
       coalesce(sum(greatest(rows_planned - rows_examined, 0)) FILTER (WHERE done_at IS NULL), 0)::float8 AS remaining
FROM omni_ingest.embedding_backfill_ranges
WHERE pass = (SELECT max(pass) FROM omni_ingest.embedding_backfill_ranges)
GROUP BY pass`);
  return rows[0] ?? null;
}

/**
 * Serialises planning between processes (a transaction-scoped table lock, so it works behind
 * PgBouncer): the second planner waits, then finds the first one's pass.
 */
export async function lockRanges(tx: Queryable): Promise<void> {
  await tx.query(`LOCK TABLE omni_ingest.embedding_backfill_ranges IN SHARE ROW EXCLUSIVE MODE`);
}

/** Every `step`-th id in key order: the upper bounds of ranges of `step` rows each. */
export async function rangeBounds(tx: Queryable, step: number): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `
SELECT id::text AS id
FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM public.embeddings) n
WHERE rn % $1 = 0
ORDER BY id`,
    [step],
  );
  return rows.map((r) => r.id);
}

export async function insertRanges(
  tx: Queryable,
  pass: number,
  ranges: { lo: (string | null)[]; hi: (string | null)[]; rows: number[] },
): Promise<void> {
  await tx.query(
    `
INSERT INTO omni_ingest.embedding_backfill_ranges (pass, seq, lo, hi, rows_planned)
SELECT $1, r.seq, r.lo, r.hi, r.rows
FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) WITH ORDINALITY AS r(lo, hi, rows, seq)`,
    [pass, ranges.lo, ranges.hi, ranges.rows],
  );
}

export interface ClaimedRange {
  seq: number;
  lo: string | null;
  hi: string | null;
  cursor: string | null;
}

/** The first open range of the pass no other batch holds; locked until this transaction ends. */
export async function claimRange(tx: Queryable, pass: number): Promise<ClaimedRange | undefined> {
  const { rows } = await tx.query<ClaimedRange>(
    `
SELECT seq, lo::text AS lo, hi::text AS hi, cursor::text AS cursor
FROM omni_ingest.embedding_backfill_ranges
WHERE pass = $1 AND done_at IS NULL
ORDER BY seq
LIMIT 1
FOR UPDATE SKIP LOCKED`,
    [pass],
  );
  return rows[0];
}

/** The next `limit` ids after `after` (exclusive) up to `hi` (inclusive), in key order. */
export async function nextIds(tx: Queryable, after: string | null, hi: string | null, limit: number): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `
SELECT id::text AS id
FROM public.embeddings
WHERE ($1::uuid IS NULL OR id > $1)
  AND ($2::uuid IS NULL OR id <= $2)
ORDER BY id
LIMIT $3`,
    [after, hi, limit],
  );
  return rows.map((r) => r.id);
}

export async function advanceRange(
  tx: Queryable,
  pass: number,
  seq: number,
  cursor: string | null,
  examined: number,
  done: boolean,
): Promise<void> {
  await tx.query(
    `
UPDATE omni_ingest.embedding_backfill_ranges
SET cursor = coalesce($3::uuid, cursor), rows_examined = rows_examined + $4, done_at = CASE WHEN $5 THEN now() END
WHERE pass = $1 AND seq = $2`,
    [pass, seq, cursor, examined, done],
  );
}

export interface CopyOutcome {
  /** Rows whose vector was filled from their legacy value by this batch. */
  copied: number;
  /** Rows with a legacy value that is not a valid 1536-d vector (left null). */
  rejected: string[];
  /** Rows that had a vector already. */
  present: number;
  /** Rows with neither a legacy value nor a vector. */
  empty: number;
}

/**
 * The batch's one write: every valid legacy value of these rows into the vector column, in one
 * UPDATE. The value is read from the row being updated (under its lock), so a legacy write that
 * committed meanwhile is the one copied; a vector already there (the sync trigger, embed) is
 * left alone.
 */
export async function copyLegacy(tx: Queryable, cols: EmbeddingColumns, legacy: string, ids: string[]): Promise<CopyOutcome> {
  const v = cols.vector.name;
  const updated = await tx.query<{ id: string; copied: boolean }>(
    `
UPDATE public.embeddings e
SET ${v} = omni_ingest.legacy_vector(e.${legacy})
WHERE e.id = ANY($1::uuid[]) AND e.${v} IS NULL AND e.${legacy} IS NOT NULL
RETURNING e.id::text AS id, e.${v} IS NOT NULL AS copied`,
    [ids],
  );
  const { rows } = await tx.query<{ with_vector: number; empty: number }>(
    `
SELECT count(*) FILTER (WHERE ${v} IS NOT NULL)::int AS with_vector,
       count(*) FILTER (WHERE ${v} IS NULL AND ${legacy} IS NULL)::int AS empty
FROM public.embeddings
WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const copied = updated.rows.filter((r) => r.copied).length;
  return {
    copied,
    rejected: updated.rows.filter((r) => !r.copied).map((r) => r.id),
    present: (rows[0]?.with_vector ?? 0) - copied,
    empty: rows[0]?.empty ?? 0,
  };
}

export interface RejectedRow {
  id: string;
  user_id: string;
  owner_type: string | null;
  owner_id: string | null;
  kind: 'wrong_dimension' | 'malformed' | 'non_finite';
  dimensions: number;
  length: number;
  excerpt: string;
  legacy_md5: string;
  provider: string | null;
  raw_event_id: string | null;
}

/** What is wrong with each rejected value, and whose it is (the interaction's source and raw event). */
export async function describeRejected(tx: Queryable, legacy: string, ids: string[]): Promise<RejectedRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.query<RejectedRow>(
    `
SELECT e.id::text AS id, e.user_id::text AS user_id, e.owner_type, e.owner_id::text AS owner_id,
       -- 'valid' cannot come back for a value the copy refused; were it to, it is not a vector.
       CASE j.kind WHEN 'valid' THEN 'malformed' ELSE j.kind END AS kind,
       CASE WHEN btrim(e.${legacy}, E' \\t\\r\\n[]') = '' THEN 0
            ELSE length(e.${legacy}) - length(replace(e.${legacy}, ',', '')) + 1 END AS dimensions,
       length(e.${legacy}) AS length, left(e.${legacy}, 80) AS excerpt, md5(e.${legacy}) AS legacy_md5,
       i.source AS provider, i.raw_event_id::text AS raw_event_id
FROM public.embeddings e
CROSS JOIN LATERAL (SELECT omni_ingest.legacy_embedding_kind(e.${legacy}) AS kind) j
LEFT JOIN public.interactions i ON e.owner_type = 'interaction' AND i.id = e.owner_id
WHERE e.id = ANY($1::uuid[])
ORDER BY e.id`,
    [ids],
  );
  return rows;
}

/**
 * Remembers rejected values (each is reported once while it is unchanged) and returns the ids
 * that are new or changed since: those get a dead letter.
 */
export async function recordRejects(tx: Queryable, rejected: RejectedRow[]): Promise<Set<string>> {
  if (rejected.length === 0) return new Set();
  const { rows } = await tx.query<{ id: string }>(
    `
INSERT INTO omni_ingest.embedding_legacy_rejects AS r (embedding_id, kind, dimensions, legacy_md5)
SELECT x.id, x.kind, x.dimensions, x.legacy_md5
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS x(id, kind, dimensions, legacy_md5)
ON CONFLICT (embedding_id) DO UPDATE
SET kind = excluded.kind, dimensions = excluded.dimensions, legacy_md5 = excluded.legacy_md5, found_at = now()
WHERE r.legacy_md5 IS DISTINCT FROM excluded.legacy_md5
RETURNING r.embedding_id::text AS id`,
    [rejected.map((r) => r.id), rejected.map((r) => r.kind), rejected.map((r) => r.dimensions), rejected.map((r) => r.legacy_md5)],
  );
  return new Set(rows.map((r) => r.id));
}

/** For --dry-run: what each of the next rows after `after` would be, read without writing. */
export async function peekKinds(
  db: Queryable,
  cols: EmbeddingColumns,
  legacy: string,
  after: string | null,
  limit: number,
): Promise<{ id: string; kind: string }[]> {
  const v = cols.vector.name;
  const { rows } = await db.query<{ id: string; kind: string }>(
    `
SELECT e.id::text AS id,
       CASE WHEN e.${v} IS NOT NULL THEN 'present'
            WHEN e.${legacy} IS NULL THEN 'empty'
            ELSE omni_ingest.legacy_embedding_kind(e.${legacy}) END AS kind
FROM public.embeddings e
WHERE $1::uuid IS NULL OR e.id > $1
ORDER BY e.id
LIMIT $2`,
    [after, limit],
  );
  return rows;
}
