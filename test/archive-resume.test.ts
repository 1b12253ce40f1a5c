// A batch's delete interrupted after it kept a changed row hot (kill -9 in the middle of the
// deletes) is continued by the next run: the kept row is rightly in the parts though no longer
// claimed, and the target is not blocked. Meanwhile `trace` finds the deleted events in the
// batch's manifest. A restore of an unfinished batch (interrupted delete, or killed after it was
// written) puts its events back, and the next run marks the batch restored instead of writing it
// again as an empty one over its manifest.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { archivedIds, archiveFixture, batchRows, changeClaimedRow, killAt, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';

type Fixture = Awaited<ReturnType<typeof archiveFixture>>;

const args = (f: Fixture) => [...f.target.args, 'archive', '--older-than', '90', '--to', f.uri, '--batch-size', '100'];

/** Killed after verify, one claimed row changed, then killed again after the first delete chunk. */
async function interruptedDelete(f: Fixture): Promise<string> {
  assert.ok((await killAt(args(f), 'verified')).paused);
  const changed = await withDb(f.target, changeClaimedRow);
  assert.ok((await killAt(args(f), 'deleting')).paused);
  const [batch] = await withDb(f.target, batchRows);
  assert.equal(batch?.state, 'verified');
  assert.ok(batch.deleted_rows > 0 && batch.kept_rows === 1, JSON.stringify(batch));
  return changed;
}

/** Every old event archived: none hot, each in a manifest that checks out, and `archive verify` passes. */
async function assertAllArchived(f: Fixture): Promise<void> {
  const hot = await withDb(f.target, async (db) => (await db.query(`SELECT id::text AS id FROM public.raw_events`)).rows);
  const hotIds = new Set(hot.map((r) => (r as { id: string }).id));
  assert.deepEqual(
    f.oldIds.filter((id) => hotIds.has(id)),
    [],
  );
  const stored = await archivedIds(f.uri);
  assert.ok(stored.ok);
  assert.deepEqual(
    f.oldIds.filter((id) => !stored.ids.includes(id)),
    [],
  );
  const verify = await runCli([...f.target.args, 'archive', 'verify']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
}

describe('an interrupted delete', { timeout: 300_000 }, () => {
  let fixture: Fixture;
  before(async () => {
    fixture = await archiveFixture('archive-resume', 150, 5);
  });
  after(async () => {
    await fixture?.done();
  });

  it('is continued by the next run, and trace finds its deleted events meanwhile', async () => {
    await interruptedDelete(fixture);
    const deleted = await withDb(fixture.target, async (db) => {
      const { rows } = await db.query<{ id: string }>(
        `SELECT a.raw_event_id::text AS id FROM omni_ingest.archived_events a
         WHERE NOT EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = a.raw_event_id) LIMIT 1`,
      );
      return rows[0]!.id;
    });
    const trace = await runCli([...fixture.target.args, '--json', 'trace', deleted]);
    assert.equal(trace.code, 0, trace.stdout + trace.stderr);
    assert.match(trace.json<{ archived: { uri: string } | null }>().archived?.uri ?? '', /manifest\.json$/);

    const r = await runCli([...args(fixture), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /continued from the last step/);
    assert.ok((await withDb(fixture.target, batchRows)).every((b) => b.state === 'deleted'));
    await assertAllArchived(fixture);
  });
});

describe('a restore of an unfinished batch', { timeout: 300_000 }, () => {
  let fixture: Fixture;
  before(async () => {
    fixture = await archiveFixture('archive-resume-restore', 150, 5);
  });
  after(async () => {
    await fixture?.done();
  });

  it('after an interrupted delete: the next run marks it restored and archives everything anew', async () => {
    await interruptedDelete(fixture);
    const restore = await runCli([...fixture.target.args, '--json', 'archive', 'restore', '--from', fixture.uri]);
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    const r = await runCli([...args(fixture), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [first, ...rest] = await withDb(fixture.target, batchRows);
    assert.equal(first?.state, 'restored');
    assert.ok(rest.every((b) => b.state === 'deleted'));
    await assertAllArchived(fixture);
  });

  it('killed once written: the next run marks it restored, its manifest kept as it was', async () => {
    const back = await runCli([...fixture.target.args, 'archive', 'restore', '--from', fixture.uri]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.ok((await killAt(args(fixture), 'written')).paused);
    const killed = (await withDb(fixture.target, batchRows)).find((b) => b.state === 'written')!;
    const restore = await runCli([...fixture.target.args, '--json', 'archive', 'restore', '--from', fixture.uri]);
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    const r = await runCli([...args(fixture), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await withDb(fixture.target, batchRows)).find((b) => b.id === killed.id)?.state, 'restored');
    const manifest = JSON.parse(fs.readFileSync(new URL(killed.manifest_uri!), 'utf8')) as { rows: number };
    assert.equal(manifest.rows, 100);
    await assertAllArchived(fixture);
  });
});
