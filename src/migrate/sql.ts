// The migration ledger's SQL. The ledger lives in its own schema so the application's
// `public` schema (and Supabase's API over it) never sees it.
import type { Queryable } from '../db/connect.js';

export type AppliedMigration = {
  name: string;
  checksum: string;
  applied_at: Date;
  duration_ms: number | null;
  applied_by: string | null;
  adopted: boolean;
};

export async function createLedger(db: Queryable): Promise<void> {
  await db.query(`
CREATE SCHEMA IF NOT EXISTS omni_ingest;
CREATE TABLE IF NOT EXISTS omni_ingest.schema_migrations (
  name text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer,
  applied_by text,
  adopted boolean NOT NULL DEFAULT false
);`);
}

export async function ledgerExists(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ exists: boolean }>(`
SELECT to_regclass('omni_ingest.schema_migrations') IS NOT NULL AS exists`);
  return rows[0]?.exists ?? false;
}

export async function listApplied(db: Queryable): Promise<AppliedMigration[]> {
  const { rows } = await db.query<AppliedMigration>(`
SELECT name, checksum, applied_at, duration_ms, applied_by, adopted
FROM omni_ingest.schema_migrations
ORDER BY name`);
  return rows;
}

/**
 * Serialises migrators for the rest of the transaction. SHARE ROW EXCLUSIVE conflicts with
 * itself, so a second `migrate` waits here and then sees what the first one committed.
 * A transaction-scoped table lock works behind PgBouncer, unlike a session advisory lock.
 */
export async function lockLedger(tx: Queryable): Promise<void> {
  await tx.query(`LOCK TABLE omni_ingest.schema_migrations IN SHARE ROW EXCLUSIVE MODE`);
}

export async function findApplied(tx: Queryable, name: string): Promise<AppliedMigration | undefined> {
  const { rows } = await tx.query<AppliedMigration>(
    `
SELECT name, checksum, applied_at, duration_ms, applied_by, adopted
FROM omni_ingest.schema_migrations
WHERE name = $1`,
    [name],
  );
  return rows[0];
}

export async function countApplied(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ n: number }>(`
SELECT count(*)::int AS n FROM omni_ingest.schema_migrations`);
  return rows[0]?.n ?? 0;
}

export async function recordApplied(
  tx: Queryable,
  m: { name: string; checksum: string; durationMs: number; appliedBy: string; adopted: boolean },
): Promise<void> {
  await tx.query(
    `
INSERT INTO omni_ingest.schema_migrations (name, checksum, duration_ms, applied_by, adopted)
VALUES ($1, $2, $3, $4, $5)`,
    [m.name, m.checksum, m.durationMs, m.appliedBy, m.adopted],
  );
}

/** The legacy schema is there (applied by other means) although the ledger is empty. */
export async function legacySchemaPresent(tx: Queryable): Promise<boolean> {
  const { rows } = await tx.query<{ present: boolean }>(`
SELECT to_regclass('public.raw_events') IS NOT NULL AS present`);
  return rows[0]?.present ?? false;
}

export async function vectorAvailable(db: Queryable): Promise<{ available: boolean; installed: string | null; default: string | null }> {
  const { rows } = await db.query<{ installed_version: string | null; default_version: string | null }>(`
SELECT installed_version, default_version
FROM pg_available_extensions
WHERE name = 'vector'`);
  const row = rows[0];
  return { available: row !== undefined, installed: row?.installed_version ?? null, default: row?.default_version ?? null };
}

/** Only for the migration's own transaction: never wait on application locks forever. */
export async function setLockTimeout(tx: Queryable, timeout: string): Promise<void> {
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [timeout]);
}

/**
 * Where a migration that creates pgvector should put it: Supabase keeps extensions in their own
 * `extensions` schema (its advisor flags one in `public`), so that schema when it exists and
 * pgvector is not installed yet. Returns whether it created the extension.
 */
export async function createVectorInExtensionsSchema(tx: Queryable): Promise<boolean> {
  const { rows } = await tx.query<{ wanted: boolean }>(`
SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
       AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'extensions')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS wanted`);
  if (!rows[0]?.wanted) return false;
  await tx.query(`CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions`);
  return true;
}

/**
 * Migrations name pgvector's types unqualified (`vector(1536)`), as they were written for
 * Supabase's search_path. A connection whose search_path lacks pgvector's schema (a pooler
 * string, `options=-c search_path=public`, a role without Supabase's setting) would fail on
 * them: for the migration's transaction only, that schema goes at the end of the search_path.
 */
export async function exposeVectorSchema(tx: Queryable): Promise<void> {
  await tx.query(`
SELECT set_config('search_path', current_setting('search_path') || ', ' || quote_ident(n.nspname), true)
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
  AND NOT (n.nspname = ANY (current_schemas(false)))`);
}
