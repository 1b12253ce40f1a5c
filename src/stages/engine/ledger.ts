// The run ledger (omni_ingest.runs): one row per batch command run (SPEC §13).
import { z } from 'zod';
import type { Queryable } from '../../db/connect.js';
import { isAlive, thisHost } from '../../liveness.js';
import { scrub, scrubValue } from '../../secrets.js';

/** Counts of a run or a batch by name; `events` is what the batch took. Stages name their own keys. */
export type Counts<K extends string = string> = { [key in K | 'events']?: number };
const RUN_STATUSES = ['running', 'succeeded', 'incomplete', 'failed', 'stopped', 'abandoned'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

const runRow = z.object({
  id: z.string(),
  command: z.string(),
  args: z.record(z.string(), z.unknown()),
  status: z.enum(RUN_STATUSES),
  stop_reason: z.string().nullable(),
  checkpoint: z.unknown().nullable(),
  counts: z.record(z.string(), z.number()),
  host: z.string().nullable(),
  pid: z.number().nullable(),
  started_at: z.date(),
  heartbeat_at: z.date(),
  finished_at: z.date().nullable(),
  error: z.string().nullable(),
  resumed_by: z.string().nullable(),
});
export type RunRow = z.infer<typeof runRow>;

/**
 * A running run whose heartbeat (every 30 s while it lives) is older than this is taken for dead:
 * killed, or its host lost. A run of this host whose process is gone is taken for dead at once.
 */
export const STALE_AFTER_SECONDS = 120;

/** A new run row; `startedAt` is the server's clock (queue rows are stamped with it too). */
export async function startRun(db: Queryable, command: string, args: Record<string, unknown>): Promise<{ id: string; startedAt: Date }> {
  const { rows } = await db.query<{ id: string; started_at: Date }>(
    `
INSERT INTO omni_ingest.runs (command, args, host, pid)
VALUES ($1, $2, $3, $4)
RETURNING id, started_at`,
    [command, JSON.stringify(scrubValue(args)), thisHost(), process.pid],
  );
  const row = rows[0]!;
  return { id: row.id, startedAt: row.started_at };
}

/**
 * Adds a batch's counts and moves the checkpoint. Called inside the batch's own transaction, so
 * the ledger and the data commit or roll back together.
 */
export async function recordBatch(tx: Queryable, runId: string, counts: Counts, checkpoint: unknown): Promise<void> {
  await tx.query(
    `
UPDATE omni_ingest.runs r
SET counts = (
      SELECT coalesce(jsonb_object_agg(k, coalesce((r.counts ->> k)::bigint, 0) + coalesce((d.delta ->> k)::bigint, 0)), '{}')
      FROM (SELECT $2::jsonb AS delta) d,
           LATERAL (SELECT jsonb_object_keys(r.counts) UNION SELECT jsonb_object_keys(d.delta)) keys(k)
    ),
    checkpoint = coalesce($3::jsonb, r.checkpoint),
    heartbeat_at = now()
WHERE r.id = $1`,
    [runId, JSON.stringify(counts), checkpoint === undefined ? null : JSON.stringify(checkpoint)],
  );
}

export async function finishRun(
  db: Queryable,
  runId: string,
  status: Exclude<RunStatus, 'running'>,
  details: { stopReason?: string | undefined; error?: string | undefined },
): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.runs
SET status = $2, stop_reason = $3, error = $4, finished_at = now(), heartbeat_at = now()
WHERE id = $1`,
    [
      runId,
      status,
      details.stopReason === undefined ? null : scrub(details.stopReason),
      details.error === undefined ? null : scrub(details.error),
    ],
  );
}

/** The heartbeat of a live run. */
export async function touchRun(db: Queryable, runId: string): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.runs
SET heartbeat_at = now()
WHERE id = $1 AND status = 'running'`,
    [runId],
  );
}

/** A checkpoint saved on its own, outside any batch. */
export async function saveCheckpoint(db: Queryable, runId: string, checkpoint: unknown): Promise<void> {
  await db.query(
    `
UPDATE omni_ingest.runs
SET checkpoint = $2, heartbeat_at = now()
WHERE id = $1`,
    [runId, JSON.stringify(checkpoint)],
  );
}

/**
 * Marks as abandoned the runs of `command` left 'running' by a process that died: one of this host
 * whose pid is gone (at once), or any whose heartbeat is stale. Their uncommitted work rolled back
 * and is pending again for `resumedBy`, the run that found them. Returns how many.
 */
export async function markAbandoned(db: Queryable, command: string, resumedBy: string): Promise<number> {
  const { rows } = await db.query<{ id: string; pid: number | null }>(
    `
SELECT id, pid
FROM omni_ingest.runs
WHERE command = $1 AND status = 'running' AND host = $2 AND id <> $3`,
    [command, thisHost(), resumedBy],
  );
  const dead = rows.filter((r) => r.pid === null || !isAlive(r.pid)).map((r) => r.id);
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.runs
SET status = 'abandoned',
    finished_at = heartbeat_at,
    resumed_by = $4,
    stop_reason = CASE WHEN id = ANY($2::uuid[]) THEN 'its process is gone' ELSE 'no heartbeat for ' || $3::int || ' s' END
WHERE command = $1 AND status = 'running' AND id <> $4
  AND (id = ANY($2::uuid[]) OR heartbeat_at < now() - make_interval(secs => $3::int))`,
    [command, dead, STALE_AFTER_SECONDS, resumedBy],
  );
  return rowCount ?? 0;
}

export async function getRun(db: Queryable, runId: string): Promise<RunRow | undefined> {
  const { rows } = await db.query(
    `
SELECT id, command, args, status, stop_reason, checkpoint, counts, host, pid, started_at, heartbeat_at, finished_at, error, resumed_by
FROM omni_ingest.runs
WHERE id = $1`,
    [runId],
  );
  return rows[0] === undefined ? undefined : runRow.parse(rows[0]);
}

export async function listRuns(db: Queryable, filter: { command?: string | undefined; limit: number }): Promise<RunRow[]> {
  const { rows } = await db.query(
    `
SELECT id, command, args, status, stop_reason, checkpoint, counts, host, pid, started_at, heartbeat_at, finished_at, error, resumed_by
FROM omni_ingest.runs
WHERE $1::text IS NULL OR command = $1
ORDER BY started_at DESC, id DESC
LIMIT $2`,
    [filter.command ?? null, filter.limit],
  );
  return rows.map((r) => runRow.parse(r));
}
