// `archive restore` and `archive verify` trust the database over the target and say plainly what
// they could not do: a manifest edited to hide a removed part is refused when the database knows
// its batch; a batch is marked restored only once every event it archived is back (an event
// re-imported under the same source id meanwhile keeps its batch deleted, exit 1); a damaged
// manifest does not stop the rest of a target's restore (each reported, exit 3 at the end); a
// --from that holds no archive, or names no manifest, is a usage error (exit 2); a manifest
// listing a part twice fails verify whatever the database knows; --dry-run writes nothing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { archiveFixture, batchRows, rawEventsChecksum, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';

interface Manifest {
  batch_id: string;
  rows: number;
  bytes: number;
  parts: { name: string; rows: number; bytes: number }[];
}

describe('archive restore and verify check before they trust', { timeout: 300_000 }, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>>;
  let elsewhere: string;
  let manifests: string[];
  const cli = (...args: string[]) => runCli([...fixture.target.args, ...args]);
  const fileOf = (uri: string) => new URL(uri).pathname;

  before(async () => {
    fixture = await archiveFixture('archive-restore-checks', 150, 5);
    elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-archive-copy-'));
    const r = await cli('archive', '--older-than', '90', '--to', fixture.uri, '--batch-size', '60', '--part-rows', '20');
    assert.equal(r.code, 0, r.stderr);
    manifests = (await withDb(fixture.target, batchRows)).map((b) => b.manifest_uri!);
  });
  after(async () => {
    await fixture?.done();
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it('--dry-run reads and counts, and writes nothing', async () => {
    const before_ = await withDb(fixture.target, rawEventsChecksum);
    const r = await cli('--json', 'archive', 'restore', '--from', manifests[0]!, '--dry-run');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json<{ restored: number; dryRun: boolean }>().restored, 60);
    assert.deepEqual(await withDb(fixture.target, rawEventsChecksum), before_);
  });

  it('a --from with no archive is a usage error naming it; a missing manifest is not found', async () => {
    const typo = `${fixture.uri}-typo`;
    for (const args of [
      ['archive', 'restore', '--from', typo],
      ['archive', 'verify', '--from', typo],
    ]) {
      const r = await cli('--json', ...args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.json<{ error: { message: string } }>().error.message, /-typo holds no archive/);
    }
    const gone = manifests[0]!.replace(/[0-9a-f-]{36}\/manifest\.json$/, `${randomUUID()}/manifest.json`);
    const r = await cli('--json', 'archive', 'restore', '--from', gone);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.json<{ error: { message: string } }>().error.message, /not found/);
  });

  it('a manifest listing one part twice fails verify, known batch or not', async () => {
    const copy = path.join(elsewhere, 'raw_events', 'copy');
    fs.cpSync(path.dirname(fileOf(manifests[0]!)), copy, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8')) as Manifest;
    m.batch_id = randomUUID();
    m.parts.push(m.parts[0]!);
    m.rows += m.parts[0]!.rows;
    m.bytes += m.parts[0]!.bytes;
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m));
    const r = await cli('--json', 'archive', 'verify', '--from', `file://${copy}/manifest.json`);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /more than once/);
  });

  it('a manifest edited to hide a removed part is refused: nothing restored, the batch stays deleted', async () => {
    const file = fileOf(manifests[0]!);
    fs.copyFileSync(file, `${file}.orig`);
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    const removed = m.parts.pop()!;
    m.rows -= removed.rows;
    m.bytes -= removed.bytes;
    fs.writeFileSync(file, JSON.stringify(m));
    const before_ = await withDb(fixture.target, rawEventsChecksum);
    const r = await cli('--json', 'archive', 'restore', '--from', manifests[0]!);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.json<{ error: { message: string } }>().error.message, /the database recorded/);
    assert.deepEqual(await withDb(fixture.target, rawEventsChecksum), before_);
    assert.equal((await withDb(fixture.target, batchRows))[0]?.state, 'deleted');
  });

  it('a damaged manifest does not stop the rest of the target: each reported, exit 3', async () => {
    const r = await cli('--json', 'archive', 'restore', '--from', fixture.uri);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const doc = r.json<{ failed: number; restored: number; manifests: { manifestUri: string; status: string }[] }>();
    assert.equal(doc.failed, 1);
    assert.equal(doc.manifests.length, 3);
    assert.equal(doc.manifests.find((x) => x.manifestUri === manifests[0])?.status, 'failed');
    assert.equal(doc.restored, 150 - 60 - (150 - fixture.oldIds.length));
  });

  it('an event re-imported under its source id meanwhile: not restored, the batch stays deleted, exit 1', async () => {
    const file = fileOf(manifests[0]!);
    fs.renameSync(`${file}.orig`, file);
    const first = fs.readdirSync(path.dirname(file)).find((f) => f.startsWith('part-00001-'));
    const part = path.join(path.dirname(file), first!);
    const line = JSON.parse(zlib.gunzipSync(fs.readFileSync(part)).toString('utf8').split('\n')[0]!) as Record<string, string>;
    await withDb(fixture.target, (db) =>
      db.query(`INSERT INTO public.raw_events (user_id, provider, source_id, payload) VALUES ($1, $2, $3, '{"again": true}')`, [
        line.user_id,
        line.provider,
        line.source_id,
      ]),
    );
    const r = await cli('--json', 'archive', 'restore', '--from', manifests[0]!);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const doc = r.json<{ status: string; restored: number; conflicts: number; problem: string }>();
    assert.deepEqual([doc.status, doc.restored, doc.conflicts], ['incomplete', 59, 1]);
    assert.match(doc.problem, new RegExp(`1 archived event\\(s\\) not restored \\(e\\.g\\. ${line.id}\\).*stays deleted`));
    assert.equal((await withDb(fixture.target, batchRows))[0]?.state, 'deleted');
  });
});
