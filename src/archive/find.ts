// Where an archived event went, and the archive's figures for `stats` and `doctor`.
import type { Queryable } from '../db/connect.js';

export interface ArchiveLocation {
  batchId: string;
  /**
   * deleted: the event is only in the archive; planned/written: on its way there (still hot);
   * verified: on its way, or (when it is gone from raw_events) deleted by a delete not yet
   * finished; restored: back.
   */
  state: string;
  manifestUri: string | null;
  target: string;
  /** When the batch was deleted, or (still deleting) verified. */
  archivedAt: Date | null;
}

/** The archive batch that holds a raw event (for `trace`: "archived in <manifest>"), if any. */
export async function findArchive(db: Queryable, rawEventId: string): Promise<ArchiveLocation | undefined> {
  const { rows } = await db.query<ArchiveLocation>(
    `
SELECT b.id::text AS "batchId", b.state, b.manifest_uri AS "manifestUri", b.target,
       coalesce(b.deleted_at, b.verified_at) AS "archivedAt"
FROM omni_ingest.archived_events a
JOIN omni_ingest.archive_batches b ON b.id = a.batch_id
WHERE a.raw_event_id = $1::uuid`,
    [rawEventId],
  );
  return rows[0];
}

export interface ArchiveSummary {
  /** When the oldest event still in raw_events happened (occurred_at, else created_at). */
  oldestHotEvent: Date | null;
  /** Events still in raw_events that happened more than 180 days ago. */
  hotOlderThan180Days: number;
  archived: { batches: number; rows: number; bytes: number };
  inProgress: { batches: number; rows: number };
}

export async function archiveSummary(db: Queryable): Promise<ArchiveSummary> {
  const hot = await db.query<{ oldest: Date | null; old: number }>(`
SELECT min(coalesce(occurred_at, created_at)) AS oldest,
       count(*) FILTER (WHERE coalesce(occurred_at, created_at) < now() - interval '180 days')::float8 AS old
FROM public.raw_events`);
  const batches = await db.query<{ done: number; rows: number; bytes: number; open: number; open_rows: number }>(`
SELECT count(*) FILTER (WHERE state = 'deleted')::float8 AS done,
       coalesce(sum(deleted_rows) FILTER (WHERE state = 'deleted'), 0)::float8 AS rows,
       coalesce(sum(bytes) FILTER (WHERE state = 'deleted'), 0)::float8 AS bytes,
       count(*) FILTER (WHERE state IN ('planned', 'written', 'verified'))::float8 AS open,
       coalesce(sum(rows) FILTER (WHERE state IN ('planned', 'written', 'verified')), 0)::float8 AS open_rows
FROM omni_ingest.archive_batches`);
  const b = batches.rows[0]!;
  return {
    oldestHotEvent: hot.rows[0]?.oldest ?? null,
    hotOlderThan180Days: hot.rows[0]?.old ?? 0,
    archived: { batches: b.done, rows: b.rows, bytes: b.bytes },
    inProgress: { batches: b.open, rows: b.open_rows },
  };
}

/** Events kept hot longer than this are a retention problem `doctor` reports. */
const HOT_WARN_DAYS = 180;

/** `doctor`'s retention finding: events older than 180 days still hot mean archiving is not running. */
export async function retentionFinding(
  db: Queryable,
): Promise<{ name: string; ok: boolean; warn?: boolean; detail: string; hint?: string }> {
  const { rows } = await db.query<{ ready: boolean }>(
    `SELECT to_regclass('public.raw_events') IS NOT NULL AND to_regclass('omni_ingest.archive_batches') IS NOT NULL AS ready`,
  );
  if (!rows[0]?.ready) return { name: 'retention', ok: true, detail: 'no archive tables yet (migrate creates them)' };
  const s = await archiveSummary(db);
  const archived = `${s.archived.rows} events archived in ${s.archived.batches} batch(es)`;
  if (s.hotOlderThan180Days === 0)
    return { name: 'retention', ok: true, detail: `no hot event older than ${HOT_WARN_DAYS} days; ${archived}` };
  // A warning, not a failure: a historical import is old on arrival, and keeping data hot is a
  // choice; doctor's exit code stays for what is broken.
  return {
    name: 'retention',
    ok: true,
    warn: true,
    detail: `${s.hotOlderThan180Days} events older than ${HOT_WARN_DAYS} days are still in raw_events (oldest ${s.oldestHotEvent?.toISOString() ?? '?'}); ${archived}`,
    hint: `archive them: omni-ingest archive --older-than ${HOT_WARN_DAYS} --to s3://<bucket>/<prefix> (or file://<dir>)`,
  };
}
