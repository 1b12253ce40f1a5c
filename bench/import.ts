// `npm run bench -- import --events 200000 [--sizes 200000,500000,…] [--provider twilio]`:
// generates an NDJSON file of provider payloads, then, for the same file, each in a fresh database
// with the full schema (its GIN index and the queue trigger firing on both sides):
// - the baseline: `psql -c "\copy staging FROM file"` into an unlogged staging table, then one
//   `INSERT INTO raw_events … SELECT … ON CONFLICT DO NOTHING` computing in SQL what import
//   computes per record (the source id, the time, the source_meta with the file and line);
// - the tool: `import` of the file in a process of its own, with its peak memory;
// - optionally (`--compare <checkout>`) the `import` of another built checkout, in the same run.
// Targets (issue 13): import ≥ 0.9× the baseline's speed at every size; peak RSS < 150 MB and flat
// (within 10%) from 200,000 to 2,000,000 events.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { generateNdjson } from '../src/generate/generator.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { withDatabase } from './normalize.js';

const run = promisify(execFile);
const USER = '44444444-4444-4444-8444-444444444444';
const BATCH = '55555555-5555-4555-8555-555555555555';

/** Beside --sizes and --provider, which it shares with the normalize benchmark (`all` there is twilio here). */
export const importBenchOptions = {
  compare: { type: 'string' },
} as const;

/** What import computes per record, in SQL over the staged payload `s.payload` (see each provider's identify()). */
const IDENTIFY_SQL: Record<string, { sourceId: string; occurredAt: string }> = {
  twilio: {
    sourceId: `CASE WHEN s.payload ? 'sid' THEN s.payload ->> 'sid'
     ELSE coalesce(s.payload ->> 'MessageSid', s.payload ->> 'SmsMessageSid', s.payload ->> 'SmsSid') END`,
    // A webhook has no time of its own: it happened when it arrived.
    occurredAt: `CASE WHEN s.payload ? 'sid' THEN coalesce(nullif(s.payload ->> 'date_sent', ''), s.payload ->> 'date_created')::timestamptz
     ELSE now() END`,
  },
  webform: { sourceId: `s.payload ->> 'id'`, occurredAt: `(s.payload ->> 'submitted_at')::timestamptz` },
  gmail: { sourceId: `s.payload ->> 'id'`, occurredAt: `to_timestamp((s.payload ->> 'internalDate')::bigint / 1000.0)` },
};

export interface ImportBenchRow {
  events: number;
  provider: string;
  fileMb: number;
  copySeconds: number;
  insertSeconds: number;
  baselineSeconds: number;
  importSeconds: number;
  /** The import process's own CPU (the server's is apart). */
  importCpuSeconds: number;
  /** Baseline time ÷ import time: ≥ 0.9 is the target. */
  speedRatio: number;
  peakRssMb: number;
  /** The same import by another checkout (`--compare`), in the same run. */
  compared?: { seconds: number; speedRatio: number; peakRssMb: number } | undefined;
  statements?: Record<string, { n: number; ms: number }> | undefined;
}

