// The archive's reads and writes of public.raw_events and of the claims that tie each row to its
// batch (omni_ingest.archived_events). A row's line is to_jsonb(row)::text (or the same bytes put
// together column by column: page-sql.ts) with the session's TimeZone set to UTC in the same
// transaction, so the same row always gives the same text — which is how a row claimed before
// claims recorded its version is recognised unchanged when it is deleted.
import type { Queryable } from '../db/connect.js';

export interface RowFilter {
  cutoff: Date;
  userId: string | undefined;
  provider: string | undefined;
}

/** Timestamps in to_jsonb text depend on the session's TimeZone: fix it for this transaction. */
export async function utcSession(tx: Queryable): Promise<void> {
  await tx.query(`SET LOCAL TimeZone = 'UTC'`);
}

/** Where a walk over raw_events in physical order stands: the table's size in blocks and rows per block. */
export async function tableBlocks(tx: Queryable): Promise<{ blocks: number; rowsPerBlock: number }> {
  const { rows } = await tx.query<{ blocks: number; rows_per_block: number }>(`
SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 AS blocks,
       CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 8 END::float8 AS rows_per_block
FROM pg_class c
WHERE c.oid = 'public.raw_events'::regclass`);
  return { blocks: rows[0]?.blocks ?? 0, rowsPerBlock: rows[0]?.rows_per_block ?? 8 };
}

/**
 * Claims for batch `batchId` up to `limit` eligible rows of a window of raw_events in physical
 * order — the rows after tuple `after` and before tuple `before` — that are older than the
 * cutoff (occurred_at, else created_at), of the user / provider asked for and not waiting to be
 * normalized (pending work is never archived). Rows another batch holds are left out; the
 * caller holds the planning lock (`lockPlanning`), so no claim can appear meanwhile, and the
 * primary key of archived_events would refuse a second claim of a row all the same (a plain
 * insert, not ON CONFLICT DO NOTHING: a speculative insertion costs a WAL record more per claim).
 * Each claim keeps the row's xmin: the delete removes a row only while it is still that version.
 *
 * Windows of blocks rather than of primary keys: ids are random UUIDs, so a key window's rows
 * lie on as many pages as it has rows, all over the table; a block window's rows are on a few
 * neighbouring pages that planning, writing and deleting the batch then all find in memory.
 * `last` is the last tuple of the window taken (null: none), `full` whether `limit` cut it short.
 */
export async function claimWindow(
  tx: Queryable,
  batchId: string,
  f: RowFilter,
  window: { after: string; before: string },
  limit: number,
): Promise<{ rows: number; lo: string | null; hi: string | null; last: string | null; full: boolean }> {
  const { rows } = await tx.query<{ rows: number; lo: string | null; hi: string | null; last: string | null; taken: number }>(
    `
WITH win AS MATERIALIZED (
SELECT r.id, r.xmin AS row_xmin, r.ctid AS at
FROM public.raw_events r
WHERE r.ctid > $5::tid AND r.ctid < $6::tid
  AND coalesce(r.occurred_at, r.created_at) < $2
  AND ($3::uuid IS NULL OR r.user_id = $3)
  AND ($4::text IS NULL OR r.provider = $4)
  -- A probe of the queue's key per row (a sub-plan: the LIMIT keeps it from becoming a join
  -- that reads the whole queue for every window).
  AND (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id LIMIT 1) IS NULL
ORDER BY r.ctid
LIMIT $7
),
claimed AS (
INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id, row_xmin)
SELECT w.id, $1, w.row_xmin
FROM win w
-- Left out when another batch holds it: a probe of the claims' key (the planning lock keeps any
-- other claim from being inserted meanwhile, so it sees them all).
WHERE (SELECT 1 FROM omni_ingest.archived_events a WHERE a.raw_event_id = w.id LIMIT 1) IS NULL
-- In key order: each index page the claims go into is visited once, not once per claim.
ORDER BY w.id
RETURNING raw_event_id
)
SELECT count(*)::int AS rows, min(raw_event_id::text COLLATE "C") AS lo, max(raw_event_id::text COLLATE "C") AS hi,
       (SELECT w.at::text FROM win w ORDER BY w.at DESC LIMIT 1) AS last,
       (SELECT count(*) FROM win)::int AS taken
FROM claimed`,
    [batchId, f.cutoff, f.userId ?? null, f.provider ?? null, window.after, window.before, limit],
  );
  const r = rows[0] ?? { rows: 0, lo: null, hi: null, last: null, taken: 0 };
  return { rows: r.rows, lo: r.lo, hi: r.hi, last: r.last, full: r.taken >= limit };
}

