// `npm run bench -- embed --chunks 2000 --latency 100 --concurrency 4 --batch 64`: a fake
// OpenAI server answering after `latency` ms, `chunks` one-chunk interactions on the real server
// (a database of its own), and the embed stage through the real SDK. A provider-bound stage can
// at best keep `concurrency` requests of `batch` inputs in flight all the time, so the ideal is
// concurrency × batch / latency chunks per second; the figure that matters is how close the
// stage gets (target ≥ 80%): everything else — leases, reads, chunking, writes — must overlap
// the requests.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { systemClock } from '../src/clock.js';
import { openDb, type Db } from '../src/db/connect.js';
import { countTokens } from '../src/embed/chunk.js';
import { createLimiter, type Embedder } from '../src/embed/embedder.js';
import { createOpenAIEmbedder } from '../src/embed/openai.js';
import { createMemoryLogger } from '../src/logger.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir } from '../src/paths.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
import { parseRange } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { startFakeOpenAI, type FakeOpenAIOptions, type FakeOpenAIStats } from '../tools/fake-openai.js';

const USER = '33333333-3333-4333-8333-333333333333';

/** Merged into bench/run.ts's options (it also supplies --workers, --batch-size and --json). */
export const embedBenchOptions = {
  chunks: { type: 'string', default: '2000' },
  latency: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '4' },
  batch: { type: 'string', default: '64' },
} as const;

interface EmbedBenchOptions {
  serverUrl: string;
  chunks: number;
  latencyMs: number;
  concurrency: number;
  /** Inputs per request. */
  batch: number;
  /** Interactions leased per batch. */
  batchSize: number;
  workers: number;
}

interface EmbedBenchResult extends Omit<EmbedBenchOptions, 'serverUrl'> {
  embedded: number;
  /** The same requests through the SDK and the limiter, no database: what the harness allows. */
  baselinePerSecond: number;
  baselineRatio: number;
  requests: number;
  seconds: number;
  chunksPerSecond: number;
  idealPerSecond: number;
  ratio: number;
  maxConcurrent: number;
  peakRssMb: number;
}

// The fake provider runs in a thread of its own, as a real one runs elsewhere: its CPU (making
// and encoding vectors) must not be charged to the stage. This module is that thread's entry.
const fakeOptions = (workerData as { fakeOpenAI?: FakeOpenAIOptions } | null)?.fakeOpenAI;
if (!isMainThread && fakeOptions && parentPort) {
  const port = parentPort;
  const fake = await startFakeOpenAI(fakeOptions);
  port.on('message', (m: unknown) => {
    if (m === 'stats') port.postMessage({ stats: fake.stats });
  });
  port.postMessage({ url: fake.url });
}

async function startFakeInThread(
  options: FakeOpenAIOptions,
): Promise<{ url: string; stats(): Promise<FakeOpenAIStats>; close(): Promise<void> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { fakeOpenAI: options } });
  const next = <T>(key: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: Record<string, T>) => {
        if (!(key in m)) return;
        worker.off('message', onMessage);
        resolve(m[key]!);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  const url = await next<string>('url');
  return {
    url,
    stats: () => {
      const s = next<FakeOpenAIStats>('stats');
      worker.postMessage('stats');
      return s;
    },
    close: () => worker.terminate().then(() => undefined),
  };
}

/** The provider side alone: the stage's requests (same count, size and concurrency), no database. */
async function baseline(embedder: Embedder, o: EmbedBenchOptions): Promise<number> {
  const limit = createLimiter(o.concurrency);
  const requests = Math.ceil(o.chunks / o.batch);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: requests }, (_, r) => {
      const n = Math.min(o.batch, o.chunks - r * o.batch);
      const texts = Array.from(
        { length: n },
        (_, i) => `baseline ${r} ${i}: Hello, this is a message about the pricing of the annual contract renewal.`,
      );
      return limit(() => embedder.embed(texts).then(() => undefined)); // vectors dropped, as the stage drops them once written
    }),
  );
  return o.chunks / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function withDatabase<T>(serverUrl: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const name = `omni_bench_embed_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const db = await openDb({ databaseUrl: u.toString(), dataDir: '' }, { poolSize: 6 });
  try {
    return await fn(db);
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function benchEmbed(o: EmbedBenchOptions): Promise<EmbedBenchResult> {
  return withDatabase(o.serverUrl, async (db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    // One chunk each (~60 tokens), every text distinct: each is one input to the provider.
    await db.query(
      `
INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at)
SELECT $1, 'webform', 'bench-' || g, 'form_submitted', 'Enquiry ' || g,
       'Hello, this is message ' || g || ' about the pricing of the annual contract renewal. Could we set up a call next Tuesday to discuss budget approval, onboarding and next steps? Best regards',
       timestamptz '2025-01-01' + make_interval(secs => g)
