// The embed benchmark's run, in the process bench/embed-worker.ts started with the heap set as
// the binary sets it for embed. `stage`: the embed stage over a database's pending chunks;
// `sdk`: the same number of requests through the SDK and the limiter, no database (what the
// harness allows). Prints one JSON line.
import { z } from 'zod';
import { systemClock } from '../src/clock.js';
import { parseRange } from '../src/commands/flags.js';
import { openDb, type Db } from '../src/db/connect.js';
import { countTokens } from '../src/embed/chunk.js';
import { createLimiter, type Embedder } from '../src/embed/embedder.js';
import { createOpenAIEmbedder } from '../src/embed/openai.js';
import { boundYoungGeneration } from '../src/heap.js';
import { createMemoryLogger } from '../src/logger.js';
import { runStage } from '../src/stages/engine/runner.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
const Job = z.object({
  mode: z.enum(['stage', 'sdk']),
  databaseUrl: z.string().optional(),
  fakeUrl: z.string(),
  chunks: z.number().int().positive(),
  concurrency: z.number().int().positive(),
  /** Inputs per request. */
  batch: z.number().int().positive(),
  /** Interactions leased per batch. */
  batchSize: z.number().int().positive(),
  workers: z.number().int().positive(),
});
type Job = z.infer<typeof Job>;

boundYoungGeneration();
const job = Job.parse(JSON.parse(process.argv[2] ?? '{}'));

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

/** The requests the stage would send, each text made when its request starts (the stage holds one batch at a time). */
async function sdkAlone(embedder: Embedder, j: Job): Promise<{ embedded: number; requests: number }> {
  const limit = createLimiter(j.concurrency);
  const requests = Math.ceil(j.chunks / j.batch);
  await Promise.all(
    Array.from({ length: requests }, (_, r) =>
      limit(() => {
        const n = Math.min(j.batch, j.chunks - r * j.batch);
        const texts = Array.from(
          { length: n },
          (_, i) => `baseline ${r} ${i}: Hello, this is a message about the pricing of the annual contract renewal.`,
        );
        return embedder.embed(texts).then(() => undefined); // vectors dropped, as the stage drops them once written
      }),
    ),
  );
  return { embedded: j.chunks, requests };
}

async function stage(embedder: Embedder, db: Db, j: Job): Promise<{ embedded: number; requests: number }> {
  const logger = createMemoryLogger();
  const summary = await runStage(createEmbedStage({ embedder, concurrency: j.concurrency, logger }), {
    db,
    clock: systemClock,
    logger,
    workers: j.workers,
    range: parseRange({ batchSize: String(j.batchSize) }, systemClock),
  });
  return { embedded: summary.counts.embedded ?? 0, requests: summary.counts.requests ?? 0 };
}

if (job.mode === 'stage' && !job.databaseUrl) throw new Error('embed-worker: stage mode needs databaseUrl');
// Two connections per worker (a pipelined stage keeps two batches in flight) and room for the ledger.
const db =
  job.mode === 'stage' ? await openDb({ databaseUrl: job.databaseUrl ?? '', dataDir: '' }, { poolSize: 2 * job.workers + 4 }) : undefined;
try {
  const embedder = createOpenAIEmbedder({ apiKey: 'sk-bench', baseURL: job.fakeUrl, maxInputsPerRequest: job.batch });
  // Start-up before the clock: the SDK loaded, a connection open, and for the stage the
  // tokenizer's one-time load (~0.3 s; ~90 MB, which the SDK-alone figure leaves out).
  await embedder.embed(['warm up']);
  if (db) countTokens('warm up');
  const started = process.hrtime.bigint();
  const done = db ? await stage(embedder, db, job) : await sdkAlone(embedder, job);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(`${JSON.stringify({ seconds, ...done, peakRssBytes: peakRss })}\n`);
} finally {
  clearInterval(sampler);
  await db?.close();
}
