// The findings of `omni-ingest doctor`: what an operator checks first when something is off.
import { retentionFinding } from './archive/find.js';
import type { OpenAISettings } from './config.js';
import type { Db } from './db/connect.js';
import { pgvectorInstallHint } from './db/pg-errors.js';
import { COLUMN_TYPE_SQL } from './db/vector-column.js';
import { roleFinding } from './doctor-role.js';
import { deadLetterGrowth } from './dead-letters/health.js';
import { EXPECTED_DIMENSIONS } from './embed/embedder.js';
import { chooseEmbedder } from './embed/select.js';
import { chooseInsightProvider } from './insights/select.js';
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
  /** Worth a look but not a problem (exit 0): printed with its hint. */
  warn?: boolean;
}

async function serverVersion(db: Db): Promise<{ version: string; num: number }> {
  const { rows } = await db.query<{ version: string; num: string }>(`
SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num`);
  return { version: rows[0]?.version ?? '?', num: Number(rows[0]?.num ?? 0) };
}

async function rlsTables(db: Db): Promise<{ table: string; rls: boolean }[]> {
  const { rows } = await db.query<{ table: string; rls: boolean }>(
    `
SELECT c.relname AS table, c.relrowsecurity AS rls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND c.relkind = 'r'`,
    [INGESTION_TABLES],
  );
  return rows;
}

export async function diagnose(db: Db, openai: OpenAISettings): Promise<Finding[]> {
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
  findings.push(await roleFinding(db));

  const vector = await vectorAvailable(db);
  findings.push(
    vector.installed
      ? {
          name: 'pgvector',
          ok: true,
          detail: `${vector.installed} installed${vector.default && vector.default !== vector.installed ? ` (${vector.default} available: ALTER EXTENSION vector UPDATE)` : ''}`,
        }
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
  findings.push(await embeddingColumn(db));
  const letters = await deadLetters(db);
  if (letters) findings.push(letters);
  findings.push(await retentionFinding(db));
  findings.push(providers(openai));
  return findings;
}

/** A warning when more dead letters are open than a day ago: a stage has started failing. */
async function deadLetters(db: Db): Promise<Finding | undefined> {
  const g = await deadLetterGrowth(db);
  if (!g) return undefined;
  const grew = g.open_now - g.open_before;
  return {
    name: 'dead letters',
    ok: true,
    detail: `${g.open_now} open (${grew > 0 ? `+${grew}` : grew} in 24 h; ${g.new_open} first seen in 24 h)`,
    ...(grew > 0 ? { warn: true, hint: 'the open dead letters grew: see `omni-ingest errors groups --since 24h`' } : {}),
  };
}

async function embeddingColumn(db: Db): Promise<Finding> {
  const { rows } = await db.query<{ column: string; type: string }>(`
SELECT a.attname AS column, ${COLUMN_TYPE_SQL} AS type
FROM pg_attribute a
WHERE a.attrelid = to_regclass('public.embeddings') AND a.attname IN ('embedding_v', 'embedding')
  AND a.attnum > 0 AND NOT a.attisdropped`);
  const vector = rows.find((r) => r.type.startsWith('vector'));
  if (!vector)
    return {
      name: 'embedding dimensions',
      ok: !(rows.length > 0),
      detail: rows.length > 0 ? 'no vector column on embeddings' : 'no embeddings table yet (migrate creates it)',
    };
  const ok = vector.type === `vector(${EXPECTED_DIMENSIONS})`;
  return {
    name: 'embedding dimensions',
    ok,
    detail: `embeddings.${vector.column} is ${vector.type}; every embedder here makes ${EXPECTED_DIMENSIONS}-dimensional vectors`,
    ...(ok ? {} : { hint: 'the column must be vector(1536): see `omni-ingest verify`' }),
  };
}

/** Which providers the stages will use with this configuration (information, never a failure). */
function providers(openai: OpenAISettings): Finding {
  const embed = chooseEmbedder(openai);
  const insights = chooseInsightProvider(openai);
  const why = openai.apiKey ? `OPENAI_API_KEY set${openai.baseUrl ? ` (base URL ${openai.baseUrl})` : ''}` : 'no OPENAI_API_KEY';
  return {
    name: 'providers',
    ok: true,
    detail: `${why}: embed uses ${embed.name} ${embed.model}${embed.name === 'local' ? ' (lexical)' : ''}, insights ${insights.name} ${insights.model}`,
  };
}
