// `npm run bench -- embed --chunks 2000 [--sizes 2000,4000] --latency 100 --concurrency 4 --batch 64`:
// a fake OpenAI server answering after `latency` ms (in this process), and for each size a
// database of its own holding that many one-chunk interactions on the real server, embedded by the
// stage through the real SDK in a process of its own (bench/embed-worker.ts), with its peak
// memory. A provider-bound stage can at best keep `concurrency` requests of `batch` inputs in
// flight all the time, so the ideal is concurrency × batch / latency chunks per second; the
// figure that matters is how close the stage gets (target ≥ 90%): everything else — leases,
// reads, chunking, writes — must overlap the requests. Beside it, the same requests sent by the
// SDK alone (its own process, no database), and the peak memory at each size (target < 150 MB,
// flat within 10%).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseFlags } from '../src/commands/flags.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { openDb, type Db } from '../src/db/connect.js';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { sizesFlag } from './normalize.js';
import { table } from './normalize-print.js';

const run = promisify(execFile);
const USER = '33333333-3333-4333-8333-333333333333';

/** Merged into bench/run.ts's options (it also supplies --sizes, --workers, --batch-size and --json). */
export const embedBenchOptions = {
  chunks: { type: 'string', default: '2000' },
  latency: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '4' },
  batch: { type: 'string', default: '64' },
} as const;

interface EmbedBenchOptions {
  serverUrl: string;
  sizes: number[];
  latencyMs: number;
  concurrency: number;
  /** Inputs per request. */
  batch: number;
  /** Interactions leased per batch. */
  batchSize: number;
  workers: number;
}

interface WorkerResult {
  seconds: number;
  embedded: number;
  requests: number;
  peakRssBytes: number;
}

interface EmbedBenchRow {
  chunks: number;
  seconds: number;
  chunksPerSecond: number;
  ratio: number;
  requests: number;
  maxConcurrent: number;
  peakRssMb: number;
}

interface EmbedBenchResult extends Omit<EmbedBenchOptions, 'serverUrl'> {
  idealPerSecond: number;
  /** The SDK and the limiter alone, in a process of their own, no database: what the harness allows. */
  sdk: { chunks: number; chunksPerSecond: number; ratio: number; peakRssMb: number };
  rows: EmbedBenchRow[];
}

