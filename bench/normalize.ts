// `npm run bench -- normalize [--provider gmail|twilio|instagram|webform|all] [--sizes 200000,400000]
// [--workers 1,2] [--batch-size auto|n] [--rounds 1]`: for each provider and size, a database of
// its own with that many generated events; the provider's mapping done inside PostgreSQL (one
// INSERT … SELECT, alone and with the queue deletes normalize also does), then `normalize` with
// each worker count in a process of its own, with its peak memory and CPU, and the server's CPU
// during each contender where the server is this machine's (server-cpu.ts). Every contender starts
// from the same state. With `--rounds N` every contender runs N times, in turn, on the same data: each
// figure printed is the median of its rounds, and a speed ratio the median of the rounds' own
// ratios (each one of a baseline and a run minutes apart): on a shared machine one run moves by
// 10–25% with whatever else the host does.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { z } from 'zod';
import { systemClock } from '../src/clock.js';
import { parseFlags, parseRange, wholeNumber, workersFlag } from '../src/commands/flags.js';
import { openDb, type Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { getProvider } from '../src/providers/index.js';
import { insertRawEvents, type RawEventColumns } from '../src/stages/import/sql.js';
import { BENCH_PROVIDERS, type BenchProvider, insertBaseline, insertBaselineTakingQueue } from './normalize-baselines.js';
import { type NormalizeBenchRow, type NormalizeRound, type NormalizeRun, summarizeRounds } from './normalize-rounds.js';
import { type ServerCpuMeter, serverCpuMeter, withServerCpu } from './server-cpu.js';

const run = promisify(execFile);
const USER = '22222222-2222-4222-8222-222222222222';

/** Merged into bench/run.ts's options (it also supplies --events, --workers, --batch-size and --json). */
export const normalizeBenchOptions = {
  provider: { type: 'string', default: 'all' },
  sizes: { type: 'string' },
  rounds: { type: 'string' },
} as const;

export interface NormalizeBenchOptions {
  serverUrl: string;
  providers: BenchProvider[];
  sizes: number[];
  workers: number[];
  /** A number, or `auto` (the command's default). */
  batchSize: string;
  /** How many times every contender runs (the figures are the rounds' medians). */
  rounds: number;
}

/** `1,2,4` → each item through `item`; the message names the item that is wrong. */
const listOf = <T>(item: z.ZodType<T, string>) =>
  z.string().transform((text, ctx) => {
    const out: T[] = [];
    for (const part of text.split(',')) {
      const r = item.safeParse(part.trim());
      if (!r.success) {
        ctx.addIssue({ code: 'custom', message: `has "${part}", which ${r.error.issues[0]?.message ?? 'is invalid'}` });
        return z.NEVER;
      }
      out.push(r.data);
    }
    return out;
  });

/** --sizes of the normalize and embed benchmarks: `200000,500000`. */
export const sizesFlag = listOf(wholeNumber(1, 100_000_000));

const providerFlag = z
  .enum([...BENCH_PROVIDERS, 'all'], { message: `is not one of ${[...BENCH_PROVIDERS, 'all'].join(', ')}` })
  .transform((p): BenchProvider[] => (p === 'all' ? [...BENCH_PROVIDERS] : [p]));

/** bench/run.ts's values → options; a bad value is a UsageError naming the flag. */
export function normalizeBenchOptionsFrom(values: Record<string, unknown>, serverUrl: string): NormalizeBenchOptions {
  const f = parseFlags(
    {
      provider: providerFlag,
      sizes: sizesFlag,
      events: wholeNumber(1, 100_000_000),
      workers: listOf(workersFlag),
      rounds: wholeNumber(1, 100),
    },
    values,
  );
  const events = f.events ?? 200_000;
  const batchSize = typeof values['batch-size'] === 'string' ? values['batch-size'] : 'auto';
  parseRange({ batchSize }, systemClock, undefined, 'adaptive'); // refuses a bad size before any data is made
  return {
    serverUrl,
    providers: f.provider ?? [...BENCH_PROVIDERS],
    sizes: f.sizes ?? [events, events * 2],
    workers: f.workers ?? [1, 2],
    batchSize,
    rounds: f.rounds ?? 1,
  };
}

export async function withDatabase<T>(serverUrl: string, fn: (url: string, db: Db) => Promise<T>): Promise<T> {
  const name = `omni_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const db = await openDb({ databaseUrl: u.toString(), dataDir: '' });
  try {
    return await fn(u.toString(), db);
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** Column arrays for insertRawEvents, empty. */
export const emptyColumns = (): RawEventColumns => ({
  userId: [],
  provider: [],
  sourceId: [],
  payload: [],
  occurredAt: [],
  sourceMeta: [],
  batchId: [],
});

/**
 * Loads `events` generated events of `provider` (web forms by default) as `import` would store
 * them; `transform` may spoil some (the retry benchmark does). Returns the raw events' bytes.
 */
export async function load(
  db: Db,
  events: number,
  o: { provider?: BenchProvider; transform?: (p: Record<string, unknown>) => unknown } = {},
): Promise<number> {
  const name = o.provider ?? 'webform';
  const provider = getProvider(name);
  const batchId = randomUUID();
  let cols = emptyColumns();
  let bytes = 0;
  let pendingBytes = 0;
  const flush = async () => {
    await insertRawEvents(db, cols);
    cols = emptyColumns();
    pendingBytes = 0;
  };
  for (const generated of generateEvents(name, events, { seed: 42, userId: USER })) {
    const payload = o.transform ? o.transform(generated as Record<string, unknown>) : generated;
    const { sourceId, occurredAt } = provider.identify(payload);
    const text = JSON.stringify(payload);
    bytes += text.length;
    pendingBytes += text.length;
    cols.userId.push(USER);
    cols.provider.push(name);
    cols.sourceId.push(sourceId);
    cols.payload.push(text);
    // A webhook carries no time: import stamps it with the time it arrived.
    cols.occurredAt.push(occurredAt ?? new Date());
    cols.sourceMeta.push('{}');
    cols.batchId.push(batchId);
    if (pendingBytes >= 16_000_000 || cols.userId.length >= 5_000) await flush();
  }
  await flush();
  await db.query('VACUUM (ANALYZE) public.raw_events');
  return bytes;
}

/** `fn`'s time and, where the server is this machine's, the server's CPU meanwhile. */
async function timed<T>(
  meter: ServerCpuMeter | undefined,
  fn: () => Promise<T>,
): Promise<{ seconds: number; value: T; serverCpuSeconds: number | undefined }> {
  let seconds = 0;
  const m = await withServerCpu(meter, async () => {
    const t = process.hrtime.bigint();
    const value = await fn();
    // Taken here: the meter waits a moment after the work for the server's figures to settle.
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
    return value;
  });
  return { ...m, seconds };
}

/** Back to "imported, nothing normalized": every contender starts from this state. */
async function reset(db: Db): Promise<void> {
  // The work queue too: the interactions' triggers fill it, and a fuller index costs the next writer.
  await db.query('TRUNCATE public.interactions, omni_ingest.work_queue');
  await db.query(`INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
SELECT id, user_id, provider, occurred_at FROM public.raw_events ON CONFLICT DO NOTHING`);
  await db.query('VACUUM (ANALYZE) public.raw_events');
  await db.query('VACUUM (ANALYZE) omni_ingest.normalize_queue');
  await db.query('VACUUM (ANALYZE) public.interactions');
  await db.query('VACUUM (ANALYZE) omni_ingest.work_queue');
  // Each contender starts with no dirty pages and a fresh WAL budget: without it, the checkpoint
  // the last contender's writes (or the load's) made due fell on whoever ran next.
  await db.query('CHECKPOINT');
}

async function normalizeInProcess(
  meter: ServerCpuMeter | undefined,
  url: string,
  workers: number,
  batchSize: string,
): Promise<NormalizeRun> {
  const worker = path.join(packageRoot, 'dist', 'bench', 'normalize-worker.js');
  const { value: stdout, serverCpuSeconds } = await timed(meter, async () => {
    const { stdout } = await run(process.execPath, [worker, url, String(workers), batchSize], { maxBuffer: 1 << 20 });
    return stdout;
  });
  const r = JSON.parse(stdout.trim()) as { seconds: number; cpuSeconds: number; counts: Record<string, number>; peakRssBytes: number };
  return {
    workers,
    seconds: r.seconds,
    cpuSeconds: r.cpuSeconds,
    serverCpuSeconds,
    inserted: r.counts.inserted ?? 0,
    skipped: r.counts.skipped ?? 0,
    peakRssMb: r.peakRssBytes / 2 ** 20,
  };
}

async function benchOnce(o: NormalizeBenchOptions, provider: BenchProvider, events: number): Promise<NormalizeBenchRow> {
  return withDatabase(o.serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    const bytes = await load(db, events, { provider });
    const meter = await serverCpuMeter(db);
    const rounds: NormalizeRound[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      if (o.rounds > 1) process.stderr.write(`normalize bench: ${provider}, round ${round} of ${o.rounds}\n`);
      await reset(db);
      const baseline = await timed(meter, () => insertBaseline(db, provider));
      await reset(db);
      const withQueue = await timed(meter, () => insertBaselineTakingQueue(db, provider));
      const runs: NormalizeRun[] = [];
      for (const workers of o.workers) {
        await reset(db);
        runs.push(await normalizeInProcess(meter, url, workers, o.batchSize));
      }
      rounds.push({
        baseline: { seconds: baseline.seconds, interactions: baseline.value, serverCpuSeconds: baseline.serverCpuSeconds },
        baselineWithQueue: { seconds: withQueue.seconds, interactions: withQueue.value, serverCpuSeconds: withQueue.serverCpuSeconds },
        normalize: runs,
      });
    }
    return summarizeRounds(provider, events, bytes / 2 ** 20, rounds);
  });
}

export async function benchNormalize(o: NormalizeBenchOptions): Promise<NormalizeBenchRow[]> {
  const rows: NormalizeBenchRow[] = [];
  for (const provider of o.providers) {
    for (const events of o.sizes) {
      process.stderr.write(
        `normalize bench: ${events} ${provider} events, ${o.workers.join(' then ')} worker(s), batch size ${o.batchSize}…\n`,
      );
      rows.push(await benchOnce(o, provider, events));
    }
  }
  return rows;
}