/** What a run would archive (--dry-run, and what a stopped run leaves). */
export async function countEligible(
  db: Queryable,
  f: RowFilter,
): Promise<{ rows: number; ndjson_bytes: number; pending_normalize: number }> {
  const { rows } = await db.query<{ rows: number; ndjson_bytes: number; pending_normalize: number }>(
    `
SELECT count(*) FILTER (WHERE q.raw_event_id IS NULL)::float8 AS rows,
       coalesce(sum(octet_length(to_jsonb(r)::text) + 1) FILTER (WHERE q.raw_event_id IS NULL), 0)::float8 AS ndjson_bytes,
       count(*) FILTER (WHERE q.raw_event_id IS NOT NULL)::float8 AS pending_normalize
FROM public.raw_events r
LEFT JOIN omni_ingest.normalize_queue q ON q.raw_event_id = r.id
WHERE coalesce(r.occurred_at, r.created_at) < $1
  AND ($2::uuid IS NULL OR r.user_id = $2)
  AND ($3::text IS NULL OR r.provider = $3)
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.archived_events a WHERE a.raw_event_id = r.id)`,
    [f.cutoff, f.userId ?? null, f.provider ?? null],
  );
  return rows[0]!;
}

/** How many rows a run has yet to claim: eligible and claimed by no batch (what a stopped run leaves). */
export async function countUnclaimed(db: Queryable, f: RowFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::float8 AS n
FROM public.raw_events r
WHERE coalesce(r.occurred_at, r.created_at) < $1
  AND ($2::uuid IS NULL OR r.user_id = $2)
  AND ($3::text IS NULL OR r.provider = $3)
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id)
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.archived_events a WHERE a.raw_event_id = r.id)`,
    [f.cutoff, f.userId ?? null, f.provider ?? null],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Rows still hot in unfinished batches: of this target (any of its spellings, `targets`; whatever
 * filter planned them: a run continues them all) and, within the filter, of other targets — rows
 * this target's runs cannot archive until those batches are finished.
 */
export async function countUnfinished(
  db: Queryable,
  targets: string[],
  f: RowFilter,
): Promise<{ batches: number; rows: number; otherRows: number }> {
  const { rows } = await db.query<{ batches: number; rows: number; other_rows: number }>(
    `
SELECT count(DISTINCT b.id) FILTER (WHERE b.target = ANY($1::text[]))::float8 AS batches,
       count(r.id) FILTER (WHERE b.target = ANY($1::text[])
         AND NOT EXISTS (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id))::float8 AS rows,
       count(r.id) FILTER (WHERE NOT b.target = ANY($1::text[]) AND coalesce(r.occurred_at, r.created_at) < $2
         AND ($3::uuid IS NULL OR r.user_id = $3) AND ($4::text IS NULL OR r.provider = $4))::float8 AS other_rows
FROM omni_ingest.archive_batches b
JOIN omni_ingest.archived_events a ON a.batch_id = b.id
LEFT JOIN public.raw_events r ON r.id = a.raw_event_id
WHERE b.state IN ('planned', 'written', 'verified')`,
    [targets, f.cutoff, f.userId ?? null, f.provider ?? null],
  );
  const r = rows[0];
  return { batches: r?.batches ?? 0, rows: r?.rows ?? 0, otherRows: r?.other_rows ?? 0 };
}

/** A few eligible rows' lines, to estimate how well they compress (--dry-run). */
export async function sampleLines(db: Queryable, f: RowFilter, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(
    `
