// The schema the migrations produce, as stable text: tables and columns, constraints, indexes,
// triggers, functions, row level security and policies, grants. `npm run schema:dump` writes it
// to docs/schema.sql from a freshly migrated embedded database; a test fails when the migrations
// produce anything else, so a schema change is always a reviewed change of that file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDb, type Queryable } from '../src/db/connect.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';

export const SCHEMA_FILE = path.join(packageRoot, 'docs', 'schema.sql');

const SCHEMAS = ['public', 'omni_ingest', 'auth'];

async function lines(db: Queryable, sql: string): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(sql, [SCHEMAS]);
  return rows.map((r) => r.line);
}

export async function dumpSchema(db: Queryable): Promise<string> {
  const sections: [string, string[]][] = [
    [
      'tables',
      await lines(
        db,
        `
SELECT format('%I.%I%s', n.nspname, c.relname, CASE WHEN c.relrowsecurity THEN ' (row level security)' ELSE '' END)
       || E'\\n' || string_agg(format('  %I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
            CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
            coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')), E'\\n' ORDER BY a.attnum) AS line
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p')
GROUP BY n.nspname, c.relname, c.relrowsecurity
ORDER BY n.nspname, c.relname`,
      ),
    ],
    [
      'constraints',
      await lines(
        db,
        `
SELECT format('%I.%I %I %s', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)) AS line
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1)
  AND k.contype <> 'n' -- NOT NULL: in the column list (newer servers also keep it as a constraint)
ORDER BY n.nspname, c.relname, k.conname`,
      ),
    ],
    [
      'indexes',
      await lines(
        db,
        `
SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' -- INVALID' END AS line
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1)
ORDER BY n.nspname, c.relname`,
      ),
    ],
    [
      'triggers',
      await lines(
        db,
        `
SELECT pg_get_triggerdef(t.oid) || CASE t.tgenabled WHEN 'D' THEN ' -- DISABLED' ELSE '' END AS line
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1) AND NOT t.tgisinternal
ORDER BY n.nspname, c.relname, t.tgname`,
      ),
    ],
    [
      'functions',
      await lines(
        db,
        `
SELECT rtrim(pg_get_functiondef(p.oid), E'\\n') AS line
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
WHERE n.nspname = ANY($1) AND d.objid IS NULL AND p.prokind IN ('f', 'p')
ORDER BY n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)`,
      ),
    ],
    [
      'policies',
      await lines(
        db,
        `
SELECT format('%I.%I %I %s %s to %s using (%s) with check (%s)', p.schemaname, p.tablename, p.policyname, p.permissive, p.cmd,
              array_to_string(p.roles, ','), coalesce(p.qual, '-'), coalesce(p.with_check, '-')) AS line
FROM pg_policies p
WHERE p.schemaname = ANY($1)
ORDER BY p.schemaname, p.tablename, p.policyname`,
      ),
    ],
    [
      'grants',
      await lines(
        db,
        `
SELECT line FROM (
  SELECT format('table %I.%I to %s: %s', g.table_schema, g.table_name, g.grantee, string_agg(g.privilege_type, ', ' ORDER BY g.privilege_type)) AS line
  FROM information_schema.role_table_grants g
  JOIN pg_roles r ON r.rolname = g.grantee
  WHERE g.table_schema = ANY($1) AND g.grantee IN ('anon', 'authenticated', 'service_role', 'PUBLIC')
  GROUP BY g.table_schema, g.table_name, g.grantee
  UNION ALL
  SELECT format('schema %I to %s: %s', n.nspname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type)
  FROM pg_namespace n, aclexplode(n.nspacl) a
  WHERE n.nspname = ANY($1) AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated', 'service_role'))
  UNION ALL
  SELECT format('function %I.%I(%s) to %s: %s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type)
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
  WHERE n.nspname = ANY($1) AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated', 'service_role'))
) g
ORDER BY line`,
      ),
    ],
  ];
  const body = sections.map(([title, entries]) => `-- ${title}\n\n${entries.join('\n\n')}\n`).join('\n');
  return `-- The schema the migrations produce (npm run schema:dump). Do not edit: change a migration.\n\n${body}`;
}

/** Migrates a new embedded database in a temporary folder and dumps it. */
export async function dumpFreshSchema(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-schema-'));
  const db = await openDb({ databaseUrl: undefined, dataDir: path.join(dir, 'db') });
  try {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    return await dumpSchema(db);
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.mkdirSync(path.dirname(SCHEMA_FILE), { recursive: true });
  fs.writeFileSync(SCHEMA_FILE, await dumpFreshSchema());
  process.stdout.write(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}\n`);
}
