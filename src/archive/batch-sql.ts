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

export const COLUMNS = `
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

/** Every target with unfinished batches, as recorded (spellings of one target before they were made canonical included). */
export async function unfinishedTargets(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ target: string }>(`
SELECT DISTINCT target
FROM omni_ingest.archive_batches
WHERE state IN ('planned', 'written', 'verified')`);
  return rows.map((r) => r.target);
}

/**
 * Leases the oldest unfinished batch of the target (recorded as any of `targets`, its spellings)
 * that nobody holds: never leased, lease expired, or held by one of `deadOwners` (processes of
 * this host that are gone).
 */
export async function takeOverBatch(
  db: Queryable,
  targets: string[],
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
WHERE target = ANY($1::text[]) AND state IN ('planned', 'written', 'verified')
  AND (lease_until IS NULL OR lease_until < now() OR leased_by = ANY($3::text[]))
ORDER BY planned_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED)
RETURNING ${COLUMNS}`,
    [targets, owner, deadOwners, leaseSeconds, runId],
  );
  return rows[0];
}

/** Unfinished batches: of this target (any of its spellings) held by a live process elsewhere, and of other targets. */
export async function unfinishedElsewhere(
  db: Queryable,
  targets: string[],
  owner: string,
): Promise<{ held: number; otherTargets: string[] }> {
  const { rows } = await db.query<{ held: number; other_targets: string[] | null }>(
    `
SELECT count(*) FILTER (WHERE target = ANY($1::text[]) AND leased_by IS DISTINCT FROM $2 AND lease_until > now())::int AS held,
       array_agg(DISTINCT target) FILTER (WHERE NOT target = ANY($1::text[])) AS other_targets
FROM omni_ingest.archive_batches
WHERE state IN ('planned', 'written', 'verified')`,
    [targets, owner],
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

/** Moves the lease on while the batch is still planned (being written); false when it is no longer ours. */
export async function renewPlannedLease(db: Queryable, id: string, owner: string, seconds: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.archive_batches
SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND leased_by = $2 AND state = 'planned'`,
    [id, owner, seconds],
  );
  return rowCount === 1;
}

/** Gives the lease back; `error`: why the run left the batch, for `archive list` to show. */
export async function releaseLease(db: Queryable, id: string, owner: string, error?: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.archive_batches
SET leased_by = NULL, lease_until = NULL, error = coalesce($3, error)
WHERE id = $1 AND leased_by = $2`,
    [id, owner, error === undefined ? null : scrub(error)],
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
SET state = 'deleted', deleted_at = now(), leased_by = NULL, lease_until = NULL, error = NULL
WHERE id = $1 AND leased_by = $2 AND state = 'verified'`,
    [id, owner],
  );
  return rowCount === 1;
}

/**
 * planned/written/verified → restored, the lease given back: every claim of the batch is gone (a
 * restore put its rows back while it was unfinished), so nothing of it is left to archive.
 */
export async function markEmptied(db: Queryable, id: string, owner: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.archive_batches b
SET state = 'restored', restored_at = now(), leased_by = NULL, lease_until = NULL
WHERE b.id = $1 AND b.leased_by = $2 AND b.state IN ('planned', 'written', 'verified')
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.archived_events a WHERE a.batch_id = b.id)`,
    [id, owner],
  );
  return rowCount === 1;
}

/**
 * Restored: every row the batch archived is hot again (no claim of it is left). An unfinished
 * batch is marked so only while no process holds it; one that does finds it emptied (batch.ts).
 */
export async function markRestored(db: Queryable, id: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.archive_batches b
SET state = 'restored', restored_at = now(), error = NULL, leased_by = NULL, lease_until = NULL
WHERE b.id = $1 AND b.state <> 'restored'
  AND (b.state = 'deleted' OR b.lease_until IS NULL OR b.lease_until < now())
  AND NOT EXISTS (SELECT 1 FROM omni_ingest.archived_events a WHERE a.batch_id = b.id)`,
    [id],
  );
}
