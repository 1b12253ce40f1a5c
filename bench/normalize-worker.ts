// Runs one `normalize` over a database in a process of its own, so the benchmark measures that
// process's time and peak memory alone. The batch size is a number or `auto`, as on the command
// line (where auto is the default). Prints one JSON line.
import './heap-first.js';
import { openDb } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { systemClock } from '../src/clock.js';
import { boundYoungGeneration } from '../src/heap.js';

// As the binary does once its modules are loaded: the peak memory measured is the command's.
boundYoungGeneration();

const [url, workers, batchSize] = process.argv.slice(2);
if (!url) throw new Error('usage: normalize-worker <database-url> [workers] [batch-size|auto]');

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
// As the command sizes its pool: the ledger's connection and two per worker, one for each batch a
// pipelined stage keeps in flight, so the pool never quietly caps the workers.
const db = await openDb({ databaseUrl: url, dataDir: '' }, { poolSize: 2 * Number(workers ?? 1) + 1 });
try {
  const range = parseRange({ batchSize: batchSize ?? 'auto' }, systemClock, undefined, 'adaptive');
  const started = process.hrtime.bigint();
  const summary = await runStage(normalizeStage, {
    db,
    clock: systemClock,
    logger: createMemoryLogger(),
    range,
    workers: Number(workers ?? 1),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  const { user, system } = process.cpuUsage();
  const cpuSeconds = (user + system) / 1e6;
  process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds, counts: summary.counts, peakRssBytes: peakRss })}\n`);
} finally {
  clearInterval(sampler);
  await db.close();
}
