// Runs `embeddings backfill`, then `embeddings verify` and `embeddings swap`, over a database in
// a process of its own, so the benchmark measures this process's time and peak memory alone —
// the peak in the first half of the rows next to the peak of the whole run, to show it is flat.
// Prints one JSON line.
import { systemClock } from '../src/clock.js';
import { openDb } from '../src/db/connect.js';
import { runEmbeddingsBackfill } from '../src/embeddings/backfill.js';
import { swapColumns } from '../src/embeddings/swap.js';
import { verifyEmbeddings } from '../src/embeddings/verify.js';
import { createMemoryLogger } from '../src/logger.js';
import { makeRange } from '../src/stages/engine/range.js';
import { boundHeapGrowth } from '../src/heap.js';

// As the binary does: the peak memory measured is the command's.
boundHeapGrowth();

const [url, workers, batchSize, rows] = process.argv.slice(2);
if (!url || !rows) throw new Error('usage: swap-worker <database-url> <workers> <batch-size> <rows>');

let peakRss = 0;
let firstHalfPeak = 0;
let done = 0;
const half = Number(rows) / 2;
const sample = () => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  if (done <= half) firstHalfPeak = Math.max(firstHalfPeak, rss);
};
const sampler = setInterval(sample, 20);
const logger = createMemoryLogger();
const db = await openDb({ databaseUrl: url, dataDir: '' }, { poolSize: Number(workers ?? 1) + 1 });
const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;
try {
  let t = process.hrtime.bigint();
  const result = await runEmbeddingsBackfill({
    db,
    clock: systemClock,
    logger,
    range: makeRange({ batchSize: Number(batchSize ?? 1000) }),
    workers: Number(workers ?? 1),
    bar: { increment: (n) => (done += n), setTotal: () => {} },
    lockTimeoutMs: 500,
    lockAttempts: 10,
  });
  const backfillSeconds = seconds(t);
  sample();
  t = process.hrtime.bigint();
  const verify = await verifyEmbeddings(db, { batchSize: 2000, workers: Number(workers ?? 1) });
  const verifySeconds = seconds(t);
  const swap = await swapColumns(db, { rollback: false, lockTimeoutMs: 500, lockAttempts: 10, logger, verify: async () => verify });
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(
    `${JSON.stringify({
      backfillSeconds,
      counts: result.summary?.counts ?? {},
      verifySeconds,
      verifyOk: verify.ok,
      swap: { action: swap.action, heldMs: swap.heldMs },
      peakRssBytes: peakRss,
      firstHalfPeakRssBytes: firstHalfPeak,
    })}\n`,
  );
} finally {
  clearInterval(sampler);
  await db.close();
}
