// What the demo looks at before writing into a server database it was pointed at.
import type { Queryable } from './db/connect.js';

/** Raw events of users other than the demo's, and tables of `public` when no omni-ingest ledger exists. */
export async function foreignContent(db: Queryable, demoUsers: string[]): Promise<{ otherEvents: number; foreignTables: string[] }> {
  const { rows } = await db.query<{ ours: boolean; tables: string[] }>(`
SELECT to_regclass('omni_ingest.schema_migrations') IS NOT NULL AS ours,
       coalesce(array_agg(c.relname::text ORDER BY c.relname) FILTER (WHERE c.relname IS NOT NULL), '{}') AS tables
FROM (SELECT 1) one
LEFT JOIN pg_class c ON c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace`);
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
