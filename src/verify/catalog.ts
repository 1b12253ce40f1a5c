// Reads what `verify` needs from the system catalogs, in a handful of queries, into plain
// objects the checks can judge without touching the database again.
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';
import { COLUMN_TYPE_SQL } from '../db/vector-column.js';

export const INGESTION_TABLES = [
  'contacts',
  'raw_events',
  'interactions',
  'embeddings',
  'ai_insights',
  'contact_timeline',
  'jobs',
  'sync_audit',
  'contact_identities',
  'raw_event_errors',
] as const;

const columnRow = z.object({ table: z.string(), column: z.string(), type: z.string(), not_null: z.boolean() });
const constraintRow = z.object({
  table: z.string(),
  name: z.string(),
  type: z.string(),
  columns: z.array(z.string()),
  ref_table: z.string().nullable(),
  ref_columns: z.array(z.string()).nullable(),
  on_delete: z.string(),
});
const indexRow = z.object({
  table: z.string(),
  name: z.string(),
  method: z.string(),
  unique: z.boolean(),
  partial: z.boolean(),
  keys: z.array(z.string()),
  valid: z.boolean(),
  /** The whole definition without the index's name: two equal definitions are duplicates. */
  definition: z.string(),
});
const policyRow = z.object({
  table: z.string(),
  name: z.string(),
  command: z.string(),
  permissive: z.boolean(),
  roles: z.array(z.string()),
  using: z.string().nullable(),
  check: z.string().nullable(),
});
const tableRow = z.object({ table: z.string(), rls: z.boolean() });

type Column = z.infer<typeof columnRow>;
type Constraint = z.infer<typeof constraintRow>;
type Index = z.infer<typeof indexRow>;
export type Policy = z.infer<typeof policyRow>;

export interface Catalog {
  tables: Map<string, { rls: boolean }>;
  columns: Column[];
  constraints: Constraint[];
  indexes: Index[];
  policies: Policy[];
  vectorVersion: string | null;
  hasAuthUid: boolean;
  roles: string[];
  /** service_role has BYPASSRLS (as on Supabase): full access without policies. */
  serviceRoleBypassesRls: boolean;
  /** ai_insights rows without a fingerprint; null when the column is missing. */
  insightsWithoutFingerprint: number | null;
}

export async function readCatalog(db: Queryable): Promise<Catalog> {
  const schema = 'public';
  const tables = await db.query(
    `
SELECT c.relname AS table, c.relrowsecurity AS rls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
    [schema],
  );

  const columns = await db.query(
    `
SELECT c.relname AS table, a.attname AS column, ${COLUMN_TYPE_SQL} AS type, a.attnotnull AS not_null
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`,
    [schema],
  );

  const constraints = await db.query(
    `
SELECT c.relname AS table, con.conname AS name, con.contype::text AS type,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
       rc.relname AS ref_table,
       CASE WHEN con.confrelid = 0 THEN NULL ELSE
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord) END AS ref_columns,
       con.confdeltype::text AS on_delete
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
WHERE n.nspname = $1`,
    [schema],
  );

  const indexes = await db.query(
    `
SELECT t.relname AS table, i.relname AS name, am.amname AS method, x.indisunique AS unique,
       x.indpred IS NOT NULL AS partial, x.indisvalid AS valid,
       regexp_replace(pg_get_indexdef(x.indexrelid), '^CREATE (UNIQUE )?INDEX \\S+ ON ', 'CREATE \\1INDEX ON ') AS definition,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                    || CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
             FROM generate_series(1, x.indnkeyatts) k) AS keys
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_am am ON am.oid = i.relam
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1`,
    [schema],
  );

  const policies = await db.query(
    `
SELECT c.relname AS table, p.polname AS name, p.polcmd::text AS command, p.polpermissive AS permissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END FROM unnest(p.polroles) r) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1`,
    [schema],
  );

  const misc = await db.query<{ vector: string | null; has_auth_uid: boolean; roles: string[]; service_bypass: boolean }>(`
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS vector,
       EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'auth' AND p.proname = 'uid') AS has_auth_uid,
       ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')) AS roles,
       coalesce((SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'), false) AS service_bypass`);

  const parsedColumns = z.array(columnRow).parse(columns.rows);
  let insightsWithoutFingerprint: number | null = null;
  if (parsedColumns.some((c) => c.table === 'ai_insights' && c.column === 'fingerprint')) {
    insightsWithoutFingerprint = await countInsightsWithoutFingerprint(db);
  }
  const miscRow = misc.rows[0];
  return {
    tables: new Map(
      z
        .array(tableRow)
        .parse(tables.rows)
        .map((t) => [t.table, { rls: t.rls }]),
    ),
    columns: parsedColumns,
    constraints: z.array(constraintRow).parse(constraints.rows),
    indexes: z.array(indexRow).parse(indexes.rows),
    policies: z.array(policyRow).parse(policies.rows),
    vectorVersion: miscRow?.vector ?? null,
    hasAuthUid: miscRow?.has_auth_uid ?? false,
    roles: miscRow?.roles ?? [],
    serviceRoleBypassesRls: miscRow?.service_bypass ?? false,
    insightsWithoutFingerprint,
  };
}

async function countInsightsWithoutFingerprint(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM public.ai_insights WHERE fingerprint IS NULL`);
  return rows[0]?.n ?? 0;
}
