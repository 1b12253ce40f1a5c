// The archive batches' state machine and leases (omni_ingest.archive_batches). Every transition
// names the state it leaves and the lease holder, so a process that lost its lease changes
// nothing; a state is committed before the step after it begins.
import type { Queryable } from '../db/connect.js';
import { scrub } from '../secrets.js';
import type { PartEntry } from './manifest.js';

export type BatchState = 'planned' | 'written' | 'verified' | 'deleted' | 'restored';

export interface BatchRow {
  id: string;
  target: string;
  prefix: string;
  state: BatchState;
  cutoff: Date;
  user_id: string | null;
  provider: string | null;
  lo: string | null;
  hi: string | null;
  rows: number;
  bytes: number;
  parts: PartEntry[];
  manifest_uri: string | null;
  deleted_rows: number;
  kept_rows: number;
  leased_by: string | null;
  lease_until: Date | null;
  error: string | null;
  planned_at: Date;
  deleted_at: Date | null;
}

const COLUMNS = `
id::text AS id, target, prefix, state, cutoff, user_id::text AS user_id, provider, lo::text AS lo, hi::text AS hi,
rows::float8 AS rows, bytes::float8 AS bytes, parts, manifest_uri, deleted_rows::float8 AS deleted_rows,
kept_rows::float8 AS kept_rows, leased_by, lease_until, error, planned_at, deleted_at`;

export interface NewBatch {
  id: string;
  target: string;
  prefix: string;
  cutoff: Date;
  userId: string | undefined;
  provider: string | undefined;
  owner: string;
  leaseSeconds: number;
  runId: string | null;
}

/**
 * Planning is serialised between processes by a transaction-scoped table lock (works behind
 * PgBouncer): the second planner waits a moment, then sees the first one's claims. Without JIT.
 */
export async function lockPlanning(tx: Queryable): Promise<void> {
  await tx.query(`LOCK TABLE omni_ingest.archived_events IN SHARE ROW EXCLUSIVE MODE`);
  // A window's scan is costed far above what it reads (a tuple range's rows are estimated
  // badly), so PostgreSQL compiled each claiming statement to machine code: 15 ms a window at
  // low load, more under load, for a statement that runs in tens of milliseconds.
  await tx.query(`SET LOCAL jit = off`);
}

export async function insertBatch(tx: Queryable, b: NewBatch): Promise<void> {
  await tx.query(
    `
INSERT INTO omni_ingest.archive_batches (id, target, prefix, cutoff, user_id, provider, leased_by, lease_until, run_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), $9)`,
    [b.id, b.target, b.prefix, b.cutoff, b.userId ?? null, b.provider ?? null, b.owner, b.leaseSeconds, b.runId],
  );
}

export async function setPlannedRange(tx: Queryable, id: string, rows: number, lo: string | null, hi: string | null): Promise<BatchRow> {
  const { rows: out } = await tx.query<BatchRow>(
    `
UPDATE omni_ingest.archive_batches
SET rows = $2, lo = $3, hi = $4
WHERE id = $1
RETURNING ${COLUMNS}`,
    [id, rows, lo, hi],
  );
  return out[0]!;
}

export async function deleteEmptyBatch(tx: Queryable, id: string): Promise<void> {
  await tx.query(`DELETE FROM omni_ingest.archive_batches WHERE id = $1 AND rows = 0`, [id]);
}

/** Lease holders of this host's processes on unfinished batches (to tell the dead ones). */
export async function ownersOnHost(db: Queryable, host: string): Promise<string[]> {
  const { rows } = await db.query<{ owner: string }>(
    `
SELECT DISTINCT leased_by AS owner
FROM omni_ingest.archive_batches
WHERE state IN ('planned', 'written', 'verified') AND lease_until > now() AND split_part(leased_by, ':', 1) = $1`,
    [host],
  );
  return rows.map((r) => r.owner);
}

/**
 * Leases the oldest unfinished batch of `target` that nobody holds: never leased, lease expired,
 * or held by one of `deadOwners` (processes of this host that are gone).
 */
export async function takeOverBatch(
  db: Queryable,
  target: string,
  owner: string,
  deadOwners: string[],
  leaseSeconds: number,
  runId: string | null,
): Promise<BatchRow | undefined> {
  const { rows } = await db.query<BatchRow>(
    `
UPDATE omni_ingest.archive_batches b
SET leased_by = $2, lease_until = now() + make_interval(secs => $4), run_id = coalesce($5, b.run_id)
WHERE b.id = (
SELECT id
FROM omni_ingest.archive_batches
WHERE target = $1 AND state IN ('planned', 'written', 'verified')
  AND (lease_until IS NULL OR lease_until < now() OR leased_by = ANY($3::text[]))
ORDER BY planned_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED)
RETURNING ${COLUMNS}`,
    [target, owner, deadOwners, leaseSeconds, runId],
  );
  return rows[0];
}

