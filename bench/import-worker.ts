// Runs one `import` of a file in a process of its own, so the benchmark measures that process's
// time and peak memory alone. With BENCH_STATEMENTS=1 it also sums the time of every statement by
// its first words (the profile that says where an import's time goes). Prints one JSON line.
import './heap-first.js';
import { systemClock } from '../src/clock.js';
import { type Db, openDb, type Queryable } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { getProvider } from '../src/providers/index.js';
import { DEFAULT_BATCH_SIZE } from '../src/stages/engine/range.js';
import { importFiles } from '../src/stages/import/import.js';
import { boundYoungGeneration } from '../src/heap.js';

// As the binary does once its modules are loaded: the peak memory measured is the command's.
boundYoungGeneration();

const [url, file, provider, user, batchSize] = process.argv.slice(2);
if (!url || !file || !provider || !user) throw new Error('usage: import-worker <database-url> <file> <provider> <user> [batch-size]');

type Statements = Record<string, { n: number; ms: number }>;

/** The same Db, with the time of each statement summed under its first words. */
function timedDb(db: Db, into: Statements): Db {
  const timed = (q: Queryable): Queryable => ({
    async query(sql, params) {
      const key = sql.trim().split(/\s+/).slice(0, 4).join(' ');
      const t = process.hrtime.bigint();
      try {
        return await q.query(sql, params);
      } finally {
        const s = into[key] ?? { n: 0, ms: 0 };
        into[key] = s;
        s.n++;
        s.ms += Number(process.hrtime.bigint() - t) / 1e6;
      }
    },
  });
  const top = timed(db);
  return { ...db, query: top.query, transaction: (fn) => db.transaction((tx) => fn(timed(tx))) };
}

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
const opened = await openDb({ databaseUrl: url, dataDir: '' });
const statements: Statements = {};
const db = process.env.BENCH_STATEMENTS === '1' ? timedDb(opened, statements) : opened;
try {
  const started = process.hrtime.bigint();
  const summary = await importFiles({
    db,
    clock: systemClock,
    logger: createMemoryLogger(),
    files: [file],
    provider: getProvider(provider),
    userId: user,
    batchSize: batchSize ? Number(batchSize) : DEFAULT_BATCH_SIZE,
    dryRun: false,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  // This process's CPU, apart from the server's: what reading and checking the records costs.
  const cpu = process.cpuUsage();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds, counts: summary.counts, peakRssBytes: peakRss, statements })}\n`);
} finally {
  clearInterval(sampler);
  await opened.close();
}
