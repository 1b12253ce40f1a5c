// The work queue every stage after normalize reads (omni_ingest.work_queue, filled by triggers).
// Two ways to take work:
// - claim: inside the batch's transaction, delete the rows (FOR UPDATE SKIP LOCKED); a rollback
//   puts them back. For stages that do not wait on anyone (resolve, timeline).
// - lease: mark rows as ours for a while in one short statement, work outside any transaction
//   (a provider call), then complete (delete) them with the results in a second transaction.
//   See lease.ts. For embed and insights.
import type { Queryable } from '../../db/connect.js';
import { rangeParams, rangeWhere, type RangeOptions } from './range.js';

export type QueueStage = 'resolve' | 'embed' | 'insights' | 'timeline' | 'timeline_insight' | 'swap_reembed';

export interface QueuedItem {
  item_id: string;
  user_id: string;
  stage: QueueStage;
}

const IN_RANGE = rangeWhere({ at: 'occurred_at', user: 'user_id', provider: 'provider', item: 'item_id' });

/** Queued items of the stages in the range; with `before`, only those queued before then. */
export async function countQueued(db: Queryable, stages: QueueStage[], range: RangeOptions, before?: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM omni_ingest.work_queue
WHERE ${IN_RANGE}
  AND stage = ANY($6::text[])
  AND ($7::timestamptz IS NULL OR enqueued_at < $7)`,
    [...rangeParams(range), stages, before ?? null],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Takes (deletes) the next queued items of the stages, in the caller's transaction. Deleted by
 * ctid (a row this statement locked keeps it), as an array: a join let the planner hash the
 * whole queue for every batch.
 */
export async function claimQueued(tx: Queryable, stages: QueueStage[], range: RangeOptions, limit: number): Promise<QueuedItem[]> {
  const { rows } = await tx.query<QueuedItem>(
    `
WITH next AS (
  SELECT ctid
  FROM omni_ingest.work_queue
  WHERE ${IN_RANGE}
    AND stage = ANY($6::text[])
    AND (claimed_until IS NULL OR claimed_until < now())
  ORDER BY stage, occurred_at, item_id
  LIMIT $7
  FOR UPDATE SKIP LOCKED
)
DELETE FROM omni_ingest.work_queue q
WHERE q.ctid = ANY(ARRAY(SELECT ctid FROM next))
RETURNING q.item_id, q.user_id, q.stage`,
    [...rangeParams(range), stages, limit],
  );
  return rows;
}

/**
 * For --dry-run: the next queued items after the cursor, read without taking them, in the order
 * a run takes them (stage, time, id; an item without a time last), so a dry run in batches cuts
 * them where the run does — resolve's counts depend on which interactions share a batch.
 */
export async function peekQueued(
  db: Queryable,
  stages: QueueStage[],
  range: RangeOptions,
  limit: number,
  after: string | undefined,
): Promise<PeekedItem[]> {
  const [stage, at, item] = after === undefined ? [null, null, null] : (JSON.parse(after) as [string, string | null, string]);
  const { rows } = await db.query<PeekedItem>(
    `
SELECT item_id, user_id, stage, occurred_at::text AS at
FROM omni_ingest.work_queue
WHERE ${IN_RANGE}
  AND stage = ANY($6::text[])
  AND ($8::text IS NULL OR (stage, coalesce(occurred_at, 'infinity'), item_id) > ($8::text, coalesce($9::timestamptz, 'infinity'), $10::uuid))
ORDER BY stage, coalesce(occurred_at, 'infinity'), item_id
LIMIT $7`,
    [...rangeParams(range), stages, limit, stage, at, item],
  );
  return rows;
}

/** A queued item as a dry run reads it: with when it occurred (as text, exact), for the cursor. */
export interface PeekedItem extends QueuedItem {
  at: string | null;
}

/** The dry-run cursor after `items`. */
export const peekCursor = (items: PeekedItem[]): string | undefined => {
  const last = items.at(-1);
  return last && JSON.stringify([last.stage, last.at, last.item_id]);
};

/** Leases the next queued items of a stage to `worker` for `seconds`, in its own short statement. */
export async function leaseQueued(
  db: Queryable,
  stage: QueueStage,
  range: RangeOptions,
  limit: number,
  worker: string,
  seconds: number,
): Promise<QueuedItem[]> {
  const { rows } = await db.query<QueuedItem>(
    `
WITH next AS (
  SELECT ctid
  FROM omni_ingest.work_queue
  WHERE ${IN_RANGE}
    AND stage = $6
    AND (claimed_until IS NULL OR claimed_until < now())
  ORDER BY occurred_at, item_id
  LIMIT $7
  FOR UPDATE SKIP LOCKED
)
UPDATE omni_ingest.work_queue q
SET claimed_by = $8, claimed_until = now() + make_interval(secs => $9::int), attempts = q.attempts + 1
WHERE q.ctid = ANY(ARRAY(SELECT ctid FROM next))
RETURNING q.item_id, q.user_id, q.stage`,
    [...rangeParams(range), stage, limit, worker, seconds],
  );
  return rows;
}

/** Extends the lease of the items still leased to `worker` (a heartbeat while work is in flight). */
export async function renewLeased(db: Queryable, stage: QueueStage, ids: string[], worker: string, seconds: number): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.work_queue
SET claimed_until = now() + make_interval(secs => $4::int)
WHERE stage = $1 AND item_id = ANY($2::uuid[]) AND claimed_by = $3`,
    [stage, ids, worker, seconds],
  );
  return rowCount ?? 0;
}

