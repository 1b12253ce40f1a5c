// `npm run bench -- archive --events 200000`: generated web form events, all older than the cutoff,
// on the real server; then, on the same rows in the same run,
// - the baseline: `psql -c "\copy (SELECT * FROM public.raw_events …) TO STDOUT" | gzip -1` to a file
//   (a dump: no read-back, no delete), and
// - the tool: `archive` to file:// in a process of its own — parts, manifest, the read-back verify
//   of every part, and the delete, `--workers` batches at once (default 2) — with its peak memory in the first half of the rows and over
//   the whole run;
// then the same at twice the events, to show memory stays flat as the rows double.
// Target: the archive at ≥ 0.5× the dump's speed.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db } from '../src/db/connect.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { withDatabase } from './normalize.js';
import { serverCpuMeter, withServerCpu } from './server-cpu.js';

const run = promisify(execFile);

export interface ArchiveBenchRow {
  events: number;
  batchSize: number;
  workers: number;
  dumpSeconds: number;
  dumpMb: number;
  archiveSeconds: number;
  archiveMb: number;
  deleted: number;
  batches: number;
  /** The dump's time over the archive's: ≥ 0.5 is the target. */
  speedRatio: number;
  peakRssMb: number;
  firstHalfPeakRssMb: number;
  /** CPU seconds of psql and gzip together, and of the server meanwhile (undefined: not measurable). */
  dumpCpu: { client: number | undefined; server: number | undefined };
  /** CPU seconds of the archive's process, and of the server meanwhile (undefined: not measurable). */
  archiveCpu: { client: number; server: number | undefined };
  /** Seconds in each step of the batches: planning, writing parts, the read-back verify, the delete. */
  steps: { plan: number; write: number; verify: number; delete: number };
}

const mb = (bytes: number) => bytes / 2 ** 20;

/** The children's user + system seconds from the second line `times` prints ("0m1.23s 0m0.45s"). */
function childrenCpu(timesOutput: string): number | undefined {
  const line = timesOutput.trim().split('\n').at(-1) ?? '';
  const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)];
  if (parts.length !== 2) return undefined;
  return parts.reduce((n, m) => n + Number(m[1]) * 60 + Number(m[2]), 0);
}

async function du(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', dir]);
  return Number(stdout.split(/\s/)[0]);
}

/**
 * Web-form-like events (about 600 bytes of payload each, every one different) 100–400 days old,
 * taken off the normalize queue as if normalized (the queue vacuumed, as autovacuum would have).
 */
async function prepare(db: Db, events: number): Promise<void> {
  await migrate(db, { files: loadMigrationFiles(migrationsDir) });
  await db.query(
    `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, source_meta, batch_id, created_at)
SELECT '33333333-3333-4333-8333-333333333333', 'webform', 'form-' || g,
       jsonb_build_object(
         'form_id', 'contact-' || (g % 40), 'submitted_at', (now() - make_interval(days => 100 + g % 300))::text,
         'fields', jsonb_build_object('name', 'Person ' || g, 'email', 'person' || g || '@example.com', 'phone', '+1555' || lpad((g % 10000000)::text, 7, '0'),
                                      'message', repeat('I would like to hear more about the plan ' || md5(g::text) || '. ', 4)),
         'utm', jsonb_build_object('source', 'newsletter', 'campaign', 'c' || (g % 17))),
       now() - make_interval(days => 100 + g % 300), jsonb_build_object('ip', '10.0.' || (g % 250) || '.' || (g % 200)), gen_random_uuid(),
       now() - make_interval(days => 100 + g % 300)
FROM generate_series(1, $1::int) g`,
    [events],
  );
  await db.query('DELETE FROM omni_ingest.normalize_queue');
  // As autovacuum would have by the time events are old enough to archive: left with every
  // entry of its index dead, the queue made each probe of it (is the event still to be
  // normalized?) visit a dead row and rewrite its page, which no real queue costs.
  await db.query('VACUUM (ANALYZE) public.raw_events, omni_ingest.normalize_queue');
}

