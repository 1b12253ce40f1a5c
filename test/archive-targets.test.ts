// One target, whatever its spelling: file:///a/./b, file:///a//b/ and file://localhost/a/b are
// file:///a/b, and a batch recorded under another spelling is continued by a run to the canonical
// one. Rows held by unfinished batches are counted: a dry run says what the run would finish
// first and what other targets hold, a stopped run's `left` includes its target's unfinished
// batches, a run that leaves rows to another target's unfinished batches does not call itself
// succeeded, and a run that fails on a batch records why in the batch (`archive list`).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canonicalUri, parseTargetUri } from '../src/archive/target.js';
import { UsageError } from '../src/errors.js';
import { archiveFixture, archiveInProcess, batchRows, killAt, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';

describe('archive target spellings', () => {
  it('are made canonical', () => {
    for (const uri of ['file:///a/./b', 'file:///a//b/', 'file://localhost/a/b', 'file:///a/c/../b', 'file://LOCALHOST/a/b'])
      assert.equal(canonicalUri(parseTargetUri(uri)), 'file:///a/b', uri);
    assert.equal(canonicalUri(parseTargetUri('file://rel/dir', '/work')), 'file:///work/rel/dir');
    assert.throws(
      () => parseTargetUri('file:///tmp/100%'),
      (e: unknown) => e instanceof UsageError && /100%/.test(e.message),
    );
    // A % in a folder's name survives the round trip through the recorded URI.
    const odd = canonicalUri(parseTargetUri('file:///d/a%2541'));
    assert.equal(odd, 'file:///d/a%2541');
    assert.equal(canonicalUri(parseTargetUri(odd)), odd);
    assert.deepEqual(parseTargetUri(odd), { kind: 'file', dir: '/d/a%41' });
    // Credentials are refused in any target, masked in the message.
    assert.throws(
      () => parseTargetUri('file://user:secret@host/dir'),
      (e: unknown) => e instanceof UsageError && /credentials/.test(e.message) && !e.message.includes('secret'),
    );
  });
});

describe('unfinished batches and their targets', { timeout: 300_000 }, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>>;
  let other: string;
  before(async () => {
    fixture = await archiveFixture('archive-targets', 150, 5);
    other = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-archive-other-'));
  });
  after(async () => {
    await fixture?.done();
    fs.rmSync(other, { recursive: true, force: true });
  });

  const args = (uri: string, ...more: string[]) => [
    ...fixture.target.args,
    'archive',
    '--older-than',
    '90',
    '--to',
    uri,
    '--batch-size',
    '100',
    ...more,
  ];

  it('a dry run and a stopped run count the rows of unfinished batches; a dry run checks the target', async () => {
    assert.ok((await killAt(args(fixture.uri), 'written')).paused);
    // As an older version recorded it: another spelling of the same folder.
    await withDb(fixture.target, (db) => db.query(`UPDATE omni_ingest.archive_batches SET target = $1`, [`${fixture.uri}/./`]));
    const dry = await runCli([...args(fixture.uri, '--dry-run'), '--json']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    const doc = dry.json<{ rows: number; unfinished: { batches: number; rows: number } }>();
    assert.deepEqual(doc.unfinished, { batches: 1, rows: 100 });
    assert.equal(doc.rows, fixture.oldIds.length - 100);
    const bad = await runCli([...args('file:///dev/null/archive', '--dry-run'), '--json']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);

    const db = await fixture.target.open();
    const stopped = await archiveInProcess(db, fixture.uri, { timeBudgetMs: 0, batchSize: 100 }).finally(() => db.close());
    assert.equal(stopped.stopReason, 'time-budget');
    assert.equal(stopped.left, fixture.oldIds.length);
  });

  it('a run to another target says the rows another target holds were not archived', async () => {
    const r = await runCli([...args(`file://${other}`), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = r.json<{ status: string; heldByOtherTargets: number; deleted: number }>();
    assert.equal(doc.status, 'incomplete');
    assert.equal(doc.heldByOtherTargets, 100);
    assert.equal(doc.deleted, fixture.oldIds.length - 100);
  });

  it('a run that fails on a batch records why; a run to another spelling continues it', async () => {
    const moved = `${fixture.dir}-moved`;
    fs.renameSync(fixture.dir, moved);
    fs.writeFileSync(fixture.dir, 'not a folder');
    const failed = await runCli([...args(fixture.uri), '--json']);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    const list = await runCli([...fixture.target.args, '--json', 'archive', 'list', '--state', 'written']);
    assert.match(list.json<{ batches: { error: string | null }[] }>().batches[0]?.error ?? '', /cannot read/);
    fs.rmSync(fixture.dir);
    fs.renameSync(moved, fixture.dir);

    const r = await runCli([...args(`file://localhost${fixture.dir}//`), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json<{ status: string }>().status, 'succeeded');
    const batches = await withDb(fixture.target, batchRows);
    assert.ok(
      batches.every((b) => b.state === 'deleted' && b.error === null),
      JSON.stringify(batches),
    );
  });
});
