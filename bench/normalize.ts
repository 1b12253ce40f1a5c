// `npm run bench -- normalize [--provider gmail|twilio|instagram|webform|all] [--sizes 200000,400000]
// [--workers 1,2] [--batch-size auto|n]`: for each provider and size, a database of its own with
// that many generated events; the provider's mapping done inside PostgreSQL (one INSERT … SELECT,
// alone and with the queue deletes normalize also does), then `normalize` with each worker count
// in a process of its own, with its peak memory. Every contender starts from the same state.
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

const run = promisify(execFile);
const USER = '22222222-2222-4222-8222-222222222222';

/** Merged into bench/run.ts's options (it also supplies --events, --workers, --batch-size and --json). */
export const normalizeBenchOptions = {
  provider: { type: 'string', default: 'all' },
  sizes: { type: 'string' },
} as const;

export interface NormalizeBenchOptions {
  serverUrl: string;
  providers: BenchProvider[];
  sizes: number[];
  workers: number[];
  /** A number, or `auto` (the command's default). */
  batchSize: string;
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

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, value };
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

interface NormalizeRun {
  workers: number;
  seconds: number;
  /** The normalize process's own CPU (user + system), start-up included. */
  cpuSeconds: number;
  inserted: number;
  skipped: number;
  peakRssMb: number;
}

export interface NormalizeBenchRow {
  provider: BenchProvider;
  events: number;
  payloadMb: number;
  baseline: { seconds: number; interactions: number };
  baselineWithQueue: { seconds: number; interactions: number };
  normalize: NormalizeRun[];
}

async function normalizeInProcess(url: string, workers: number, batchSize: string): Promise<NormalizeRun> {
  const worker = path.join(packageRoot, 'dist', 'bench', 'normalize-worker.js');
  const { stdout } = await run(process.execPath, [worker, url, String(workers), batchSize], { maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout.trim()) as { seconds: number; cpuSeconds: number; counts: Record<string, number>; peakRssBytes: number };
  return {
    workers,
    seconds: r.seconds,
    cpuSeconds: r.cpuSeconds,
    inserted: r.counts.inserted ?? 0,
    skipped: r.counts.skipped ?? 0,
    peakRssMb: r.peakRssBytes / 2 ** 20,
  };
}

async function benchOnce(o: NormalizeBenchOptions, provider: BenchProvider, events: number): Promise<NormalizeBenchRow> {
  return withDatabase(o.serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    const bytes = await load(db, events, { provider });
    await reset(db);
    const baseline = await timed(() => insertBaseline(db, provider));
    await reset(db);
    const withQueue = await timed(() => insertBaselineTakingQueue(db, provider));
    const runs: NormalizeRun[] = [];
    for (const workers of o.workers) {
      await reset(db);
      runs.push(await normalizeInProcess(url, workers, o.batchSize));
    }
    return {
      provider,
      events,
      payloadMb: bytes / 2 ** 20,
      baseline: { seconds: baseline.seconds, interactions: baseline.value },
      baselineWithQueue: { seconds: withQueue.seconds, interactions: withQueue.value },
      normalize: runs,
    };
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