async function inProcess(job: Record<string, unknown>): Promise<WorkerResult> {
  const worker = path.join(packageRoot, 'dist', 'bench', 'embed-worker.js');
  const { stdout } = await run(process.execPath, [worker, JSON.stringify(job)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim()) as WorkerResult;
}

async function withDatabase<T>(serverUrl: string, fn: (url: string, db: Db) => Promise<T>): Promise<T> {
  const name = `omni_bench_embed_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const db = await openDb({ databaseUrl: u.toString(), dataDir: '' }, { poolSize: 2 });
  try {
    return await fn(u.toString(), db);
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** One chunk each (~60 tokens), every text distinct: each is one input to the provider. */
async function insertInteractions(db: Db, chunks: number): Promise<void> {
  await db.query(
    `
INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at)
SELECT $1, 'webform', 'bench-' || g, 'form_submitted', 'Enquiry ' || g,
       'Hello, this is message ' || g || ' about the pricing of the annual contract renewal. Could we set up a call next Tuesday to discuss budget approval, onboarding and next steps? Best regards',
       timestamptz '2025-01-01' + make_interval(secs => g)
FROM generate_series(1, $2::int) g`,
    [USER, chunks],
  );
  await db.query('VACUUM (ANALYZE) public.interactions');
  await db.query('VACUUM (ANALYZE) omni_ingest.work_queue');
}

async function benchSize(o: EmbedBenchOptions, fake: FakeOpenAI, chunks: number, idealPerSecond: number): Promise<EmbedBenchRow> {
  return withDatabase(o.serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    await insertInteractions(db, chunks);
    fake.stats.maxConcurrent = 0;
    const { serverUrl: _, sizes: __, ...job } = o;
    const r = await inProcess({ ...job, mode: 'stage', databaseUrl: url, fakeUrl: fake.url, chunks });
    if (r.embedded !== chunks) throw new Error(`embedded ${r.embedded} of ${chunks} chunks`);
    const chunksPerSecond = r.embedded / r.seconds;
    return {
      chunks,
      seconds: r.seconds,
      chunksPerSecond,
      ratio: chunksPerSecond / idealPerSecond,
      requests: r.requests,
      maxConcurrent: fake.stats.maxConcurrent,
      peakRssMb: r.peakRssBytes / 2 ** 20,
    };
  });
}

async function benchEmbed(o: EmbedBenchOptions): Promise<EmbedBenchResult> {
  // In this process: its CPU (making and encoding vectors) is not charged to the stage's process.
  const fake = await startFakeOpenAI({ latencyMs: o.latencyMs });
  try {
    const idealPerSecond = (o.concurrency * o.batch * 1000) / o.latencyMs;
    // The SDK's rate does not depend on the size: measured once, over the first size's requests.
    const sdkChunks = o.sizes[0] ?? 2000;
    const { serverUrl: _, sizes: __, ...job } = o;
    const sdk = await inProcess({ ...job, mode: 'sdk', fakeUrl: fake.url, chunks: sdkChunks });
    const rows: EmbedBenchRow[] = [];
    for (const chunks of o.sizes) {
      process.stderr.write(`embed bench: ${chunks} chunks…\n`);
      rows.push(await benchSize(o, fake, chunks, idealPerSecond));
    }
    const sdkRate = sdk.embedded / sdk.seconds;
    const { serverUrl: ___, ...rest } = o;
    return {
      ...rest,
      idealPerSecond,
      sdk: { chunks: sdkChunks, chunksPerSecond: sdkRate, ratio: sdkRate / idealPerSecond, peakRssMb: sdk.peakRssBytes / 2 ** 20 },
      rows,
    };
  } finally {
    await fake.close();
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

function printEmbed(r: EmbedBenchResult): string {
  const head = ['chunks', 'time', 'embed chunks/s', 'of the ideal', 'of the SDK alone', 'requests', 'max in flight', 'peak RSS'];
  const body = r.rows.map((x) => [
    int(x.chunks),
    `${x.seconds.toFixed(1)} s`,
    int(x.chunksPerSecond),
    `${(x.ratio * 100).toFixed(0)}%`,
    `${((x.chunksPerSecond / r.sdk.chunksPerSecond) * 100).toFixed(0)}%`,
    int(x.requests),
    String(x.maxConcurrent),
    `${x.peakRssMb.toFixed(0)} MB`,
  ]);
  const rss = r.rows.map((x) => x.peakRssMb);
  return [
    `ideal (concurrency ${r.concurrency} × ${r.batch} inputs ÷ ${r.latencyMs} ms): ${int(r.idealPerSecond)} chunks/s; ` +
      `the SDK alone (${int(r.sdk.chunks)} chunks, no database): ${int(r.sdk.chunksPerSecond)} chunks/s, ${(r.sdk.ratio * 100).toFixed(0)}% of the ideal, peak RSS ${r.sdk.peakRssMb.toFixed(0)} MB`,
    '',
    table(head, body),
    '',
    `peak RSS from the smallest to the largest size: max ÷ min ${(Math.max(...rss) / Math.min(...rss)).toFixed(2)}× (target: < 150 MB, within 10%)`,
    '',
  ].join('\n');
}

/** Runs the benchmark for bench/run.ts's parsed values; returns what to print. */
export async function runEmbedBench(values: Record<string, string | boolean | undefined>, serverUrl: string): Promise<string> {
  const num = (k: string, fallback: number) => (typeof values[k] === 'string' ? Number(values[k]) : fallback);
  const chunks = num('chunks', 2000);
  const sizes = parseFlags({ sizes: sizesFlag }, values).sizes ?? [chunks, chunks * 2];
  const o: EmbedBenchOptions = {
    serverUrl,
    sizes,
    latencyMs: num('latency', 100),
    concurrency: num('concurrency', 4),
    batch: num('batch', 64),
    batchSize: num('batch-size', 1000),
    workers: num('workers', 2),
  };
  process.stderr.write(
    `embed bench: ${sizes.join(', ')} chunks, ${o.latencyMs} ms latency, concurrency ${o.concurrency}, ${o.batch} inputs/request, leases of ${o.batchSize}, ${o.workers} worker(s)…\n`,
  );
  const r = await benchEmbed(o);
  return values.json === true ? `${JSON.stringify(r, null, 2)}\n` : printEmbed(r);
}
