// `npm run bench -- retry --errors 100000`: the cost of putting failures right. Web forms that
// all failed normalize (no UTC offset) are fixed in place, then `errors retry --all` takes them
// through normalize again and resolves their errors; beside it, `normalize` of as many valid
// forms in a database of their own. Both run as the real binary, in processes of their own.
// The pair runs `--rounds` times (default 3) and the ratio printed last is the median of the
// rounds': one pair's ratio moves with whatever else the machine does during it.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db } from '../src/db/connect.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { load, withDatabase } from './normalize.js';
import { median } from './median.js';

const run = promisify(execFile);
const binary = path.join(packageRoot, 'bin', 'omni-ingest.js');

export const retryBenchOptions = { errors: { type: 'string', default: '100000' } } as const;

export interface RetryBenchResult {
  errors: number;
  batchSize: number;
  normalizeSeconds: number;
  failingNormalizeSeconds: number;
  retrySeconds: number;
  resolved: number;
}

/** Runs the binary on `url`, returning its wall time and its --json result. */
async function timedCli(url: string, args: string[]): Promise<{ seconds: number; json: Record<string, unknown> }> {
  const started = process.hrtime.bigint();
  const { stdout } = await run(process.execPath, [binary, '--database-url', url, '--json', '--no-progress', ...args], {
    maxBuffer: 1 << 24,
    env: { ...process.env, OPENAI_API_KEY: '' },
  });
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, json: JSON.parse(stdout) as Record<string, unknown> };
}

const noOffset = (p: Record<string, unknown>) => ({ ...p, submitted_at: new Date(String(p.submitted_at)).toISOString().slice(0, 19) });

async function prepared(db: Db, errors: number, transform?: (p: Record<string, unknown>) => unknown): Promise<void> {
  await migrate(db, { files: loadMigrationFiles(migrationsDir) });
  await load(db, errors, { transform });
}

async function benchRetryOnce(o: { serverUrl: string; errors: number; batchSize: number }): Promise<RetryBenchResult> {
  const batch = ['--batch-size', String(o.batchSize)];
  process.stderr.write(`retry bench: normalize of ${o.errors} valid web forms…\n`);
  const normalizeSeconds = await withDatabase(o.serverUrl, async (url, db) => {
    await prepared(db, o.errors);
    return (await timedCli(url, ['normalize', ...batch])).seconds;
  });
  process.stderr.write(`retry bench: ${o.errors} failing web forms, fixed, then errors retry --all…\n`);
  return withDatabase(o.serverUrl, async (url, db) => {
    await prepared(db, o.errors, noOffset);
    const failing = await timedCli(url, ['normalize', ...batch]);
    await db.query(
      `UPDATE public.raw_events SET payload = jsonb_set(payload, '{submitted_at}', to_jsonb((payload ->> 'submitted_at') || 'Z'))`,
    );
    await db.query('VACUUM (ANALYZE) public.raw_events');
    await db.query('VACUUM (ANALYZE) public.raw_event_errors');
    const retry = await timedCli(url, ['errors', 'retry', '--all', ...batch]);
    return {
      errors: o.errors,
      batchSize: o.batchSize,
      normalizeSeconds,
      failingNormalizeSeconds: failing.seconds,
      retrySeconds: retry.seconds,
      resolved: Number(retry.json.resolved ?? 0),
    };
  });
}

export async function benchRetry(o: { serverUrl: string; errors: number; batchSize: number; rounds: number }): Promise<RetryBenchResult[]> {
  const rounds: RetryBenchResult[] = [];
  for (let round = 1; round <= Math.max(1, o.rounds); round++) {
    process.stderr.write(`retry bench: round ${round} of ${o.rounds}\n`);
    const r = await benchRetryOnce(o);
    if (r.resolved !== r.errors) throw new Error(`errors retry resolved ${r.resolved} of ${r.errors} errors`);
    rounds.push(r);
  }
  return rounds;
}

export function printRetry(rounds: RetryBenchResult[]): string {
  const first = rounds[0]!;
  const n = (x: number) => x.toLocaleString('en-US');
  const rate = (s: number) => n(Math.round(first.errors / s));
  const ratio = (r: RetryBenchResult) => r.normalizeSeconds / r.retrySeconds;
  return [
    `| ${n(first.errors)} web forms, batches of ${first.batchSize} | \`normalize\` (valid) | \`normalize\` (all dead-lettered) | \`errors retry --all\` | retry ÷ normalize speed |`,
    '|---|---|---|---|---|',
    ...rounds.map(
      (r, i) =>
        `| round ${i + 1} | ${r.normalizeSeconds.toFixed(1)} s (${rate(r.normalizeSeconds)}/s) | ${r.failingNormalizeSeconds.toFixed(1)} s | ${r.retrySeconds.toFixed(1)} s (${rate(r.retrySeconds)}/s, ${n(r.resolved)} resolved) | ${ratio(r).toFixed(2)}× |`,
    ),
    '',
    `errors retry ran at ${median(rounds.map(ratio)).toFixed(2)}× normalize's speed (median of ${rounds.length} round(s); target ≥ 0.8×)`,
  ].join('\n');
}