/** Unfinished batches: of this target held by a live process elsewhere, and of other targets. */
export async function unfinishedElsewhere(db: Queryable, target: string, owner: string): Promise<{ held: number; otherTargets: string[] }> {
  const { rows } = await db.query<{ held: number; other_targets: string[] | null }>(
    `
SELECT count(*) FILTER (WHERE target = $1 AND leased_by IS DISTINCT FROM $2 AND lease_until > now())::int AS held,
       array_agg(DISTINCT target) FILTER (WHERE target <> $1) AS other_targets
FROM omni_ingest.archive_batches
WHERE state IN ('planned', 'written', 'verified')`,
    [target, owner],
  );
  return { held: rows[0]?.held ?? 0, otherTargets: rows[0]?.other_targets ?? [] };
}

/** Moves the lease on; false when it is no longer ours (expired and taken over). */
export async function renewLease(db: Queryable, id: string, owner: string, seconds: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.archive_batches
SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND leased_by = $2`,
    [id, owner, seconds],
  );
  return rowCount === 1;
}

export async function releaseLease(db: Queryable, id: string, owner: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.archive_batches
SET leased_by = NULL, lease_until = NULL
WHERE id = $1 AND leased_by = $2`,
    [id, owner],
  );
}

export interface Written {
  rows: number;
  bytes: number;
  parts: PartEntry[];
  manifestUri: string;
}

/** planned → written, with what the manifest lists; false if the lease is gone. */
export async function markWritten(tx: Queryable, id: string, owner: string, w: Written): Promise<boolean> {
  const { rowCount } = await tx.query(
    `
UPDATE omni_ingest.archive_batches
SET state = 'written', rows = $3, bytes = $4, parts = $5::jsonb, manifest_uri = $6, written_at = now(), error = NULL
WHERE id = $1 AND leased_by = $2 AND state = 'planned'`,
    [id, owner, w.rows, w.bytes, JSON.stringify(w.parts), w.manifestUri],
  );
  return rowCount === 1;
}

/** written → verified; false if the lease is gone. */
export async function markVerified(db: Queryable, id: string, owner: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.archive_batches
SET state = 'verified', verified_at = now()
WHERE id = $1 AND leased_by = $2 AND state = 'written'`,
    [id, owner],
  );
  return rowCount === 1;
}

/**
 * written/verified → planned, with the reason: what the target holds failed verification. Every row
 * is still hot (nothing is deleted before a verify passes), so the next run writes the batch again.
 */
export async function markForRewrite(db: Queryable, id: string, owner: string, error: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.archive_batches
SET state = 'planned', error = $3, leased_by = NULL, lease_until = NULL
WHERE id = $1 AND leased_by = $2 AND state IN ('written', 'verified') AND deleted_rows = 0`,
    [id, owner, scrub(error)],
  );
}

/** A delete chunk's counts, in the chunk's transaction. */
export async function addDeleted(tx: Queryable, id: string, owner: string, deleted: number, kept: number): Promise<boolean> {
  const { rowCount } = await tx.query(
    `
UPDATE omni_ingest.archive_batches
SET deleted_rows = deleted_rows + $3, kept_rows = kept_rows + $4, lease_until = greatest(lease_until, now() + interval '30 seconds')
WHERE id = $1 AND leased_by = $2 AND state = 'verified'`,
    [id, owner, deleted, kept],
  );
  return rowCount === 1;
}

/** verified → deleted, the lease given back. */
export async function markDeleted(tx: Queryable, id: string, owner: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `
UPDATE omni_ingest.archive_batches
SET state = 'deleted', deleted_at = now(), leased_by = NULL, lease_until = NULL
WHERE id = $1 AND leased_by = $2 AND state = 'verified'`,
    [id, owner],
  );
  return rowCount === 1;
}

export async function getBatch(db: Queryable, id: string): Promise<BatchRow | undefined> {
  const { rows } = await db.query<BatchRow>(`SELECT ${COLUMNS} FROM omni_ingest.archive_batches WHERE id = $1`, [id]);
  return rows[0];
}

/** The newest batches first (`archive list`). */
export async function listBatches(db: Queryable, limit: number, state: string | undefined): Promise<BatchRow[]> {
  const { rows } = await db.query<BatchRow>(
    `
SELECT ${COLUMNS}
FROM omni_ingest.archive_batches
WHERE $2::text IS NULL OR state = $2
ORDER BY planned_at DESC, id DESC
LIMIT $1`,
    [limit, state ?? null],
  );
  return rows;
}

/** Batches with a manifest (written or later): what `archive verify` re-reads. */
export async function batchesWithManifest(db: Queryable): Promise<BatchRow[]> {
  const { rows } = await db.query<BatchRow>(`
SELECT ${COLUMNS}
FROM omni_ingest.archive_batches
WHERE manifest_uri IS NOT NULL AND state <> 'planned'
ORDER BY planned_at, id`);
  return rows;
}

/** Restored: the batch's rows are hot again. */
export async function markRestored(db: Queryable, id: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.archive_batches
SET state = 'restored', restored_at = now()
WHERE id = $1 AND state = 'deleted'`,
    [id],
  );
}

/** Has this database the archive migration (202611301200_archive)? */
export async function hasArchiveSchema(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT to_regclass('omni_ingest.archived_events') IS NOT NULL AND to_regclass('public.raw_events') IS NOT NULL AS ok`,
  );
  return rows[0]?.ok === true;
}
