// Runs one `normalize` with a batch size (a number or auto) over a database in a process of its
// own, so every size starts from the same cold process. Prints one JSON line: time, events,
// batches, and the sizes auto chose (from the engine's debug lines).
import { systemClock } from '../src/clock.js';
import { parseRange } from '../src/commands/flags.js';
import { openDb } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { boundHeapGrowth } from '../src/heap.js';

// As the binary does: the peak memory measured is the command's.
boundHeapGrowth();

const [url, batchSize] = process.argv.slice(2);
if (!url || !batchSize) throw new Error('usage: batch-auto-worker <database-url> <batch-size|auto>');

const db = await openDb({ databaseUrl: url, dataDir: '' }, { poolSize: 2 });
try {
  const logger = createMemoryLogger();
  const range = parseRange({ batchSize }, systemClock, undefined, 'adaptive');
  const started = process.hrtime.bigint();
  const summary = await runStage(normalizeStage, { db, clock: systemClock, logger, range });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sizes = logger.lines.flatMap((l) => /next batches (\d+) events/.exec(l)?.[1] ?? []).map(Number);
  const backoffs = logger.lines.filter((l) => /pushed back|commits are slowing/.test(l)).length;
  process.stdout.write(`${JSON.stringify({ seconds, events: summary.counts.events ?? 0, batches: summary.batches, sizes, backoffs })}\n`);
} finally {
  await db.close();
}
