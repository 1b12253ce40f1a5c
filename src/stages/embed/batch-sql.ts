// The SQL of `embed --via batch`: omni_ingest.embed_batches, one row per provider batch, moved
// through its states by the process holding its claim (see the migration 202612061300).
import type { Queryable } from '../../db/connect.js';
import { scrub } from '../../secrets.js';
import { rangeParams, rangeWhere, type RangeOptions } from '../engine/range.js';

export interface EmbedBatchRow {
  id: string;
  state: 'preparing' | 'uploaded' | 'submitted' | 'done' | 'failed';
  item_ids: string[];
  custom_ids: string[];
  attempts: number;
  input_file_id: string | null;
  provider_batch_id: string | null;
}

/** A new batch in state `preparing`, claimed by `owner` while it is prepared. */
export async function insertBatch(
  tx: Queryable,
  b: { id: string; provider: string; model: string; dimensions: number; owner: string; seconds: number; runId: string | null },
): Promise<void> {
  await tx.query(
    `
INSERT INTO omni_ingest.embed_batches (id, provider, model, dimensions, claimed_by, claimed_until, run_id, last_run_id)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int), $7, $7)`,
    [b.id, b.provider, b.model, b.dimensions, b.owner, b.seconds, b.runId],
  );
}

export async function deleteBatch(tx: Queryable, id: string): Promise<void> {
  await tx.query(`DELETE FROM omni_ingest.embed_batches WHERE id = $1`, [id]);
}

/** The interactions a batch covers (set when it is created, narrowed when it is packed). */
export async function setItems(tx: Queryable, id: string, itemIds: string[]): Promise<void> {
  await tx.query(`UPDATE omni_ingest.embed_batches SET item_ids = $2::uuid[] WHERE id = $1`, [id, itemIds]);
}

/** What the packed file holds, before it is uploaded. */
export async function setPacked(
  db: Queryable,
  id: string,
  p: { itemIds: string[]; customIds: string[]; tokens: number; bytes: number },
): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.embed_batches
SET item_ids = $2::uuid[], custom_ids = $3::text[], tokens = $4, bytes = $5
WHERE id = $1`,
    [id, p.itemIds, p.customIds, p.tokens, p.bytes],
  );
}

/** The input file is at the provider: one more attempt. */
export async function markUploaded(db: Queryable, id: string, fileId: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.embed_batches
SET state = 'uploaded', input_file_id = $2, attempts = attempts + 1
WHERE id = $1 AND state = 'preparing'`,
    [id, fileId],
  );
}

/** The provider batch exists. */
export async function markSubmitted(db: Queryable, id: string, providerBatchId: string, status: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.embed_batches
SET state = 'submitted', provider_batch_id = $2, provider_status = $3, submitted_at = now(), polled_at = now()
WHERE id = $1 AND state = 'uploaded'`,
    [id, providerBatchId, status],
  );
}

/** Still running at the provider: when it was asked, and what it said. */
export async function markPolled(db: Queryable, id: string, status: string, runId: string | null): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.embed_batches
SET provider_status = $2, polled_at = now(), last_run_id = coalesce($3, last_run_id)
WHERE id = $1`,
    [id, status, runId],
  );
}

/** Finished: its vectors are written (in this transaction), or its attempts are used up. */
export async function finishBatch(
  tx: Queryable,
  id: string,
  f: {
    state: 'done' | 'failed';
    status: string | null;
    outputFileId: string | null;
    errorFileId: string | null;
    error: string | null;
    runId: string | null;
  },
): Promise<void> {
  await tx.query(
    `
UPDATE omni_ingest.embed_batches
SET state = $2, provider_status = coalesce($3, provider_status), output_file_id = $4, error_file_id = $5, error = $6,
    last_run_id = coalesce($7, last_run_id), finished_at = now(), claimed_by = NULL, claimed_until = NULL
WHERE id = $1`,
    [id, f.state, f.status, f.outputFileId, f.errorFileId, f.error === null ? null : scrub(f.error), f.runId],
  );
}

