// What the deeper checks of `verify` read: table privileges per role, recomputed insight
// fingerprints, the fingerprint trigger, and the tool's own objects (tables, triggers, ledger).
import type { Queryable } from '../db/connect.js';

const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/** For each existing role and table: the privileges it holds (directly, through PUBLIC or membership). */
export async function tablePrivileges(db: Queryable, roles: string[], tables: readonly string[]): Promise<Map<string, Set<Privilege>>> {
  const { rows } = await db.query<{ role: string; table: string; privilege: Privilege }>(
    `
SELECT r.rolname AS role, t.name AS table, p.privilege
FROM pg_roles r
CROSS JOIN unnest($2::text[]) AS t(name)
CROSS JOIN unnest($3::text[]) AS p(privilege)
WHERE r.rolname = ANY($1::text[])
  AND to_regclass('public.' || quote_ident(t.name)) IS NOT NULL
  AND has_table_privilege(r.oid, to_regclass('public.' || quote_ident(t.name)), p.privilege)`,
    [roles, tables, PRIVILEGES],
  );
  const out = new Map<string, Set<Privilege>>();
  for (const r of rows) {
    const key = `${r.role}.${r.table}`;
    if (!out.has(key)) out.set(key, new Set());
    out.get(key)?.add(r.privilege);
  }
  return out;
}

export interface FingerprintSample {
  /** Rows recomputed. */
  checked: number;
  /** The table's size: exact when every row was read, else the planner's estimate (null: unknown). */
  total: number | null;
  all: boolean;
  wrong: number;
  examples: string[];
}

/**
 * Recomputes SHA-256(kind|subject_type|subject_id|model|title) — nulls as empty strings, as
 * SPEC §3.2.5 and the hardening define it — for every row, or for about `sample` rows taken by
 * block sampling (cheap on any size), and counts the rows whose stored fingerprint differs.
 */
export async function sampleFingerprints(db: Queryable, sample: number | 'all'): Promise<FingerprintSample> {
  const estimate = await db.query<{ n: number }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'public.ai_insights'::regclass`);
  const estimated = estimate.rows[0]?.n ?? -1;
  // Block sampling only pays on a table well past the sample; otherwise read the rows in order.
  const sampled = sample !== 'all' && estimated > sample * 2;
  const percent = sampled ? Math.min(100, ((sample * 2) / estimated) * 100) : 100;
  const { rows } = await db.query<{ checked: number; wrong: number; examples: string[] }>(
    `
WITH rows AS (
  SELECT a.id, a.fingerprint,
         encode(sha256(convert_to(
           coalesce(a.kind, '') || '|' || coalesce(a.subject_type, '') || '|' || coalesce(a.subject_id::text, '') || '|' ||
           coalesce(a.model, '') || '|' || coalesce(a.content ->> 'title', ''), 'UTF8')), 'hex') AS expected
  FROM public.ai_insights a ${sampled ? 'TABLESAMPLE SYSTEM ($2::float8)' : ''}
  WHERE $2::float8 IS NOT NULL
  LIMIT $1
)
SELECT count(*)::int AS checked,
       count(*) FILTER (WHERE fingerprint IS DISTINCT FROM expected)::int AS wrong,
       coalesce((array_agg(id::text ORDER BY id) FILTER (WHERE fingerprint IS DISTINCT FROM expected))[1:3], '{}') AS examples
FROM rows`,
    [sample === 'all' ? null : sample, percent],
  );
  const r = rows[0] ?? { checked: 0, wrong: 0, examples: [] };
  const all = sample === 'all' || (!sampled && r.checked < sample);
  return { ...r, all, total: all ? r.checked : estimated >= 0 ? Math.round(estimated) : null };
}

/** Enabled BEFORE INSERT and UPDATE row triggers on ai_insights whose function sets the fingerprint. */
export async function fingerprintTriggers(db: Queryable): Promise<{ name: string; enabled: boolean }[]> {
  const { rows } = await db.query<{ name: string; enabled: boolean }>(`
SELECT t.tgname AS name, t.tgenabled <> 'D' AS enabled
FROM pg_trigger t
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass('public.ai_insights')
  AND NOT t.tgisinternal
  -- row-level (1), BEFORE (2), INSERT (4) and UPDATE (16)
  AND t.tgtype & 1 = 1 AND t.tgtype & 2 = 2 AND t.tgtype & 4 = 4 AND t.tgtype & 16 = 16
  AND p.prosrc ILIKE '%fingerprint%'`);
  return rows;
}

/** Which of these tables exist (`schema.table`). */
export async function existingTables(db: Queryable, names: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ name: string }>(
    `
SELECT n.name FROM unnest($1::text[]) AS n(name) WHERE to_regclass(n.name) IS NOT NULL`,
    [names],
  );
  return new Set(rows.map((r) => r.name));
}

/** The triggers on these tables, by `table.trigger` (table as `schema.table`), and whether each is enabled. */
export async function triggersOn(db: Queryable, tables: string[]): Promise<Map<string, boolean>> {
  const { rows } = await db.query<{ key: string; enabled: boolean }>(
    `
SELECT n.name || '.' || t.tgname AS key, t.tgenabled <> 'D' AS enabled
FROM unnest($1::text[]) AS n(name)
JOIN pg_trigger t ON t.tgrelid = to_regclass(n.name) AND NOT t.tgisinternal`,
    [tables],
  );
  return new Map(rows.map((r) => [r.key, r.enabled]));
}
