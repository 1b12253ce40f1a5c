// An event changed after its batch was written to the target is kept hot by that batch's delete
// and archived again, as it is now, by a later batch: the target then holds two versions of it.
// A restore puts back the newest: the whole target is restored newest manifest first, and the
// older batch's manifest on its own leaves the event archived (a newer version is elsewhere).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { archivedIds, archiveFixture, batchRows, changeClaimedRow, killAt, rawEventsChecksum, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';

interface Restored {
  restored: number;
  present: number;
  otherVersion: number;
  newerElsewhere: number;
  status: string;
  manifestUri: string;
}

describe('restoring a target that holds two versions of an event', { timeout: 300_000 }, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>>;
  before(async () => {
    fixture = await archiveFixture('archive-versions', 150, 5);
  });
  after(async () => {
    await fixture?.done();
  });

  it('the newest version is put back, and the output says what was kept', async () => {
    const { target, uri } = fixture;
    const args = [...target.args, 'archive', '--older-than', '90', '--to', uri, '--batch-size', '100'];
    assert.ok((await killAt(args, 'verified')).paused);
    const { changed, expected } = await withDb(target, async (db) => ({
      changed: await changeClaimedRow(db),
      expected: await rawEventsChecksum(db),
    }));
    const run = await runCli([...args, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json<{ kept: number }>().kept, 1);
    assert.equal((await archivedIds(uri)).ids.filter((id) => id === changed).length, 2, 'both versions are on the target');

    const older = (await withDb(target, batchRows)).find((b) => b.kept_rows > 0)!;
    const one = await runCli([...target.args, '--json', 'archive', 'restore', '--from', older.manifest_uri!]);
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.equal(one.json<Restored>().newerElsewhere, 1);
    assert.match(
      (await runCli([...target.args, 'archive', 'restore', '--from', older.manifest_uri!, '--dry-run'])).stdout,
      /newer version/,
    );
    const hot = await withDb(
      target,
      async (db) => (await db.query(`SELECT 1 FROM public.raw_events WHERE id = $1`, [changed])).rows.length,
    );
    assert.equal(hot, 0, 'the older version was not put back');

    const all = await runCli([...target.args, '--json', 'archive', 'restore', '--from', uri]);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    const doc = all.json<{ manifests: Restored[]; otherVersion: number }>();
    assert.ok(doc.manifests.every((m) => m.status === 'restored'));
    assert.equal(doc.manifests.find((m) => m.manifestUri === older.manifest_uri)?.otherVersion, 1);
    assert.deepEqual(await withDb(target, rawEventsChecksum), expected);
  });
});
