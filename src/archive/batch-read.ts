// The archive batches as `archive list`, `archive verify` and `archive restore` read them: by id,
// newest first, those with a manifest; and whether the archive's tables are there at all. Reads
// only: the state machine is batch-sql.ts.
import type { Queryable } from '../db/connect.js';
import { type BatchRow, COLUMNS } from './batch-sql.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The batch a manifest names, if this database has it (a manifest's batch_id is only text). */
export async function findBatch(db: Queryable, id: string): Promise<BatchRow | undefined> {
  if (!UUID.test(id)) return undefined;
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

/** Has this database the archive migration (202611301200_archive)? */
export async function hasArchiveSchema(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT to_regclass('omni_ingest.archived_events') IS NOT NULL AND to_regclass('public.raw_events') IS NOT NULL AS ok`,
  );
  return rows[0]?.ok === true;
}
