// The DDL of the column swap (SPEC §10): the sync trigger in either direction, the table lock,
// the renames. Statements that take a lock on public.embeddings run inside withLockRetry
// (lock.ts), so a busy table costs readers a short wait, never a queue behind us.
import type { Queryable } from '../db/connect.js';
import type { VectorColumn } from '../db/vector-column.js';

/** One trigger name for both directions: installing one direction replaces the other. */
const SYNC_TRIGGER = 'embeddings_swap_sync';

/**
 * `legacy`: before the swap, a legacy text written alone fills `embedding_v`.
 * `vector`: after it, a vector written to `embedding` is mirrored into `embedding_legacy`.
 */
export type SyncDirection = 'legacy' | 'vector';

export interface SyncTrigger {
  direction: SyncDirection;
  enabled: boolean;
}

/** The sync trigger on public.embeddings, if any (by the function it runs, whatever its name). */
export async function readSyncTrigger(db: Queryable): Promise<SyncTrigger | null> {
  const { rows } = await db.query<{ fn: string; enabled: string }>(`
SELECT p.proname AS fn, t.tgenabled::text AS enabled
FROM pg_trigger t
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE t.tgrelid = to_regclass('public.embeddings')
  AND NOT t.tgisinternal
  AND n.nspname = 'omni_ingest'
  AND p.proname IN ('embeddings_sync_legacy', 'embeddings_sync_vector')
ORDER BY t.tgname
LIMIT 1`);
  const row = rows[0];
  if (!row) return null;
  return { direction: row.fn === 'embeddings_sync_vector' ? 'vector' : 'legacy', enabled: row.enabled !== 'D' };
}

/** Waits at most `ms` for a lock in this transaction (`55P03`, a BusyError, when it runs out). */
export async function setLockTimeout(tx: Queryable, ms: number): Promise<void> {
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(ms))}ms`]);
}

/** The one lock the swap takes: nothing reads or writes the table while its columns are renamed. */
export async function lockEmbeddings(tx: Queryable): Promise<void> {
  await tx.query(`LOCK TABLE public.embeddings IN ACCESS EXCLUSIVE MODE`);
}

export interface RowsWithoutVector {
  count: number;
  /** Up to three of them, smallest ids first. */
  examples: string[];
}

/**
 * Rows without a vector: what the swap checks under its lock, since `embeddings verify` ran
 * before it (an older application may have written a legacy value the sync trigger could not
 * parse meanwhile). A test of the column's null bit on each row, which reads no vector.
 */
export async function rowsWithoutVector(tx: Queryable, column: VectorColumn): Promise<RowsWithoutVector> {
  const { rows } = await tx.query<{ count: number; examples: string[] | null }>(`
SELECT count(*)::int AS count, ((array_agg(id ORDER BY id))[1:3])::text[] AS examples
FROM public.embeddings
WHERE ${column.name} IS NULL`);
  return { count: rows[0]?.count ?? 0, examples: rows[0]?.examples ?? [] };
}

/**
 * Installs the trigger of `direction`, replacing any other sync trigger (the old direction).
 * The column list limits it to writes of the columns it mirrors: the backfill's own updates of
 * the vector alone never fire it.
 */
export async function installSyncTrigger(tx: Queryable, direction: SyncDirection): Promise<void> {
  await tx.query(`DROP TRIGGER IF EXISTS ${SYNC_TRIGGER} ON public.embeddings`);
  if (direction === 'legacy') {
    await tx.query(`
CREATE TRIGGER ${SYNC_TRIGGER}
BEFORE INSERT OR UPDATE OF embedding ON public.embeddings
FOR EACH ROW EXECUTE FUNCTION omni_ingest.embeddings_sync_legacy()`);
  } else {
    await tx.query(`
CREATE TRIGGER ${SYNC_TRIGGER}
BEFORE INSERT OR UPDATE OF embedding, embedding_legacy ON public.embeddings
FOR EACH ROW EXECUTE FUNCTION omni_ingest.embeddings_sync_vector()`);
  }
}

/** `embedding` (text) → `embedding_legacy`, `embedding_v` → `embedding`. */
export async function renameToSwapped(tx: Queryable): Promise<void> {
  await tx.query(`ALTER TABLE public.embeddings RENAME COLUMN embedding TO embedding_legacy`);
  await tx.query(`ALTER TABLE public.embeddings RENAME COLUMN embedding_v TO embedding`);
}

/** The reverse of renameToSwapped. */
export async function renameToLegacy(tx: Queryable): Promise<void> {
  await tx.query(`ALTER TABLE public.embeddings RENAME COLUMN embedding TO embedding_v`);
  await tx.query(`ALTER TABLE public.embeddings RENAME COLUMN embedding_legacy TO embedding`);
}

/** Is the swap's schema (this release's migration) there? */
export async function hasSwapSchema(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(`
SELECT to_regclass('omni_ingest.embedding_backfill_ranges') IS NOT NULL
   AND to_regprocedure('omni_ingest.legacy_embedding_kind(text)') IS NOT NULL AS ok`);
  return rows[0]?.ok === true;
}