/**
 * Deletes leased items once their results are written (same transaction as the results).
 * Only rows still leased to `worker` go: if the lease expired and another worker took them,
 * that worker completes them (the stages' writes are idempotent); if a trigger re-queued an
 * item that changed meanwhile (clearing its lease), it stays for the next batch.
 */
export async function completeLeased(tx: Queryable, stage: QueueStage, ids: string[], worker: string): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
DELETE FROM omni_ingest.work_queue
WHERE stage = $1 AND item_id = ANY($2::uuid[]) AND claimed_by = $3`,
    [stage, ids, worker],
  );
  return rowCount ?? 0;
}

/** Gives leased items back at once (the work failed or the item changed; someone may try again). */
export async function releaseLeased(db: Queryable, stage: QueueStage, ids: string[], worker: string): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `
UPDATE omni_ingest.work_queue
SET claimed_by = NULL, claimed_until = NULL
WHERE stage = $1 AND item_id = ANY($2::uuid[]) AND claimed_by = $3`,
    [stage, ids, worker],
  );
}

/** The owners (`host:pid:…`) of the live leases of a stage held on `host`. */
export async function leaseOwnersOnHost(db: Queryable, stage: QueueStage, host: string): Promise<string[]> {
  const { rows } = await db.query<{ owner: string }>(
    `
SELECT DISTINCT claimed_by AS owner
FROM omni_ingest.work_queue
WHERE stage = $1 AND claimed_until > now() AND split_part(claimed_by, ':', 1) = $2`,
    [stage, host],
  );
  return rows.map((r) => r.owner);
}

/** Gives back every item of a stage leased by these owners. */
export async function releaseOwners(db: Queryable, stage: QueueStage, owners: string[]): Promise<number> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.work_queue
SET claimed_by = NULL, claimed_until = NULL
WHERE stage = $1 AND claimed_by = ANY($2::text[])`,
    [stage, owners],
  );
  return rowCount ?? 0;
}

/** Queues items for a stage (retries, --reprocess, tests). */
export async function enqueue(
  db: Queryable,
  stage: QueueStage,
  items: { itemId: string; userId: string; provider?: string | null; occurredAt?: Date | null }[],
): Promise<number> {
  if (items.length === 0) return 0;
  const { rowCount } = await db.query(
    `
INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
SELECT $1, x.item_id, x.user_id, x.provider, x.occurred_at
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[]) AS x(item_id, user_id, provider, occurred_at)
ON CONFLICT (stage, item_id) DO NOTHING`,
    [
      stage,
      items.map((i) => i.itemId),
      items.map((i) => i.userId),
      items.map((i) => i.provider ?? null),
      items.map((i) => i.occurredAt ?? null),
    ],
  );
  return rowCount ?? 0;
}
