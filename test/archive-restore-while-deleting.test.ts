// A restore that runs while its batch is deleting (real server: two processes at once) puts the
// events back and drops their claims. The delete then has nothing left to delete, and the batch
// ends restored, not deleted: every event is hot, and the next run archives them anew.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { archiveFixture, heldAt, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import { onServer } from './support/db.js';

describe('a restore while its batch is deleting', {
  skip: !onServer && 'needs the real server (TEST_DATABASE_URL)',
  timeout: 300_000,
}, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>> | undefined;
  before(async () => {
    fixture = await archiveFixture('archive-restore-deleting', 60, 5);
  });
  after(async () => {
    await fixture?.done();
  });

  it('the batch ends restored with every event hot; the next run archives them again', async () => {
    const { target, uri, oldIds } = fixture!;
    const args = [...target.args, 'archive', '--older-than', '90', '--to', uri, '--batch-size', '100'];
    // Held after its first delete chunk, which is the whole batch.
    const a = await heldAt(args, 'deleting');
    try {
      const restore = await runCli([...target.args, '--json', 'archive', 'restore', '--from', uri]);
      assert.equal(restore.code, 0, restore.stdout + restore.stderr);
      a.resume();
      assert.equal(await a.exited(), 0, a.stderr());
    } finally {
      a.child.kill('SIGKILL');
    }
    const { states, hot } = await withDb(target, async (db) => {
      const b = await db.query<{ state: string }>(`SELECT state FROM omni_ingest.archive_batches`);
      const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events WHERE id = ANY($1::uuid[])`, [oldIds]);
      return { states: b.rows.map((x) => x.state), hot: r.rows[0]!.n };
    });
    assert.deepEqual(states, ['restored']);
    assert.equal(hot, oldIds.length);

    const again = await runCli([...args, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.json<{ deleted: number }>().deleted, oldIds.length);
  });
});
