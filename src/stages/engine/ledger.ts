// The run ledger (omni_ingest.runs): one row per batch command run (SPEC §13).
import os from 'node:os';
import { z } from 'zod';
import type { Queryable } from '../../db/connect.js';

/** Counts of a run or a batch by name; `events` is what the batch took. Stages name their own keys. */
export type Counts<K extends string = string> = { [key in K | 'events']?: number };
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'stopped' | 'abandoned';

const runRow = z.object({
  id: z.string(),
  command: z.string(),
  args: z.record(z.string(), z.unknown()),
  status: z.enum(['running', 'succeeded', 'failed', 'stopped', 'abandoned']),
  stop_reason: z.string().nullable(),
  checkpoint: z.unknown().nullable(),
  counts: z.record(z.string(), z.number()),
  host: z.string().nullable(),
  pid: z.number().nullable(),
  started_at: z.date(),
  heartbeat_at: z.date(),
  finished_at: z.date().nullable(),
  error: z.string().nullable(),
});
export type RunRow = z.infer<typeof runRow>;

/** A running run whose heartbeat is older than this is taken for dead (kill -9, lost host). */
export const STALE_AFTER_SECONDS = 600;

export async function startRun(db: Queryable, command: string, args: Record<string, unknown>): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `
INSERT INTO omni_ingest.runs (command, args, host, pid)
VALUES ($1, $2, $3, $4)
RETURNING id`,
    [command, JSON.stringify(args), os.hostname(), process.pid],
  );
  return rows[0]!.id;
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
    [runId, status, details.stopReason ?? null, details.error ?? null],
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

/** Runs left 'running' by a process that died: their work was rolled back, only the row remains. */
export async function markAbandoned(db: Queryable, command: string): Promise<number> {
  const { rowCount } = await db.query(
    `
UPDATE omni_ingest.runs
SET status = 'abandoned', finished_at = heartbeat_at, stop_reason = 'no heartbeat for ' || $2::int || ' s'
WHERE command = $1 AND status = 'running' AND heartbeat_at < now() - make_interval(secs => $2::int)`,
    [command, STALE_AFTER_SECONDS],
  );
  return rowCount ?? 0;
}

export async function getRun(db: Queryable, runId: string): Promise<RunRow | undefined> {
  const { rows } = await db.query(
    `
SELECT id, command, args, status, stop_reason, checkpoint, counts, host, pid, started_at, heartbeat_at, finished_at, error
FROM omni_ingest.runs
WHERE id = $1`,
    [runId],
  );
  return rows[0] === undefined ? undefined : runRow.parse(rows[0]);
}

export async function listRuns(db: Queryable, filter: { command?: string | undefined; limit: number }): Promise<RunRow[]> {
  const { rows } = await db.query(
    `
SELECT id, command, args, status, stop_reason, checkpoint, counts, host, pid, started_at, heartbeat_at, finished_at, error
FROM omni_ingest.runs
WHERE $1::text IS NULL OR command = $1
ORDER BY started_at DESC, id DESC
LIMIT $2`,
    [filter.command ?? null, filter.limit],
  );
  return rows.map((r) => runRow.parse(r));
}