SELECT to_jsonb(r)::text AS line
FROM public.raw_events r
WHERE coalesce(r.occurred_at, r.created_at) < $1
  AND ($2::uuid IS NULL OR r.user_id = $2)
  AND ($3::text IS NULL OR r.provider = $3)
LIMIT $4`,
    [f.cutoff, f.userId ?? null, f.provider ?? null, limit],
  );
  return rows.map((r) => r.line);
}

/** Claims whose row vanished before it was written (deleted by someone else): not part of the batch. */
export async function dropVanishedClaims(tx: Queryable, batchId: string): Promise<number> {
  const { rowCount } = await tx.query(
    `
DELETE FROM omni_ingest.archived_events a
WHERE a.batch_id = $1 AND NOT EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = a.raw_event_id)`,
    [batchId],
  );
  return rowCount ?? 0;
}

/** Every id the batch claims (at most a batch's size: the verify compares them with the ids read back). */
export async function claimedIds(db: Queryable, batchId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `
SELECT raw_event_id::text AS id
FROM omni_ingest.archived_events
WHERE batch_id = $1`,
    [batchId],
  );
  return rows.map((r) => r.id);
}

/** Does the batch still claim any row? */
export async function hasClaims(db: Queryable, batchId: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT 1 FROM omni_ingest.archived_events WHERE batch_id = $1 LIMIT 1`, [batchId]);
  return rows.length > 0;
}

/**
 * Every id the batch claims, and how many of its claims are older than claims recording their
 * row's version (their delete needs the archived lines' MD5): one read of the batch's claims.
 */
export async function batchClaims(db: Queryable, batchId: string): Promise<{ ids: string[]; unversioned: number }> {
  const { rows } = await db.query<{ id: string; unversioned: boolean }>(
    `
SELECT raw_event_id::text AS id, row_xmin IS NULL AS unversioned
FROM omni_ingest.archived_events
WHERE batch_id = $1`,
    [batchId],
  );
  return { ids: rows.map((r) => r.id), unversioned: rows.filter((r) => r.unversioned).length };
}

/**
 * Deletes the chunk's rows — only ids listed in the verified part, still claimed by this batch,
 * still the version the claim recorded (same xmin: not updated since it was claimed, so what the
 * part holds is the row), and not queued for normalization again. Claims older than the row
 * version column are checked the slow way, by the MD5 of the archived line (`md5s`, null where
 * not read). A row that changed since is kept hot and its claim dropped (a later run archives its
 * new version); returns how many were deleted and kept.
 */
export async function deleteChunk(
  tx: Queryable,
  batchId: string,
  ids: string[],
  md5s: (string | null)[],
): Promise<{ deleted: number; kept: number }> {
  const gone = await tx.query(
    `
DELETE FROM public.raw_events r
USING unnest($2::uuid[], $3::text[]) AS x(id, md5), omni_ingest.archived_events a
WHERE r.id = x.id AND a.raw_event_id = x.id AND a.batch_id = $1
  AND (r.xmin = a.row_xmin OR (a.row_xmin IS NULL AND md5(to_jsonb(r)::text) = x.md5))
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id)`,
    [batchId, ids, md5s],
  );
  const deleted = gone.rowCount ?? 0;
  // Every row deleted: no claim of a row left hot to drop.
  if (deleted === ids.length) return { deleted, kept: 0 };
  const kept = await tx.query(
    `
DELETE FROM omni_ingest.archived_events a
WHERE a.batch_id = $1 AND a.raw_event_id = ANY($2::uuid[])
  AND EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = a.raw_event_id)`,
    [batchId, ids],
  );
  return { deleted, kept: kept.rowCount ?? 0 };
}
