// `npm run bench -- batch-auto [--sms 20000] [--emails 2000] [--rounds 3]`: normalize at
// several fixed batch sizes and with --batch-size auto, on two very different event sizes —
// Twilio SMS (~800 bytes) and Gmail messages padded to ~50 KB — each in a database of its own
// on the real server, each run in a fresh process over the same events. The sizes take turns,
// `rounds` times, and each size's figure is its median: on a shared machine one run's rate
// swings by 2×. Prints every fixed size's rate, the best, auto's rate and auto ÷ best (the goal:
// ≥ 0.85).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { getProvider } from '../src/providers/index.js';
import { insertRawEvents } from '../src/stages/import/sql.js';
import { emptyColumns, withDatabase } from './normalize.js';
import { median } from './median.js';

const run = promisify(execFile);
const USER = '44444444-4444-4444-8444-444444444444';
/** The text of each padded email: the payload carries it as text and HTML, base64url (~50 KB). */
const EMAIL_BODY_BYTES = 18_000;

export const batchAutoBenchOptions = {
  sms: { type: 'string', default: '20000' },
  emails: { type: 'string', default: '2000' },
  // No default here: the option is shared, and each benchmark has its own (bench/run.ts).
  rounds: { type: 'string' },
} as const;

interface Kind {
  label: string;
  provider: 'twilio' | 'gmail';
  events: number;
  emailBodyBytes?: number;
  /** Fixed sizes to compare: around where the best one is for this kind, and well off it. */
  fixed: number[];
}

export interface BatchAutoRow {
  label: string;
  events: number;
  payloadBytes: number;
  fixed: { size: number; rate: number }[];
  auto: { rate: number; sizes: number[]; backoffs: number };
}

async function load(db: Db, kind: Kind): Promise<number> {
  const provider = getProvider(kind.provider);
  const batchId = randomUUID();
  const empty = emptyColumns;
  let cols = empty();
  let bytes = 0;
  // ~25 MB per insert whatever the event size.
  const chunk = Math.max(100, Math.floor(25_000_000 / (kind.emailBodyBytes ? 50_000 : 1_000)));
  for (const payload of generateEvents(kind.provider, kind.events, { seed: 7, userId: USER, emailBodyBytes: kind.emailBodyBytes })) {
    const { sourceId, occurredAt } = provider.identify(payload);
    const text = JSON.stringify(payload);
    bytes += text.length;
    cols.userId.push(USER);
    cols.provider.push(kind.provider);
    cols.sourceId.push(sourceId);
    cols.payload.push(text);
    cols.occurredAt.push(occurredAt ?? new Date());
    cols.sourceMeta.push('{}');
    cols.batchId.push(batchId);
    if (cols.userId.length >= chunk) {
      await insertRawEvents(db, cols);
      cols = empty();
    }
  }
  await insertRawEvents(db, cols);
  return Math.round(bytes / kind.events);
}

/** Back to every event pending and nothing normalized, vacuumed, as before the first run. */
async function reset(db: Db): Promise<void> {
  await db.query('TRUNCATE public.interactions, omni_ingest.work_queue, omni_ingest.normalize_queue');
  await db.query(`INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
SELECT id, user_id, provider, occurred_at FROM public.raw_events`);
  for (const table of ['public.raw_events', 'public.interactions', 'omni_ingest.normalize_queue', 'omni_ingest.work_queue'])
    await db.query(`VACUUM (ANALYZE) ${table}`);
}

async function normalizeOnce(url: string, batchSize: string) {
  const worker = path.join(packageRoot, 'dist', 'bench', 'batch-auto-worker.js');
  const { stdout } = await run(process.execPath, [worker, url, batchSize], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim()) as { seconds: number; events: number; batches: number; sizes: number[]; backoffs: number };
}

async function benchKind(serverUrl: string, kind: Kind, rounds: number): Promise<BatchAutoRow> {
  return withDatabase(serverUrl, async (url, db) => {
    await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    const payloadBytes = await load(db, kind);
    const rates = new Map<string, number[]>();
    let auto: Omit<BatchAutoRow['auto'], 'rate'> = { sizes: [], backoffs: 0 };
    // Auto runs in the middle, not first or last, so a warming or tiring machine favours neither.
    const order = [...kind.fixed.map(String)];
    order.splice(Math.floor(order.length / 2), 0, 'auto');
    for (let round = 1; round <= rounds; round++) {
      for (const size of order) {
        await reset(db);
        process.stderr.write(`batch-auto bench: ${kind.label}, round ${round}, --batch-size ${size}…\n`);
        const r = await normalizeOnce(url, size);
        if (r.events !== kind.events) throw new Error(`--batch-size ${size} normalized ${r.events} of ${kind.events} events`);
        rates.set(size, [...(rates.get(size) ?? []), r.events / r.seconds]);
        if (size === 'auto') auto = { sizes: r.sizes, backoffs: auto.backoffs + r.backoffs };
      }
    }
    return {
      label: kind.label,
      events: kind.events,
      payloadBytes,
      fixed: kind.fixed.map((size) => ({ size, rate: median(rates.get(String(size))!) })),
      auto: { ...auto, rate: median(rates.get('auto')!) },
    };
  });
}

export async function benchBatchAuto(o: { serverUrl: string; sms: number; emails: number; rounds: number }): Promise<BatchAutoRow[]> {
  const kinds: Kind[] = [
    { label: 'twilio SMS', provider: 'twilio', events: o.sms, fixed: [300, 1000, 3000, 10_000] },
    { label: 'gmail ~50 KB', provider: 'gmail', events: o.emails, emailBodyBytes: EMAIL_BODY_BYTES, fixed: [30, 100, 300, 1000] },
  ];
  const rows: BatchAutoRow[] = [];
  for (const kind of kinds) rows.push(await benchKind(o.serverUrl, kind, o.rounds));
  return rows;
}

export function printBatchAuto(rows: BatchAutoRow[]): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const out: string[] = [];
  for (const r of rows) {
    const best = r.fixed.reduce((a, b) => (b.rate > a.rate ? b : a));
    out.push(`${r.label}: ${n(r.events)} events of ~${n(r.payloadBytes)} bytes, normalize, 1 worker, median of the rounds`);
    out.push('--batch-size | events/s');
    out.push('-------------|---------');
    for (const f of r.fixed) out.push(`${String(f.size).padEnd(12)} | ${n(f.rate).padStart(8)}${f === best ? '  (best)' : ''}`);
    out.push(`${'auto'.padEnd(12)} | ${n(r.auto.rate).padStart(8)}`);
    const path = r.auto.sizes.length ? `1000 → ${r.auto.sizes.join(' → ')}` : '1000 throughout';
    out.push(
      `auto ÷ best fixed (${best.size}): ${(r.auto.rate / best.rate).toFixed(2)}×; auto's sizes in the last round ${path}; ${r.auto.backoffs} backoff(s)`,
      '',
    );
  }
  return out.join('\n');
}
