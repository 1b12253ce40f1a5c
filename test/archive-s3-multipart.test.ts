// A part larger than one upload part (8 MiB) goes to S3 as a real multipart upload — create,
// several UploadPart requests, complete — as s3rver's own request log shows, and comes back
// whole: restore checks it and gives raw_events back as it was. A few hundred events of random,
// incompressible payload make the part large; no more rows than that.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { rawEventsChecksum, S3_KEYS, startS3, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import { migratedTarget, onServer, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';

const EVENTS = 200;
/** Random bytes per event: 200 × 48 KiB ≈ 9.4 MiB that gzip cannot shrink, more than one 8 MiB upload part. */
const BLOB = 48 * 1024;

// The upload does not depend on the database: the server run shows it (and the embedded one
// would spend its time moving the payload through WASM).
describe('archive to S3 with a multipart upload', {
  skip: onServer ? false : 'the upload is the same on either database; the server run shows it',
  timeout: 300_000,
}, () => {
  let target: TestTarget;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let env: Record<string, string>;
  let before_: { rows: number; md5: string };
  const uri = 's3://crm-archive/raw-events';

  before(async () => {
    target = await migratedTarget();
    s3 = await startS3('crm-archive');
    env = { ...S3_KEYS, AWS_ENDPOINT_URL: s3.endpoint };
    const blobs = Array.from({ length: EVENTS }, () => randomBytes(BLOB).toString('base64'));
    before_ = await withDb(target, async (db) => {
      await db.query(
        `INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at, created_at)
         SELECT $1, 'webform', 'big-' || n, jsonb_build_object('blob', b), now() - interval '200 days', now() - interval '200 days'
         FROM unnest($2::text[]) WITH ORDINALITY AS x(b, n)`,
        [USER_A, blobs],
      );
      await db.query(`DELETE FROM omni_ingest.normalize_queue`);
      return rawEventsChecksum(db);
    });
  });
  after(async () => {
    await target?.drop();
    await s3?.stop();
  });

  const cli = (...args: string[]) => runCli([...target.args, '--json', ...args, '--s3-force-path-style'], { env });

  it('uploads the part in several parts, verifies it, and restores every row', async () => {
    const r = await cli('archive', '--older-than', '90', '--to', uri);
    assert.equal(r.code, 0, r.stderr);
    const doc = r.json<{ deleted: number; bytes: number; batches: unknown[] }>();
    assert.deepEqual([doc.deleted, doc.batches.length], [EVENTS, 1]);
    assert.ok(doc.bytes > 8 * 2 ** 20, `the part is ${doc.bytes} bytes`);

    const part = (line: string) => /\/part-00001-[0-9a-f]{8}\.ndjson\.gz/.test(line);
    const created = s3.requests.filter((l) => part(l) && l.startsWith('POST ') && /[?&]uploads(=|&|$)/.test(l));
    const uploaded = s3.requests.filter((l) => part(l) && l.startsWith('PUT ') && /[?&]partNumber=\d+/.test(l));
    const completed = s3.requests.filter((l) => part(l) && l.startsWith('POST ') && /[?&]uploadId=/.test(l));
    assert.equal(created.length, 1, s3.requests.join('\n'));
    assert.ok(uploaded.length >= 2, `${uploaded.length} UploadPart requests:\n${s3.requests.join('\n')}`);
    assert.equal(completed.length, 1);
    // The manifest is one plain PUT, after the part.
    const manifest = s3.requests.findIndex((l) => l.startsWith('PUT ') && l.includes('/manifest.json'));
    assert.ok(manifest > s3.requests.indexOf(completed[0]!));

    // Restore reads the part back and checks it against the manifest before it inserts a row.
    const restore = await cli('archive', 'restore', '--from', uri);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(restore.json<{ restored: number }>().restored, EVENTS);
    assert.deepEqual(await withDb(target, rawEventsChecksum), before_);
  });
});
