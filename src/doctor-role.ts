// doctor's look at the role it connects as: on Supabase that is `postgres` (not a superuser,
// BYPASSRLS) or a role of the user's own, and what it may do decides which commands work.
// A role subject to row level security would see none of the rows the stages must read.
import { z } from 'zod';
import type { Db } from './db/connect.js';

const roleRow = z.object({
  role: z.string(),
  superuser: z.boolean(),
  bypass_rls: z.boolean(),
  can_create: z.boolean(),
  migrated: z.boolean(),
  dml: z.boolean().nullable(),
  owns: z.boolean().nullable(),
  forced: z.boolean().nullable(),
});

async function readRole(db: Db): Promise<z.infer<typeof roleRow>> {
  const { rows } = await db.query(`
SELECT current_user::text AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
       has_database_privilege(current_database(), 'CREATE') AS can_create,
       to_regclass('public.raw_events') IS NOT NULL AS migrated,
       CASE WHEN to_regclass('public.raw_events') IS NOT NULL
            THEN has_table_privilege(to_regclass('public.raw_events'), 'SELECT, INSERT, UPDATE, DELETE') END AS dml,
       (SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('public.raw_events')) AS owns,
       (SELECT c.relforcerowsecurity FROM pg_class c WHERE c.oid = to_regclass('public.raw_events')) AS forced
FROM pg_roles r
WHERE r.rolname = current_user`);
  return roleRow.parse(rows[0]);
}

/** A doctor finding (structurally doctor.ts's Finding; declared here so neither imports the other). */
interface RoleFinding {
  name: 'role';
  ok: boolean;
  detail: string;
  hint?: string;
}

export async function roleFinding(db: Db): Promise<RoleFinding> {
  const r = await readRole(db);
  const traits = [r.superuser ? 'superuser' : 'not a superuser', ...(r.bypass_rls && !r.superuser ? ['BYPASSRLS'] : [])];
  const canMigrate = r.superuser || r.can_create;
  const seesAllRows = r.superuser || r.bypass_rls || (r.owns === true && r.forced !== true);
  const canRun = r.migrated && r.dml === true && seesAllRows;
  const mark = (ok: boolean) => (ok ? 'yes' : 'no');
  const detail = `${r.role} (${traits.join(', ')}): migrate ${mark(canMigrate)}, stages ${r.migrated ? mark(canRun) : 'after migrate'}`;
  if (!canMigrate && !r.migrated)
    return {
      name: 'role',
      ok: false,
      detail,
      hint: `${r.role} may not create schemas in this database: connect as its owner (on Supabase, postgres)`,
    };
  if (r.migrated && r.dml !== true)
    return {
      name: 'role',
      ok: false,
      detail,
      hint: `${r.role} lacks SELECT, INSERT, UPDATE or DELETE on public.raw_events: connect as the tables' owner (on Supabase, postgres)`,
    };
  if (r.migrated && !seesAllRows)
    return {
      name: 'role',
      ok: false,
      detail,
      hint: `row level security hides other users' rows from ${r.role}: connect as the tables' owner, a BYPASSRLS role, or a superuser`,
    };
  return { name: 'role', ok: true, detail };
}