/** Expired or failed at the provider: prepared again with the interactions still missing vectors. */
export async function resetBatch(tx: Queryable, id: string, r: { itemIds: string[]; status: string; error: string | null }): Promise<void> {
  await tx.query(
    `
UPDATE omni_ingest.embed_batches
SET state = 'preparing', item_ids = $2::uuid[], custom_ids = '{}', provider_status = $3, error = $4,
    input_file_id = NULL, provider_batch_id = NULL, output_file_id = NULL, error_file_id = NULL
WHERE id = $1`,
    [id, r.itemIds, r.status, r.error === null ? null : scrub(r.error)],
  );
}

/**
 * Claims the oldest open batch of this embedder whose claim is free (none, or left by a process
 * that died: claims are short and renewed only while their process works), skipping `seen`.
 */
export async function claimOpenBatch(
  db: Queryable,
  c: { provider: string; model: string; owner: string; seconds: number; seen: string[]; runId: string | null },
): Promise<EmbedBatchRow | undefined> {
  const { rows } = await db.query<EmbedBatchRow>(
    `
WITH next AS (
  SELECT id
  FROM omni_ingest.embed_batches
  WHERE state IN ('preparing', 'uploaded', 'submitted')
    AND provider = $1 AND model = $2
    AND (claimed_until IS NULL OR claimed_until < now())
    AND NOT (id = ANY($5::uuid[]))
  ORDER BY created_at, id
  LIMIT 1
  FOR UPDATE SKIP LOCKED
)
UPDATE omni_ingest.embed_batches b
SET claimed_by = $3, claimed_until = now() + make_interval(secs => $4::int), last_run_id = coalesce($6, b.last_run_id)
FROM next
WHERE b.id = next.id
RETURNING b.id, b.state, b.item_ids, b.custom_ids, b.attempts, b.input_file_id, b.provider_batch_id`,
    [c.provider, c.model, c.owner, c.seconds, c.seen, c.runId],
  );
  return rows[0];
}

/** Lets go of a batch (another run may poll it); a no-op when the claim is no longer ours. */
export async function releaseBatch(db: Queryable, id: string, owner: string): Promise<void> {
  await db.query(`UPDATE omni_ingest.embed_batches SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2`, [
    id,
    owner,
  ]);
}

export interface OpenBatches {
  batches: number;
  interactions: number;
  lines: number;
}

/** The batches of this embedder still at the provider (or being prepared), for the summary. */
export async function openBatches(db: Queryable, provider: string, model: string): Promise<OpenBatches> {
  const { rows } = await db.query<OpenBatches>(
    `
SELECT count(*)::int AS batches,
       coalesce(sum(cardinality(item_ids)), 0)::int AS interactions,
       coalesce(sum(cardinality(custom_ids)), 0)::int AS lines
FROM omni_ingest.embed_batches
WHERE state IN ('preparing', 'uploaded', 'submitted') AND provider = $1 AND model = $2`,
    [provider, model],
  );
  return rows[0] ?? { batches: 0, interactions: 0, lines: 0 };
}

/** The owners (`host:pid:…`) of the batch claims held on `host` now. */
export async function batchClaimsOnHost(db: Queryable, host: string): Promise<string[]> {
  const { rows } = await db.query<{ owner: string }>(
    `
SELECT DISTINCT claimed_by AS owner
FROM omni_ingest.embed_batches
WHERE claimed_until > now() AND split_part(claimed_by, ':', 1) = $1`,
    [host],
  );
  return rows.map((r) => r.owner);
}

/** Frees the batches claimed by these owners (processes that are gone). */
export async function releaseBatchOwners(db: Queryable, owners: string[]): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE omni_ingest.embed_batches SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ANY($1::text[])`,
    [owners],
  );
  return rowCount ?? 0;
}

const IN_RANGE = rangeWhere({ at: 'occurred_at', user: 'user_id', provider: 'provider', item: 'item_id' });

/**
 * Queued embed work in the range (with `before`, queued before then), less the interactions out
 * at the provider in a batch: those are being done, not waiting, and a run that submitted them
 * has left nothing behind.
 */
export async function countQueuedOutsideBatches(db: Queryable, range: RangeOptions, before?: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM omni_ingest.work_queue
WHERE ${IN_RANGE}
  AND stage = 'embed'
  AND ($6::timestamptz IS NULL OR enqueued_at < $6)
  AND NOT (coalesce(claimed_by, '') LIKE 'batch:%' AND claimed_until > now())`,
    [...rangeParams(range), before ?? null],
  );
  return rows[0]?.n ?? 0;
}
