// Runs one `archive` (write, read-back verify, delete) over a database in a process of its own,
// so the benchmark measures this process's time and peak memory alone — the peak in the first
// half of the rows next to the peak of the whole run, to show it is flat — and its own CPU. Prints
// one JSON line.
import { runArchive } from '../src/archive/run.js';
import { openTarget } from '../src/archive/target.js';
import { systemClock } from '../src/clock.js';
import { openDb } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { boundHeapGrowth } from '../src/heap.js';

// As the binary does: the peak memory measured is the command's.
boundHeapGrowth();

const [url, uri, batchSize, rows, workers] = process.argv.slice(2);
if (!url || !uri || !rows) throw new Error('usage: archive-worker <database-url> <target-uri> <batch-size> <rows>');

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
const db = await openDb({ databaseUrl: url, dataDir: '' });
try {
  const target = await openTarget(uri, { endpoint: undefined, region: 'us-east-1', forcePathStyle: false });
  const started = process.hrtime.bigint();
  const result = await runArchive({
    db,
    target,
    filter: { cutoff: new Date(Date.now() - 90 * 86_400_000), userId: undefined, provider: undefined },
    olderThanDays: 90,
    batchSize: Number(batchSize ?? 10_000),
    partRows: 50_000,
    workers: Number(workers ?? 1),
    timeBudgetMs: undefined,
    clock: systemClock,
    signal: undefined,
    logger: createMemoryLogger(),
    bar: { increment: (n) => (done += n), setTotal: () => {} },
    reconnectMs: 10_000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  // Where the time went: each step of the state machine summed over the batches.
  const steps = { plan: 0, write: 0, verify: 0, delete: 0 };
  for (const b of result.batches) for (const k of Object.keys(steps) as (keyof typeof steps)[]) steps[k] += b.ms[k] / 1000;
  const { user, system } = process.cpuUsage();
  process.stdout.write(
    `${JSON.stringify({ seconds, cpuSeconds: (user + system) / 1e6, deleted: result.deleted, bytes: result.bytes, batches: result.batches.length, peakRssBytes: peakRss, firstHalfPeakRssBytes: firstHalfPeak, steps })}\n`,
  );
} finally {
  clearInterval(sampler);
  await db.close();
}
