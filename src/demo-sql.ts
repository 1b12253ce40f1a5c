// What the demo looks at before writing into a server database it was pointed at.
import type { Queryable } from './db/connect.js';

/**
 * Raw events of users other than the demo's; and, where no omni-ingest ledger exists, every table
 * of the database's own schemas (`public` unqualified, others as schema.table; not the system's
 * nor an extension's): a database that holds anything is not the demo's.
 */
export async function foreignContent(db: Queryable, demoUsers: string[]): Promise<{ otherEvents: number; foreignTables: string[] }> {
  const { rows } = await db.query<{ ours: boolean; tables: string[] }>(`
SELECT to_regclass('omni_ingest.schema_migrations') IS NOT NULL AS ours,
       coalesce(array_agg(t.name ORDER BY t.public DESC, t.name) FILTER (WHERE t.name IS NOT NULL), '{}') AS tables
FROM (SELECT 1) one
LEFT JOIN (
  SELECT CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE format('%I.%I', n.nspname, c.relname) END AS name,
         n.nspname = 'public' AS public
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'omni_ingest')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
) t ON true`);
  const ours = rows[0]?.ours ?? false;
  const tables = rows[0]?.tables ?? [];
  if (!ours) return { otherEvents: 0, foreignTables: tables };
  if (!tables.includes('raw_events')) return { otherEvents: 0, foreignTables: [] };
  const events = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n FROM (SELECT 1 FROM public.raw_events WHERE user_id <> ALL($1::uuid[]) LIMIT 1000) x`,
    [demoUsers],
  );
  return { otherEvents: events.rows[0]?.n ?? 0, foreignTables: [] };
}