async function once(serverUrl: string, events: number, batchSize: number, workers: number): Promise<ArchiveBenchRow> {
  const log = (m: string) => process.stderr.write(`archive bench (${events.toLocaleString('en-US')} events): ${m}\n`);
  return withDatabase(serverUrl, async (url, db) => {
    log('generating…');
    await prepare(db, events);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-bench-archive-'));
    try {
      log('baseline: psql \\copy … | gzip -1…');
      const dump = path.join(dir, 'dump.tsv.gz');
      const copy = `\\copy (SELECT * FROM public.raw_events WHERE coalesce(occurred_at, created_at) < now() - interval '90 days') TO STDOUT`;
      const meter = await serverCpuMeter(db);
      let dumpSeconds = 0;
      const dumpRun = await withServerCpu(meter, async () => {
        const t = process.hrtime.bigint();
        // A failed psql fails the benchmark (pipefail) rather than timing a dump of nothing. `times`
        // prints the shell's children's CPU (psql and gzip) on its second line: "0m1.23s 0m0.45s".
        const script = 'set -o pipefail; psql "$URL" -X -q -v ON_ERROR_STOP=1 -c "$COPY" | gzip -1 > "$OUT"; s=$?; times; exit $s';
        const out = await run('bash', ['-c', script], {
          env: { ...process.env, URL: url, COPY: copy, OUT: dump },
        });
        // Taken here: the meter waits a moment after the work for the server's figures to settle.
        dumpSeconds = Number(process.hrtime.bigint() - t) / 1e9;
        return out;
      });
      const dumpCpu = { client: childrenCpu(dumpRun.value.stdout), server: dumpRun.serverCpuSeconds };
      const dumpMb = mb(fs.statSync(dump).size);
      log('archive (write, verify, delete) in a process of its own…');
      const worker = path.join(packageRoot, 'dist', 'bench', 'archive-worker.js');
      // The archive's time is the worker's own, from its start to its end.
      const archiveRun = await withServerCpu(meter, () =>
        run(process.execPath, [worker, url, `file://${dir}/archive`, String(batchSize), String(events), String(workers)], {
          maxBuffer: 1 << 20,
        }),
      );
      const stdout = archiveRun.value.stdout;
      const w = JSON.parse(stdout.trim()) as {
        seconds: number;
        cpuSeconds: number;
        deleted: number;
        batches: number;
        peakRssBytes: number;
        firstHalfPeakRssBytes: number;
        steps: ArchiveBenchRow['steps'];
      };
      if (w.deleted !== events) throw new Error(`archive left events behind: ${stdout}`);
      return {
        events,
        batchSize,
        workers,
        dumpSeconds,
        dumpMb,
        archiveSeconds: w.seconds,
        archiveMb: mb(await du(path.join(dir, 'archive'))),
        deleted: w.deleted,
        batches: w.batches,
        speedRatio: dumpSeconds / w.seconds,
        peakRssMb: mb(w.peakRssBytes),
        firstHalfPeakRssMb: mb(w.firstHalfPeakRssBytes),
        dumpCpu,
        archiveCpu: { client: w.cpuSeconds, server: archiveRun.serverCpuSeconds },
        steps: w.steps,
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

export async function benchArchive(o: {
  serverUrl: string;
  events: number;
  batchSize: number;
  workers: number;
}): Promise<ArchiveBenchRow[]> {
  return [await once(o.serverUrl, o.events, o.batchSize, o.workers), await once(o.serverUrl, o.events * 2, o.batchSize, o.workers)];
}

export function printArchive(rows: ArchiveBenchRow[]): string {
  const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')}/s`;
  return [
    '| events | psql \\copy … \\| gzip -1 | archive: write + verify + delete | archive ÷ dump speed | archive peak RSS (first half / whole run) |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.events.toLocaleString('en-US')} | ${r.dumpSeconds.toFixed(1)} s (${rate(r.events, r.dumpSeconds)}, ${r.dumpMb.toFixed(1)} MB) | ${r.archiveSeconds.toFixed(1)} s (${rate(r.events, r.archiveSeconds)}, ${r.archiveMb.toFixed(1)} MB in ${r.batches} batches, ${r.workers} worker(s)) | ${r.speedRatio.toFixed(2)}× | ${r.firstHalfPeakRssMb.toFixed(0)} MB / ${r.peakRssMb.toFixed(0)} MB |`,
    ),
    '',
    ...rows.map(
      (r) =>
        `${r.events.toLocaleString('en-US')} events, archive steps summed over the batches (workers overlap): plan ${r.steps.plan.toFixed(1)} s, write ${r.steps.write.toFixed(1)} s, verify ${r.steps.verify.toFixed(1)} s, delete ${r.steps.delete.toFixed(1)} s`,
    ),
    '',
    ...rows.map((r) => {
      const cpu = (c: number | undefined) => (c === undefined ? 'not measurable' : `${c.toFixed(1)} s`);
      return `${r.events.toLocaleString('en-US')} events, CPU: the dump ${cpu(r.dumpCpu.client)} in psql and gzip, ${cpu(r.dumpCpu.server)} in the server; the archive ${cpu(r.archiveCpu.client)} in its process, ${cpu(r.archiveCpu.server)} in the server`;
    }),
    '',
    'target: archive ≥ 0.5× the dump, peak RSS flat as the events double',
  ].join('\n');
}