async function writeFile(file: string, provider: string, events: number): Promise<void> {
  const out = fs.createWriteStream(file);
  for (const line of generateNdjson(provider, events, { seed: 13, userId: USER })) {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

async function baseline(serverUrl: string, file: string, provider: string, events: number) {
  const identify = IDENTIFY_SQL[provider];
  if (!identify) throw new Error(`no baseline SQL for provider "${provider}"; known: ${Object.keys(IDENTIFY_SQL).join(', ')}`);
  return withDatabase(serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    await db.query('CREATE UNLOGGED TABLE bench_staging (line bigint GENERATED ALWAYS AS IDENTITY, payload jsonb NOT NULL)');
    // CSV with quote and delimiter bytes JSON text never holds raw: each line is one value as it is.
    const copy = `\\copy bench_staging (payload) FROM '${file}' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;
    let t = process.hrtime.bigint();
    await run('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', copy]);
    const copySeconds = seconds(t);
    t = process.hrtime.bigint();
    const { rowCount } = await db.query(
      `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, source_meta, batch_id)
SELECT $1, $2, ${identify.sourceId}, s.payload, ${identify.occurredAt},
       jsonb_build_object('imported_from', $3::text, 'line', s.line), $4
FROM bench_staging s
ON CONFLICT (user_id, provider, source_id) DO NOTHING`,
      [USER, provider, path.basename(file), BATCH],
    );
    const insertSeconds = seconds(t);
    if (rowCount !== events) throw new Error(`the baseline wrote ${rowCount} of ${events} events`);
    return { copySeconds, insertSeconds };
  });
}

interface WorkerResult {
  seconds: number;
  cpuSeconds: number;
  counts: { inserted: number; records: number };
  peakRssBytes: number;
  statements: Record<string, { n: number; ms: number }>;
}

async function tool(serverUrl: string, root: string, file: string, provider: string, events: number): Promise<WorkerResult> {
  return withDatabase(serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    const worker = path.join(root, 'dist', 'bench', 'import-worker.js');
    const { stdout } = await run(process.execPath, [worker, url, file, provider, USER], { maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout.trim()) as WorkerResult;
    if (result.counts.inserted !== events) throw new Error(`import wrote ${result.counts.inserted} of ${events} events: ${stdout}`);
    return result;
  });
}

async function benchOnce(serverUrl: string, events: number, provider: string, compare: string | undefined): Promise<ImportBenchRow> {
  const log = (m: string) => process.stderr.write(`import bench (${events.toLocaleString('en-US')} ${provider} events): ${m}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-bench-import-'));
  try {
    const file = path.join(dir, `${provider}.ndjson`);
    log('generating the file…');
    await writeFile(file, provider, events);
    log('baseline: psql \\copy to a staging table + INSERT … SELECT…');
    const b = await baseline(serverUrl, file, provider, events);
    const baselineSeconds = b.copySeconds + b.insertSeconds;
    log('import in a process of its own…');
    const t = await tool(serverUrl, packageRoot, file, provider, events);
    let compared: ImportBenchRow['compared'];
    if (compare) {
      log(`import of ${compare} in a process of its own…`);
      const c = await tool(serverUrl, path.resolve(compare), file, provider, events);
      compared = { seconds: c.seconds, speedRatio: baselineSeconds / c.seconds, peakRssMb: c.peakRssBytes / 2 ** 20 };
    }
    return {
      events,
      provider,
      fileMb: fs.statSync(file).size / 2 ** 20,
      ...b,
      baselineSeconds,
      importSeconds: t.seconds,
      importCpuSeconds: t.cpuSeconds,
      speedRatio: baselineSeconds / t.seconds,
      peakRssMb: t.peakRssBytes / 2 ** 20,
      compared,
      statements: Object.keys(t.statements).length > 0 ? t.statements : undefined,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchImport(o: {
  serverUrl: string;
  events: number;
  sizes: string | undefined;
  provider: string;
  compare: string | undefined;
}): Promise<ImportBenchRow[]> {
  const sizes = o.sizes ? o.sizes.split(',').map(Number) : [o.events, o.events * 2];
  const rows: ImportBenchRow[] = [];
  for (const events of sizes) {
    rows.push(await benchOnce(o.serverUrl, events, o.provider, o.compare));
    // Each size as it ends: the largest take many minutes, and a stopped run keeps the rest.
    process.stderr.write(`${printImport(rows.slice(-1), o.compare).split('\n').slice(2, 3).join('')}\n`);
  }
  return rows;
}

export function printImport(rows: ImportBenchRow[], compare?: string): string {
  const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')}/s`;
  const other = compare ? ` ${compare}: import | its speed ratio | its peak RSS |` : '';
  const lines = [
    `| events | file | \\copy + INSERT … SELECT | import (its own CPU) | baseline ÷ import time (speed) | import peak RSS |${other}`,
    `|---|---|---|---|---|---|${compare ? '---|---|---|' : ''}`,
    ...rows.map((r) => {
      const c = r.compared
        ? ` ${r.compared.seconds.toFixed(1)} s (${rate(r.events, r.compared.seconds)}) | ${r.compared.speedRatio.toFixed(2)}× | ${r.compared.peakRssMb.toFixed(0)} MB |`
        : '';
      return `| ${r.events.toLocaleString('en-US')} ${r.provider} | ${r.fileMb.toFixed(0)} MB | ${r.baselineSeconds.toFixed(1)} s (${r.copySeconds.toFixed(1)} + ${r.insertSeconds.toFixed(1)}; ${rate(r.events, r.baselineSeconds)}) | ${r.importSeconds.toFixed(1)} s (${rate(r.events, r.importSeconds)}; ${r.importCpuSeconds.toFixed(1)} s CPU) | ${r.speedRatio.toFixed(2)}× | ${r.peakRssMb.toFixed(0)} MB |${c}`;
    }),
  ];
  const rss = rows.map((r) => r.peakRssMb);
  if (rows.length > 1) {
    lines.push(
      '',
      `peak RSS curve: ${rss.map((m) => `${m.toFixed(0)} MB`).join(' → ')} (spread ${((Math.max(...rss) / Math.min(...rss) - 1) * 100).toFixed(0)}%)`,
    );
  }
  for (const r of rows.filter((x) => x.statements)) {
    lines.push('', `statements of the ${r.events.toLocaleString('en-US')}-event import (count, total ms):`);
    const sorted = Object.entries(r.statements ?? {}).sort((a, b) => b[1].ms - a[1].ms);
    for (const [key, s] of sorted) lines.push(`  ${String(s.n).padStart(7)} ${s.ms.toFixed(0).padStart(8)} ms  ${key}`);
  }
  lines.push(
    '',
    'targets: import ≥ 0.9× the baseline speed at every size; peak RSS < 150 MB, flat (within 10%) from 200,000 to 2,000,000 events',
  );
  return lines.join('\n');
}
