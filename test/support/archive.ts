// What the archive tests share: raw events old and new in a database, a checksum of every row
// and column of raw_events, the ids a target's parts hold, the CLI stopped at a fault point,
// and an S3-compatible server (s3rver) on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkArchive } from '../../src/archive/check.js';
import { type ArchiveRunOptions, type ArchiveRunResult, runArchive } from '../../src/archive/run.js';
import { openTarget } from '../../src/archive/target.js';
import { systemClock } from '../../src/clock.js';
import type { Db, Queryable } from '../../src/db/connect.js';
import { createMemoryLogger } from '../../src/logger.js';
import { binary, killAtPause, NODE_FLAGS } from './cli.js';
import { migratedTarget, type TestTarget } from './db.js';
import { USER_A, USER_B } from './events.js';

export const S3_KEYS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-never-printed' };

/**
 * `old` events between 100 and 300 days old (some with only created_at), `fresh` ones of last
 * week, awkward values included (quotes, newlines, non-ASCII, nulls). Old events of user B's
 * webform stay queued for normalize: pending work is never archived.
 */
export async function seedEvents(db: Queryable, old: number, fresh: number): Promise<{ old: number; pending: number }> {
  await db.query(
    `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, contact_id, occurred_at, source_meta, batch_id, created_at)
SELECT CASE WHEN g % 2 = 0 THEN $1::uuid ELSE $2::uuid END,
       CASE WHEN g % 3 = 0 THEN 'gmail' ELSE 'webform' END,
       'src-' || g,
       jsonb_build_object('n', g, 'text', E'h\\u00e9llo "quoted"\\nline ' || g, 'list', jsonb_build_array(g, 1.5, null, true)),
       CASE WHEN g % 5 = 0 THEN gen_random_uuid() END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE now() - make_interval(days => 100 + g % 200, secs => g * 1.000001) END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('k', g) END,
       gen_random_uuid(),
       now() - make_interval(days => 100 + g % 200)
FROM generate_series(1, $3::int) g`,
    [USER_A, USER_B, old],
  );
  await db.query(
    `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, created_at)
SELECT $1, 'webform', 'fresh-' || g, jsonb_build_object('n', g), now() - interval '7 days', now() - interval '7 days'
FROM generate_series(1, $2::int) g`,
    [USER_A, fresh],
  );
  // As if normalize had run, except for a few old events of user B's webform.
  await db.query(`
DELETE FROM omni_ingest.normalize_queue q
USING public.raw_events r
WHERE r.id = q.raw_event_id AND NOT (r.user_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' AND r.provider = 'webform' AND r.source_id LIKE 'src-%1')`);
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM omni_ingest.normalize_queue`);
  const pending = rows[0]!.n;
  return { old: old - pending, pending };
}

/** Every row and column of raw_events, in one digest (timestamps as UTC). */
export async function rawEventsChecksum(db: Queryable): Promise<{ rows: number; md5: string }> {
  await db.query(`SET TimeZone = 'UTC'`);
  const { rows } = await db.query<{ rows: number; md5: string }>(
    `SELECT count(*)::int AS rows, md5(coalesce(string_agg(to_jsonb(r)::text, E'\\n' ORDER BY r.id), '')) AS md5 FROM public.raw_events r`,
  );
  return rows[0]!;
}

/** `archive --older-than 90 --to <uri>` run in this process, one worker, with `overrides`. */
export async function archiveInProcess(
  db: Db,
  uri: string,
  overrides: Partial<Omit<ArchiveRunOptions, 'db' | 'target'>> = {},
): Promise<ArchiveRunResult> {
  return runArchive({
    db,
    target: await openTarget(uri, { endpoint: undefined, region: 'us-east-1', forcePathStyle: false }),
    filter: { cutoff: new Date(Date.now() - 90 * 86_400_000), userId: undefined, provider: undefined },
    olderThanDays: 90,
    batchSize: 1_000,
    partRows: 1_000,
    workers: 1,
    timeBudgetMs: undefined,
    clock: systemClock,
    signal: undefined,
    logger: createMemoryLogger(),
    bar: undefined,
    reconnectMs: 1_000,
    ...overrides,
  });
}

export async function withDb<T>(target: TestTarget, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const db = await target.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** The ids in the parts of every manifest under a file:// or s3:// target, and whether every manifest checks out. */
export async function archivedIds(
  uri: string,
  env: Record<string, string> = {},
): Promise<{ ids: string[]; ok: boolean; manifests: number; parts: number }> {
  Object.assign(process.env, env);
  const target = await openTarget(uri, { endpoint: env.AWS_ENDPOINT_URL, region: 'us-east-1', forcePathStyle: true });
  const keys = (await target.list('')).filter((k) => k.endsWith('/manifest.json'));
  const ids: string[] = [];
  let ok = true;
  let parts = 0;
  for (const key of keys) {
    const check = await checkArchive(target, key.slice(0, -'/manifest.json'.length), { collect: true });
    ok &&= check.ok;
    ids.push(...check.ids);
    parts += check.parts.length;
  }
  return { ids, ok, manifests: keys.length, parts };
}

/** Runs the CLI until it announces `point` (OMNI_INGEST_ARCHIVE_PAUSE_AT), then kill -9. */
export function killAt(args: string[], point: string, env: Record<string, string> = {}): Promise<{ paused: boolean; stderr: string }> {
  return killAtPause(args, { ...env, OMNI_INGEST_ARCHIVE_PAUSE_AT: point });
}

/**
 * Starts the CLI held at `point` (OMNI_INGEST_ARCHIVE_PAUSE_AT) and resolves once it is there:
 * the test can then stop it (SIGSTOP), let it go on (`resume`: SIGCONT and SIGUSR2) and wait for
 * its exit code (`exited`: the code, or a sentence if it is still running 60 s later).
 */
export async function heldAt(
  args: string[],
  point: string,
): Promise<{ child: ChildProcess; stderr: () => string; resume(): void; exited(): Promise<number | string> }> {
  const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', OMNI_INGEST_ARCHIVE_PAUSE_AT: point },
  });
  let stderr = '';
  // Killed by a signal, the signal's name: never mistaken for an exit code.
  const closed = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? `killed by ${signal}`)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes(`paused at ${point}`)) resolve();
    });
    child.on('close', () => reject(new Error(`the run ended before it reached "${point}":\n${stderr}`)));
  });
  return {
    child,
    stderr: () => stderr,
    resume() {
      child.kill('SIGCONT');
      child.kill('SIGUSR2');
    },
    exited: () => Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref())]),
  };
}

/** Old events (and a few fresh ones) in a migrated database and a folder for a file:// target; `done` drops both. */
export async function archiveFixture(
  name: string,
  old: number,
  fresh: number,
): Promise<{ target: TestTarget; dir: string; uri: string; oldIds: string[]; done(): Promise<void> }> {
  const target = await migratedTarget();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `omni-ingest-${name}-`));
  const oldIds = await withDb(target, async (db) => {
    await seedEvents(db, old, fresh);
    const { rows } = await db.query<{ id: string }>(
      `SELECT r.id::text AS id FROM public.raw_events r
       WHERE r.source_id LIKE 'src-%' AND NOT EXISTS (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id)`,
    );
    return rows.map((r) => r.id);
  });
  return {
    target,
    dir,
    uri: `file://${dir}`,
    oldIds,
    async done() {
      await target.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An s3rver on loopback with one bucket, for the length of a suite; `requests` lists every request it served ("METHOD /path?query"). */
export async function startS3(bucket: string): Promise<{ endpoint: string; requests: string[]; stop(): Promise<void> }> {
  const { default: S3rver } = await import('s3rver');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const requests: string[] = [];
  server.httpServer?.on('request', (req: { method?: string; url?: string }) => requests.push(`${req.method} ${req.url}`));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Flips one byte in the middle of a file, or cuts it to half its length. */
export function damage(file: string, how: 'flip' | 'truncate'): void {
  const data = fs.readFileSync(file);
  if (how === 'truncate') fs.writeFileSync(file, data.subarray(0, Math.floor(data.length / 2)));
  else {
    data[Math.floor(data.length / 2)] = data[Math.floor(data.length / 2)]! ^ 0xff;
    fs.writeFileSync(file, data);
  }
}

/** Changes one hot row the unfinished batch claims (after it was written): returns its id. */
export async function changeClaimedRow(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ id: string }>(`
UPDATE public.raw_events r
SET payload = r.payload || '{"changed": true}'
WHERE r.id = (
SELECT a.raw_event_id
FROM omni_ingest.archived_events a
JOIN omni_ingest.archive_batches b ON b.id = a.batch_id
JOIN public.raw_events h ON h.id = a.raw_event_id
WHERE b.state IN ('written', 'verified')
ORDER BY a.raw_event_id
LIMIT 1)
RETURNING r.id::text AS id`);
  if (!rows[0]) throw new Error('no hot row claimed by an unfinished batch');
  return rows[0].id;
}

/** The archive batches as the database has them, oldest first. */
export async function batchRows(
  db: Queryable,
): Promise<{ id: string; state: string; manifest_uri: string | null; kept_rows: number; deleted_rows: number; error: string | null }[]> {
  const { rows } = await db.query<{
    id: string;
    state: string;
    manifest_uri: string | null;
    kept_rows: number;
    deleted_rows: number;
    error: string | null;
  }>(
    `SELECT id::text AS id, state, manifest_uri, kept_rows::int AS kept_rows, deleted_rows::int AS deleted_rows, error
     FROM omni_ingest.archive_batches ORDER BY planned_at, id`,
  );
  return rows;
}
