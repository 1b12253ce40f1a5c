// The `archive` round trip through the real binary, on file:// and on an S3-compatible server
// (s3rver on loopback): archive in several batches of several parts, list, verify, restore —
// twice, adding nothing the second time — and raw_events is identical to before, every row and
// column. Archived events stay findable (findArchive), interactions keep their raw_event_id,
// pending work stays hot, and stats counts what went.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findArchive } from '../../src/archive/find.js';
import { openTarget } from '../../src/archive/target.js';
import { archivedIds, rawEventsChecksum, S3_KEYS, seedEvents, startS3, withDb } from './archive.js';
import { runCli } from './cli.js';
import { migratedTarget, type TestTarget } from './db.js';

const OLD = 240;
const FRESH = 30;

interface RunDoc {
  status: string;
  deleted: number;
  rows: number;
  kept: number;
  left: number;
  batches: { id: string; state: string; manifestUri: string }[];
}

/** The suite, on a file:// folder or an s3rver bucket; `full` adds the checks that need no second target. */
export function roundTripSuite(kind: 'file' | 's3', full: boolean): void {
  describe(`archive round trip on ${kind}://`, { timeout: 300_000 }, () => {
    let target: TestTarget;
    let uri: string;
    let env: Record<string, string> = {};
    let flags: string[] = [];
    let stopS3: (() => Promise<void>) | undefined;
    let dir: string | undefined;
    let before_: { rows: number; md5: string };
    let seeded: { old: number; pending: number };

    before(async () => {
      target = await migratedTarget();
      if (kind === 's3') {
        const s3 = await startS3('crm-archive');
        stopS3 = s3.stop;
        uri = 's3://crm-archive/raw-events';
        env = { ...S3_KEYS, AWS_ENDPOINT_URL: s3.endpoint };
        flags = ['--s3-force-path-style'];
      } else {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-archive-'));
        uri = `file://${dir}`;
      }
      await withDb(target, async (db) => {
        seeded = await seedEvents(db, OLD, FRESH);
        // An interaction of an event about to be archived keeps pointing at it.
        await db.query(
          `INSERT INTO public.interactions (user_id, type, source, source_id, raw_event_id)
           SELECT user_id, 'email', provider, source_id, id FROM public.raw_events WHERE source_id = 'src-2'`,
        );
        // So does a dead letter of it, context and all.
        await db.query(
          `INSERT INTO public.raw_event_errors (raw_event_id, user_id, provider, stage, error, context, status, closed_at)
           SELECT id, user_id, provider, 'normalize', 'once failed', '{"field": "subject"}', 'resolved', now()
           FROM public.raw_events WHERE source_id = 'src-2'`,
        );
        before_ = await rawEventsChecksum(db);
      });
    });
    after(async () => {
      await target?.drop();
      await stopS3?.();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const cli = (...args: string[]) => runCli([...target.args, ...args], { env });

    it('--dry-run counts what would go and writes nothing', { skip: !full }, async () => {
      const r = await cli('--json', 'archive', '--older-than', '90', '--to', uri, ...flags, '--dry-run');
      assert.equal(r.code, 0, r.stderr);
      const doc = r.json<{ rows: number; pendingNormalize: number; ndjsonBytes: number; estimatedBytes: number }>();
      assert.equal(doc.rows, seeded.old);
      assert.equal(doc.pendingNormalize, seeded.pending);
      assert.ok(doc.estimatedBytes > 0 && doc.estimatedBytes < doc.ndjsonBytes);
      assert.equal((await archivedIds(uri, env)).manifests, 0);
    });

    let run: RunDoc;
    it('archives the old events in batches of several parts, verified, then deleted', async () => {
      const r = await cli('--json', 'archive', '--older-than', '90', '--to', uri, ...flags, '--batch-size', '100', '--part-rows', '40');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes(S3_KEYS.AWS_SECRET_ACCESS_KEY) && !r.stderr.includes(S3_KEYS.AWS_SECRET_ACCESS_KEY));
      run = r.json<RunDoc>();
      assert.equal(run.status, 'succeeded');
      assert.equal(run.deleted, seeded.old);
      assert.equal(run.batches.length, Math.ceil(seeded.old / 100));
      const stored = await archivedIds(uri, env);
      assert.ok(stored.ok);
      assert.equal(stored.ids.length, seeded.old);
      assert.equal(new Set(stored.ids).size, seeded.old);
      let archivedRawId = '';
      await withDb(target, async (db) => {
        const left = await rawEventsChecksum(db);
        assert.equal(left.rows, FRESH + seeded.pending);
        const { rows } = await db.query<{ id: string; raw_event_id: string }>(
          `SELECT i.raw_event_id::text AS raw_event_id FROM public.interactions i WHERE i.source_id = 'src-2'`,
        );
        const where = await findArchive(db, rows[0]!.raw_event_id);
        const letter = await db.query<{ context: unknown }>(`SELECT context FROM public.raw_event_errors WHERE raw_event_id = $1`, [
          rows[0]!.raw_event_id,
        ]);
        assert.deepEqual(letter.rows[0]?.context, { field: 'subject' });
        assert.equal(where?.state, 'deleted');
        assert.match(where?.manifestUri ?? '', new RegExp(`^${kind}://.*/manifest\\.json$`));
        archivedRawId = rows[0]!.raw_event_id;
      });
      // trace follows an archived event to its manifest (and still shows its interaction).
      const trace = await cli('--json', 'trace', archivedRawId);
      assert.equal(trace.code, 0, trace.stderr);
      assert.match(trace.json<{ archived: { uri: string } | null }>().archived?.uri ?? '', new RegExp(`^${kind}://.*/manifest\\.json$`));
    });

    it('list shows the batches; verify passes (every batch, and every manifest under the target)', async () => {
      const list = await cli('--json', 'archive', 'list');
      assert.equal(list.code, 0, list.stderr);
      const { batches } = list.json<{ batches: { state: string; rows: number; target: string }[] }>();
      assert.equal(batches.length, run.batches.length);
      assert.ok(batches.every((b) => b.state === 'deleted' && b.target === uri));
      const verify = await cli('--json', 'archive', 'verify', ...flags);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.equal(verify.json<{ checked: number; rows: number }>().rows, seeded.old);
      const fromTarget = await cli('--json', 'archive', 'verify', '--from', uri, ...flags);
      assert.equal(fromTarget.code, 0, fromTarget.stdout + fromTarget.stderr);
      assert.equal(fromTarget.json<{ checked: number }>().checked, run.batches.length);
    });

    it('verify through an endpoint that cannot be reached fails the run (exit 1), not the archive (exit 3)', {
      skip: kind !== 's3',
    }, async () => {
      const r = await runCli([...target.args, '--json', 'archive', 'verify'], { env: { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:1' } });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const error = r.json<{ error: { code: string; hint: string } }>().error;
      assert.equal(error.code, 'archive_target');
      assert.match(error.hint, /--s3-endpoint/);
    });

    it('the target removes an object, and a key that is not there is no error', async () => {
      Object.assign(process.env, env);
      const t = await openTarget(uri, { endpoint: env.AWS_ENDPOINT_URL, region: 'us-east-1', forcePathStyle: true });
      const key = 'scratch/part-00001-0000000a.ndjson.gz';
      await t.put(key, Buffer.from('x'));
      assert.deepEqual(await t.list('scratch'), [key]);
      await t.remove(key);
      await t.remove(key);
      assert.deepEqual(await t.list('scratch'), []);
    });

    it('stats shows the archived totals and the oldest hot event', { skip: !full }, async () => {
      const stats = await cli('--json', 'stats');
      const a = stats.json<{ archive: { archived: { rows: number }; hotOlderThan180Days: number } }>().archive;
      assert.equal(a.archived.rows, seeded.old);
      assert.ok(a.hotOlderThan180Days <= seeded.pending);
    });

    it('restore puts every event back, idempotently: raw_events is identical to before', async () => {
      // One batch by its manifest, then the whole target (the first one again adds nothing).
      const one = await cli('--json', 'archive', 'restore', '--from', run.batches[0]!.manifestUri, ...flags);
      assert.equal(one.code, 0, one.stderr);
      assert.equal(one.json<{ restored: number }>().restored, 100);
      const all = await cli('--json', 'archive', 'restore', '--from', uri, ...flags);
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(
        { restored: all.json<{ restored: number }>().restored, present: all.json<{ present: number }>().present },
        { restored: seeded.old - 100, present: 100 },
      );
      const twice = await cli('--json', 'archive', 'restore', '--from', run.batches[0]!.manifestUri, ...flags);
      assert.equal(twice.code, 0, twice.stderr);
      assert.equal(twice.json<{ restored: number }>().restored, 0);
      await withDb(target, async (db) => {
        assert.deepEqual(await rawEventsChecksum(db), before_);
        // Not normalized again: only the pending ones seeded so are queued.
        const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM omni_ingest.normalize_queue`);
        assert.equal(rows[0]!.n, seeded.pending);
      });
    });
  });
}
