// The findings of `omni-ingest doctor`: what an operator checks first when something is off.
import type { Db } from './db/connect.js';
import { pgvectorInstallHint } from './db/pg-errors.js';
import { loadMigrationFiles } from './migrate/files.js';
import { migrationStatus } from './migrate/migrator.js';
import { vectorAvailable } from './migrate/sql.js';
import { migrationsDir } from './paths.js';
import { INGESTION_TABLES } from './verify/catalog.js';

export interface Finding {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

async function serverVersion(db: Db): Promise<{ version: string; num: number }> {
  const { rows } = await db.query<{ version: string; num: string }>(`
SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num`);
  return { version: rows[0]?.version ?? '?', num: Number(rows[0]?.num ?? 0) };
}

async function rlsTables(db: Db): Promise<{ table: string; rls: boolean }[]> {
  const { rows } = await db.query<{ table: string; rls: boolean }>(`
SELECT c.relname AS table, c.relrowsecurity AS rls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND c.relkind = 'r'`, [INGESTION_TABLES]);
  return rows;
}

export async function diagnose(db: Db): Promise<Finding[]> {
  const findings: Finding[] = [];
  findings.push({ name: 'connect', ok: true, detail: `${db.kind === 'embedded' ? 'embedded database in' : 'server at'} ${db.target}` });

  const server = await serverVersion(db);
  const supported = server.num >= 150000;
  findings.push({
    name: 'server',
    ok: supported,
    detail: `PostgreSQL ${server.version}`,
    ...(supported ? {} : { hint: 'omni-ingest needs PostgreSQL 15 or newer' }),
  });

  const vector = await vectorAvailable(db);
  findings.push(
    vector.installed
      ? { name: 'pgvector', ok: true, detail: `${vector.installed} installed${vector.default && vector.default !== vector.installed ? ` (${vector.default} available: ALTER EXTENSION vector UPDATE)` : ''}` }
      : vector.available
        ? { name: 'pgvector', ok: true, detail: `${vector.default} available, not yet created (migrate creates it)` }
        : { name: 'pgvector', ok: false, detail: 'not installed on the server', hint: pgvectorInstallHint },
  );

  const statuses = await migrationStatus(db, loadMigrationFiles(migrationsDir));
  const count = (state: string) => statuses.filter((s) => s.state === state).length;
  const pending = count('pending');
  const broken = count('changed') + count('unknown');
  findings.push({
    name: 'migrations',
    ok: pending === 0 && broken === 0,
    detail: `${count('applied')} applied, ${pending} pending${broken ? `, ${count('changed')} changed, ${count('unknown')} unknown` : ''}`,
    ...(broken ? { hint: 'see `omni-ingest migrate status`' } : pending ? { hint: 'run `omni-ingest migrate`' } : {}),
  });

  const tables = await rlsTables(db);
  const off = INGESTION_TABLES.filter((t) => !tables.find((x) => x.table === t)?.rls);
  findings.push({
    name: 'row level security',
    ok: off.length === 0,
    detail: off.length === 0 ? `enabled on all ${INGESTION_TABLES.length} ingestion tables` : `not enabled on ${off.join(', ')}`,
    ...(off.length ? { hint: 'run `omni-ingest migrate`, then `omni-ingest verify` for the details' } : {}),
  });
  return findings;
}
