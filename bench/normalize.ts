// `npm run bench -- normalize --events 200000`: generates webform events, times the same
// mapping done inside PostgreSQL (INSERT … SELECT) and by `normalize` (in a process of its own,
// with its peak memory), then repeats at twice the events to show memory stays flat.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openDb, type Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { getProvider } from '../src/providers/index.js';
import { insertRawEvents, type RawEventColumns } from '../src/stages/import/sql.js';

const run = promisify(execFile);
const USER = '22222222-2222-4222-8222-222222222222';

export interface NormalizeBenchOptions {
  serverUrl: string;
  events: number;
  workers: number;
  batchSize: number;
}

export async function withDatabase<T>(serverUrl: string, fn: (url: string, db: Db) => Promise<T>): Promise<T> {
  const name = `omni_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const db = await openDb({ databaseUrl: u.toString(), dataDir: '' });
  try {
    return await fn(u.toString(), db);
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** Loads `events` generated web forms; `transform` may spoil some (the retry benchmark does). */
export async function load(db: Db, events: number, transform: (p: Record<string, unknown>) => unknown = (p) => p): Promise<void> {
  const provider = getProvider('webform');
  const batchId = randomUUID();
  let cols: RawEventColumns = { userId: [], provider: [], sourceId: [], payload: [], occurredAt: [], sourceMeta: [], batchId: [] };
  const flush = async () => {
    await insertRawEvents(db, cols);
    cols = { userId: [], provider: [], sourceId: [], payload: [], occurredAt: [], sourceMeta: [], batchId: [] };
  };
  for (const generated of generateEvents('webform', events, { seed: 42, userId: USER })) {
    const payload = transform(generated as Record<string, unknown>);
    const { sourceId, occurredAt } = provider.identify(payload);
    cols.userId.push(USER);
    cols.provider.push('webform');
    cols.sourceId.push(sourceId);
    cols.payload.push(JSON.stringify(payload));
    cols.occurredAt.push(occurredAt ?? new Date());
    cols.sourceMeta.push('{}');
    cols.batchId.push(batchId);
    if (cols.userId.length >= 5_000) await flush();
  }
  await flush();
  await db.query('VACUUM (ANALYZE) public.raw_events');
}

/**
 * The webform mapping of SPEC §5 in SQL, as close to the normalizer's output as SQL gets: the
 * same body_raw (the whole submission), the same source_meta shape (identities, names, form),
 * the message field or the fields as `key: value` lines. Phones are not made E.164 here.
 */
const BASELINE_SELECT = `
SELECT r.user_id, r.provider, r.source_id, 'form_submitted',
       r.payload ->> 'form_name',
       coalesce(r.payload -> 'fields' ->> 'message',
                (SELECT string_agg(f.key || ': ' || f.value, E'\\n' ORDER BY f.key) FROM jsonb_each_text(r.payload -> 'fields') f)),
       r.payload,
       (r.payload ->> 'submitted_at')::timestamptz,
       jsonb_build_object(
         'direction', 'inbound', 'to', '[]'::jsonb,
         'formId', r.payload ->> 'form_id', 'formName', r.payload ->> 'form_name',
         'from', (SELECT coalesce(jsonb_agg(i), '[]'::jsonb) FROM (
                    SELECT jsonb_build_object('kind', 'email', 'value', lower(trim(r.payload -> 'fields' ->> 'email'))) AS i WHERE r.payload -> 'fields' ? 'email'
                    UNION ALL
                    SELECT jsonb_build_object('kind', 'phone', 'value', r.payload -> 'fields' ->> 'phone') WHERE r.payload -> 'fields' ? 'phone') ids),
         'names', CASE WHEN r.payload -> 'fields' ? 'email'
                       THEN jsonb_build_object(lower(trim(r.payload -> 'fields' ->> 'email')), coalesce(r.payload -> 'fields' ->> 'name', ''))
                       ELSE '{}'::jsonb END),
       r.batch_id, r.id`;

const INSERT_COLUMNS = '(user_id, source, source_id, type, subject, body_text, body_raw, occurred_at, source_meta, batch_id, raw_event_id)';

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function reset(db: Db): Promise<void> {
  await db.query('TRUNCATE public.interactions');
  await db.query(`INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
SELECT id, user_id, provider, occurred_at FROM public.raw_events ON CONFLICT DO NOTHING`);
  await db.query('VACUUM (ANALYZE) public.raw_events');
  await db.query('VACUUM (ANALYZE) omni_ingest.normalize_queue');
  await db.query('VACUUM (ANALYZE) public.interactions');
}

export interface NormalizeBenchRow {
  events: number;
  sqlMappingSeconds: number;
  sqlWithMarkersSeconds: number;
  normalizeSeconds: number;
  peakRssMb: number;
  interactions: number;
}

async function benchNormalizeOnce(o: NormalizeBenchOptions): Promise<NormalizeBenchRow> {
  return withDatabase(o.serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    await load(db, o.events);
    const sqlMappingSeconds = await timed(() =>
      db.query(
        `INSERT INTO public.interactions ${INSERT_COLUMNS} ${BASELINE_SELECT} FROM public.raw_events r WHERE r.provider = 'webform' ON CONFLICT (user_id, source, source_id) DO NOTHING`,
      ),
    );
    await reset(db);
    // The same work normalize does: the mapping plus taking the events off the queue.
    const sqlWithMarkersSeconds = await timed(() =>
      db.query(`
WITH q AS (DELETE FROM omni_ingest.normalize_queue WHERE provider = 'webform' RETURNING raw_event_id)
INSERT INTO public.interactions ${INSERT_COLUMNS} ${BASELINE_SELECT} FROM q JOIN public.raw_events r ON r.id = q.raw_event_id ON CONFLICT (user_id, source, source_id) DO NOTHING`),
    );
    await reset(db);
    const worker = path.join(packageRoot, 'dist', 'bench', 'normalize-worker.js');
    const { stdout } = await run(process.execPath, [worker, url, String(o.workers), String(o.batchSize)], { maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout.trim()) as { seconds: number; counts: Record<string, number>; peakRssBytes: number };
    return {
      events: o.events,
      sqlMappingSeconds,
      sqlWithMarkersSeconds,
      normalizeSeconds: result.seconds,
      peakRssMb: result.peakRssBytes / 2 ** 20,
      interactions: result.counts.inserted ?? 0,
    };
  });
}

export async function benchNormalize(o: NormalizeBenchOptions): Promise<NormalizeBenchRow[]> {
  const rows: NormalizeBenchRow[] = [];
  for (const events of [o.events, o.events * 2]) {
    process.stderr.write(`normalize bench: ${events} webform events, ${o.workers} worker(s), batches of ${o.batchSize}…\n`);
    rows.push(await benchNormalizeOnce({ ...o, events }));
  }
  return rows;
}

export function printNormalize(rows: NormalizeBenchRow[]): string {
  const rate = (n: number, s: number) =>
    Math.round(n / s)
      .toLocaleString('en-US')
      .padStart(9);
  const lines = [
    'events   | INSERT…SELECT ev/s | +queue ev/s   | normalize ev/s | normalize ÷ INSERT…SELECT time | peak RSS',
    '---------|--------------------|---------------|----------------|--------------------------------|---------',
  ];
  for (const r of rows) {
    lines.push(
      `${String(r.events).padEnd(8)} | ${rate(r.events, r.sqlMappingSeconds)}          | ${rate(r.events, r.sqlWithMarkersSeconds)}     | ${rate(r.events, r.normalizeSeconds)}      | ${(r.normalizeSeconds / r.sqlMappingSeconds).toFixed(2)}×                          | ${r.peakRssMb.toFixed(0)} MB`,
    );
  }
  return lines.join('\n');
}
