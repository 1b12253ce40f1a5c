// `npm run bench -- errors --letters 1000000`: `errors groups` over a million dead letters on the
// real server (a database of its own). The letters are made in the database: 50 causes whose
// messages vary in numbers, ids and emails (so each cause is one signature whatever the values),
// 5,000 users, last seen over 60 days, one in eight closed. Then VACUUM ANALYZE, as autovacuum
// would have done on a table of that age: an index-only scan needs the visibility map.
// Times the groups query in this process (best and median of 5 after a warm-up), the whole
// command in a process of its own, and reads which index the server used from pg_stat.
// Target: under 1 s.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openDb, type Db } from '../src/db/connect.js';
import { errorGroups } from '../src/dead-letters/groups.js';
import { listErrors } from '../src/dead-letters/read.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';

const run = promisify(execFile);

/** Merged into bench/run.ts's options. */
export const errorsBenchOptions = { letters: { type: 'string', default: '1000000' }, keep: { type: 'boolean', default: false } } as const;

interface ErrorsBenchResult {
  letters: number;
  open: number;
  groups: number;
  /** Null when a kept database was reused. */
  seedSeconds: number | null;
  queryBestMs: number;
  queryMedianMs: number;
  commandMs: number;
  /** `errors list`: the first page of 50, and the page after 500,000 rows (by cursor). */
  listFirstMs: number;
  listDeepMs: number;
  /** Index scans the groups query started, per index (from pg_stat_user_indexes). */
  indexScans: Record<string, number>;
}

const urlOf = (serverUrl: string, name: string) => {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
};

const CHUNK = 250_000;

/** Letters `from`..`to` in one statement; letter g: cause g % 50, user g % 5000, closed when g % 8 = 0. */
async function seed(db: Db, from: number, to: number): Promise<void> {
  await db.query(
    `
INSERT INTO public.raw_event_errors (raw_event_id, user_id, provider, stage, error, context, error_at, first_seen, last_seen, status, closed_at, close_reason)
SELECT gen_random_uuid(),
       ('00000000-0000-4000-8000-' || lpad(to_hex(g % 5000), 12, '0'))::uuid,
       (ARRAY['gmail', 'twilio', 'instagram', 'webform'])[1 + (g % 50) % 4],
       (ARRAY['normalize', 'normalize', 'normalize', 'embed', 'insights'])[1 + (g % 50) % 5],
       format('invalid payload: payload.field_%s is missing (expected a string), got %s from user%s@example.com in %s',
              chr(97 + (g % 50) % 26) || chr(97 + (g % 50) / 26), g, g % 977, md5(g::text)),
       jsonb_build_object('raw_event_id', gen_random_uuid(), 'source_id', 'src-' || g, 'interaction_id', gen_random_uuid(),
                          'contact_id', gen_random_uuid(), 'issues', '[]'::jsonb),
       t, t - (g % 5) * interval '1 day', t,
       CASE WHEN g % 8 = 0 THEN 'resolved' ELSE 'open' END,
       CASE WHEN g % 8 = 0 THEN t END,
       CASE WHEN g % 8 = 0 THEN 'succeeded' END
FROM generate_series($1::int, $2::int) AS g
CROSS JOIN LATERAL (SELECT now() - (g % 5184000) * interval '1 second' AS t) x`,
    [from, to],
  );
}

async function indexScans(db: Db): Promise<Record<string, number>> {
  await db.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await db.query<{ name: string; scans: string }>(`
SELECT indexrelname AS name, idx_scan AS scans
FROM pg_stat_user_indexes
WHERE relname = 'raw_event_errors'`);
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.scans)]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * With `keep`, the database is named after the letter count and kept: a later run with --keep
 * reuses it (writing a million letters takes minutes) and times only the reads.
 */
