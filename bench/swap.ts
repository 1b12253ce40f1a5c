// `npm run bench -- swap --rows 200000`: legacy embedding text on the real server (a database of
// its own, copied once so both contenders start from the same data), then
// - the baseline: one `UPDATE embeddings SET embedding_v = embedding::vector(1536)`, and
// - the tool: `embeddings backfill` in a process of its own (time, peak memory in the first half
//   of the rows and over the whole run), then `embeddings verify` and `embeddings swap`,
// - and the HNSW build (`embeddings index`, CONCURRENTLY) over the copied vectors.
// Target: the backfill at ≥ 0.5× the single UPDATE's speed, its memory flat.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openDb, type Db } from '../src/db/connect.js';
import { buildIndex } from '../src/embeddings/hnsw.js';
import { legacyEmbedding, type LegacyShape } from '../src/generate/legacy-embeddings.js';
import { createMemoryLogger } from '../src/logger.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';

const run = promisify(execFile);
const USER = '44444444-4444-4444-8444-444444444444';

/** Merged into bench/run.ts's options (it also supplies --workers, --batch-size and --json). */
export const swapBenchOptions = {
  rows: { type: 'string', default: '200000' },
  m: { type: 'string', default: '16' },
  'ef-construction': { type: 'string', default: '64' },
  'maintenance-work-mem': { type: 'string', default: '2GB' },
} as const;

interface SwapBenchOptions {
  serverUrl: string;
  rows: number;
  workers: number;
  batchSize: number;
  m: number;
  efConstruction: number;
  maintenanceWorkMem: string;
}

interface SwapBenchResult extends Omit<SwapBenchOptions, 'serverUrl'> {
  legacyMb: number;
  updateSeconds: number;
  backfillSeconds: number;
  copied: number;
  /** The single UPDATE's time over the backfill's: ≥ 0.5 is the target. */
  speedRatio: number;
  peakRssMb: number;
  firstHalfPeakRssMb: number;
  verifySeconds: number;
  swapHeldMs: number | null;
  indexSeconds: number;
  indexMb: number;
}