FROM generate_series(1, $2::int) g`,
      [USER, o.chunks],
    );
    await db.query('VACUUM (ANALYZE) public.interactions');
    await db.query('VACUUM (ANALYZE) omni_ingest.work_queue');
    const fake = await startFakeInThread({ latencyMs: o.latencyMs });
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    try {
      const embedder = createOpenAIEmbedder({ apiKey: 'sk-bench', baseURL: fake.url, maxInputsPerRequest: o.batch });
      const logger = createMemoryLogger();
      // Warm-up: the SDK is loaded and a connection is open before either clock starts.
      await embedder.embed(['warm up']);
      const baselinePerSecond = await baseline(embedder, o);
      const stage = createEmbedStage({ embedder, concurrency: o.concurrency, logger });
      // The tokenizer's one-time load (~0.3 s) is start-up, not throughput: paid before the clock.
      countTokens('warm up');
      const started = process.hrtime.bigint();
      const summary = await runStage(stage, {
        db,
        clock: systemClock,
        logger,
        workers: o.workers,
        range: parseRange({ batchSize: String(o.batchSize) }, systemClock),
      });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const embedded = summary.counts.embedded ?? 0;
      if (embedded !== o.chunks) throw new Error(`embedded ${embedded} of ${o.chunks} chunks`);
      const idealPerSecond = (o.concurrency * o.batch * 1000) / o.latencyMs;
      const chunksPerSecond = embedded / seconds;
      const { serverUrl: _, ...rest } = o;
      return {
        ...rest,
        embedded,
        requests: summary.counts.requests ?? 0,
        seconds,
        chunksPerSecond,
        idealPerSecond,
        ratio: chunksPerSecond / idealPerSecond,
        baselinePerSecond,
        baselineRatio: chunksPerSecond / baselinePerSecond,
        maxConcurrent: (await fake.stats()).maxConcurrent,
        peakRssMb: peakRss / 2 ** 20,
      };
    } finally {
      clearInterval(sampler);
      await fake.close();
    }
  });
}

/** Runs the benchmark for bench/run.ts's parsed values; returns what to print. */
export async function runEmbedBench(values: Record<string, string | boolean | undefined>, serverUrl: string): Promise<string> {
  const num = (k: string) => Number(values[k]);
  const o: EmbedBenchOptions = {
    serverUrl,
    chunks: num('chunks'),
    latencyMs: num('latency'),
    concurrency: num('concurrency'),
    batch: num('batch'),
    batchSize: num('batch-size'),
    workers: num('workers'),
  };
  process.stderr.write(
    `embed bench: ${o.chunks} chunks, ${o.latencyMs} ms latency, concurrency ${o.concurrency}, ${o.batch} inputs/request, leases of ${o.batchSize}, ${o.workers} worker(s)…\n`,
  );
  const r = await benchEmbed(o);
  if (values.json === true) return `${JSON.stringify(r, null, 2)}\n`;
  return [
    'chunks | time    | embed chunks/s | ideal (c × batch / latency) | ratio | SDK + fake server alone | ratio | requests | max in flight | peak RSS',
    '-------|---------|----------------|-----------------------------|-------|-------------------------|-------|----------|---------------|---------',
    `${String(r.embedded).padEnd(6)} | ${r.seconds.toFixed(2).padStart(5)} s | ${Math.round(r.chunksPerSecond).toString().padStart(14)} | ${Math.round(r.idealPerSecond).toString().padStart(27)} | ${(r.ratio * 100).toFixed(0).padStart(4)}% | ${Math.round(r.baselinePerSecond).toString().padStart(23)} | ${(r.baselineRatio * 100).toFixed(0).padStart(4)}% | ${String(r.requests).padStart(8)} | ${String(r.maxConcurrent).padStart(13)} | ${r.peakRssMb.toFixed(0)} MB`,
    '',
  ].join('\n');
}