export async function benchErrors(serverUrl: string, letters: number, keep: boolean): Promise<ErrorsBenchResult> {
  const name = keep ? `omni_bench_errors_${letters}` : `omni_bench_errors_${process.pid}`;
  const url = urlOf(serverUrl, name);
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const log = (m: string) => process.stderr.write(`errors bench: ${m}\n`);
  const kept = keep && (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  if (!kept) await admin.query(`CREATE DATABASE ${name}`);
  const db = await openDb({ databaseUrl: url, dataDir: '' });
  try {
    const t0 = process.hrtime.bigint();
    if (!kept) await migrate(db, { files: loadMigrationFiles(migrationsDir) });
    for (let from = 1; !kept && from <= letters; from += CHUNK) {
      await seed(db, from, Math.min(letters, from + CHUNK - 1));
      log(`${Math.min(letters, from + CHUNK - 1)} of ${letters} dead letters written`);
    }
    await db.query('VACUUM (ANALYZE) public.raw_event_errors');
    const seedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_event_errors WHERE status = 'open'`);

    const selection = { statuses: ['open' as const] };
    await errorGroups(db, selection, 50, new Date()); // warm-up: the index into the cache
    await sleep(1500);
    const before = await indexScans(db);
    const times: number[] = [];
    let groups = 0;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      groups = (await errorGroups(db, selection, 50, new Date())).total;
      times.push(performance.now() - t);
    }
    await sleep(1500); // statistics reach pg_stat within a second
    const after = await indexScans(db);
    const indexScansDelta = Object.fromEntries(
      Object.entries(after)
        .map(([k, v]) => [k, (v - (before[k] ?? 0)) / 5] as const)
        .filter(([, v]) => v > 0),
    );
    const t = performance.now();
    await run(process.execPath, [path.join(packageRoot, 'bin', 'omni-ingest.js'), '--database-url', url, 'errors', 'groups'], {
      maxBuffer: 1 << 22,
    });
    const commandMs = performance.now() - t;
    const l0 = performance.now();
    await listErrors(db, selection, 50);
    const listFirstMs = performance.now() - l0;
    // The page after 500,000 rows, or after the last one on a smaller run (it used to fail there).
    const { rows: mid } = await db.query<{ at: string; id: string }>(
      `
SELECT to_char(e.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, e.id
FROM public.raw_event_errors e
WHERE e.status = 'open'
ORDER BY e.last_seen DESC, e.id DESC
OFFSET $1
LIMIT 1`,
      [Math.max(0, Math.min(500_000, rows[0]!.n - 1))],
    );
    const m = mid[0]!;
    const l1 = performance.now();
    await listErrors(db, selection, 50, { at: m.at, id: m.id });
    const listDeepMs = performance.now() - l1;
    times.sort((a, b) => a - b);
    return {
      letters,
      open: rows[0]!.n,
      groups,
      seedSeconds: kept ? null : seedSeconds,
      queryBestMs: times[0]!,
      queryMedianMs: times[2]!,
      commandMs,
      listFirstMs,
      listDeepMs,
      indexScans: indexScansDelta,
    };
  } finally {
    await db.close();
    if (!keep) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

export function printErrors(r: ErrorsBenchResult): string {
  const scans = Object.entries(r.indexScans)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ');
  return [
    `errors groups over ${r.letters.toLocaleString('en')} dead letters (${r.open.toLocaleString('en')} open, ${r.groups} groups; ${r.seedSeconds === null ? 'a kept database' : `written and vacuumed in ${r.seedSeconds.toFixed(0)} s`})`,
    `  query:   best ${r.queryBestMs.toFixed(0)} ms, median ${r.queryMedianMs.toFixed(0)} ms of 5 (target < 1000 ms)`,
    `  command: ${r.commandMs.toFixed(0)} ms in a process of its own (node start-up and connection included)`,
    `  index scans per query: ${scans || '(none recorded)'} (a parallel scan counts once per process)`,
    `errors list: first page ${r.listFirstMs.toFixed(0)} ms, the page after 500,000 rows ${r.listDeepMs.toFixed(0)} ms`,
  ].join('\n');
}