const urlOf = (serverUrl: string, name: string) => {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * `rows` legacy rows, valid 1536-d arrays in the production spellings, made in the database from
 * a pool of a thousand texts: row g takes text g mod 1000 rotated by (g div 1000) components, so
 * every row holds a vector of its own (pgvector's HNSW shares one graph node between equal
 * vectors: copies would make the index build look cheaper than it is) and its own text.
 */
async function load(db: Db, rows: number): Promise<number> {
  const shapes: LegacyShape[] = ['compact', 'spaced', 'exponents', 'float64'];
  const pool = Array.from({ length: 1000 }, (_, i) => legacyEmbedding(shapes[i % shapes.length]!, i).text!);
  await db.query('CREATE TEMP TABLE pool (n int, sep text, parts text[])');
  await db.query(
    `INSERT INTO pool
     SELECT n - 1, CASE WHEN t LIKE '%, %' THEN ', ' ELSE ',' END, string_to_array(btrim(t, E'[] \n'), ',')
     FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n)`,
    [pool],
  );
  await db.query("UPDATE pool SET parts = ARRAY(SELECT btrim(p, E' \\n') FROM unnest(parts) p)");
  await db.query(
    `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding, meta)
     SELECT $1, 'interaction', gen_random_uuid(),
            '[' || array_to_string(p.parts[k + 1:] || p.parts[:k], p.sep) || ']',
            '{"model": "text-embedding-ada-002"}'
     FROM generate_series(0, $2 - 1) g
     CROSS JOIN LATERAL (SELECT (g / 1000) % 1536 AS k) r
     JOIN pool p ON p.n = g % 1000`,
    [USER, rows],
  );
  await db.query('VACUUM (ANALYZE) public.embeddings');
  const { rows: size } = await db.query<{ mb: number }>(`SELECT pg_total_relation_size('public.embeddings') / 1048576.0 AS mb`);
  return Number(size[0]!.mb);
}

export async function benchSwap(o: SwapBenchOptions): Promise<SwapBenchResult> {
  const base = `omni_bench_swap_${process.pid}`;
  const [a, b] = [`${base}_update`, `${base}_tool`];
  const admin = new pg.Client({ connectionString: o.serverUrl });
  await admin.connect();
  const log = (m: string) => process.stderr.write(`swap bench: ${m}\n`);
  try {
    await admin.query(`CREATE DATABASE ${a}`);
    let legacyMb: number;
    {
      const db = await openDb({ databaseUrl: urlOf(o.serverUrl, a), dataDir: '' });
      try {
        await migrate(db, { files: loadMigrationFiles(migrationsDir) });
        log(`generating ${o.rows} legacy rows…`);
        legacyMb = await load(db, o.rows);
      } finally {
        await db.close();
      }
    }
    log(`copying the database (${legacyMb.toFixed(0)} MB of embeddings) so both start from the same data…`);
    await admin.query(`CREATE DATABASE ${b} TEMPLATE ${a}`);

    log('baseline: one UPDATE … SET embedding_v = embedding::vector(1536)…');
    const baseline = await openDb({ databaseUrl: urlOf(o.serverUrl, a), dataDir: '' });
    let updateSeconds: number;
    try {
      updateSeconds = await timed(() => baseline.query('UPDATE public.embeddings SET embedding_v = embedding::vector(1536)'));
    } finally {
      await baseline.close();
    }
    await admin.query(`DROP DATABASE IF EXISTS ${a} WITH (FORCE)`);

    log(`embeddings backfill (${o.workers} workers, batches of ${o.batchSize}), verify and swap, in a process of their own…`);
    const worker = path.join(packageRoot, 'dist', 'bench', 'swap-worker.js');
    const { stdout } = await run(
      process.execPath,
      [worker, urlOf(o.serverUrl, b), String(o.workers), String(o.batchSize), String(o.rows)],
      {
        maxBuffer: 1 << 20,
      },
    );
    const w = JSON.parse(stdout.trim()) as {
      backfillSeconds: number;
      counts: Record<string, number>;
      verifySeconds: number;
      verifyOk: boolean;
      swap: { action: string; heldMs: number | null };
      peakRssBytes: number;
      firstHalfPeakRssBytes: number;
    };
    if (!w.verifyOk || w.swap.action !== 'swapped') throw new Error(`the backfill left the table unverified: ${stdout}`);

    log(`embeddings index (hnsw, m ${o.m}, ef_construction ${o.efConstruction}, maintenance_work_mem ${o.maintenanceWorkMem})…`);
    const db = await openDb({ databaseUrl: urlOf(o.serverUrl, b), dataDir: '' });
    let indexSeconds = 0;
    let indexMb = 0;
    try {
      const r = await buildIndex(db, {
        m: o.m,
        efConstruction: o.efConstruction,
        maintenanceWorkMem: o.maintenanceWorkMem,
        rebuild: false,
        logger: createMemoryLogger(),
      });
      indexSeconds = r.seconds;
      indexMb = (r.index?.bytes ?? 0) / 2 ** 20;
    } finally {
      await db.close();
    }
    const mb = (bytes: number) => bytes / 2 ** 20;
    return {
      rows: o.rows,
      workers: o.workers,
      batchSize: o.batchSize,
      m: o.m,
      efConstruction: o.efConstruction,
      maintenanceWorkMem: o.maintenanceWorkMem,
      legacyMb,
      updateSeconds,
      backfillSeconds: w.backfillSeconds,
      copied: w.counts.copied ?? 0,
      speedRatio: updateSeconds / w.backfillSeconds,
      peakRssMb: mb(w.peakRssBytes),
      firstHalfPeakRssMb: mb(w.firstHalfPeakRssBytes),
      verifySeconds: w.verifySeconds,
      swapHeldMs: w.swap.heldMs,
      indexSeconds,
      indexMb,
    };
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${a} WITH (FORCE)`).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${b} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

export function printSwap(r: SwapBenchResult): string {
  const rate = (s: number) => `${Math.round(r.rows / s).toLocaleString('en-US')} rows/s`;
  return [
    `legacy rows: ${r.rows.toLocaleString('en-US')} valid 1536-d texts (${r.legacyMb.toFixed(0)} MB with their table)`,
    '',
    '| copy | time | rows/s | peak RSS (first half / whole run) |',
    '|---|---|---|---|',
    `| one UPDATE … SET embedding_v = embedding::vector(1536) | ${r.updateSeconds.toFixed(1)} s | ${rate(r.updateSeconds)} | (in the server) |`,
    `| embeddings backfill, ${r.workers} workers, batches of ${r.batchSize} | ${r.backfillSeconds.toFixed(1)} s | ${rate(r.backfillSeconds)} | ${r.firstHalfPeakRssMb.toFixed(0)} MB / ${r.peakRssMb.toFixed(0)} MB |`,
    '',
    `backfill speed ÷ UPDATE speed: ${r.speedRatio.toFixed(2)}× (target ≥ 0.5×); ${r.copied.toLocaleString('en-US')} rows copied`,
    `embeddings verify (every row): ${r.verifySeconds.toFixed(1)} s; embeddings swap held its lock ${r.swapHeldMs ?? '?'} ms`,
    `embeddings index (hnsw cosine, m ${r.m}, ef_construction ${r.efConstruction}, maintenance_work_mem ${r.maintenanceWorkMem}, CONCURRENTLY): ${r.indexSeconds.toFixed(1)} s, ${r.indexMb.toFixed(0)} MB`,
  ].join('\n');
}
