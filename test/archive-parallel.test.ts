// Two `archive` processes over the same range at once (real server: the embedded database takes
// one process at a time): they share the batches through the claims and leases, and together
// archive every old event exactly once — none twice, none lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { archiveFixture, archivedIds, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import { onServer, type TestTarget } from './support/db.js';

describe('two archive processes at once', { skip: !onServer && 'needs the real server (TEST_DATABASE_URL)', timeout: 300_000 }, () => {
  let target: TestTarget;
  let dir: string;
  let oldIds: string[];

  let fixture: Awaited<ReturnType<typeof archiveFixture>> | undefined;

  before(async () => {
    fixture = await archiveFixture('archive-parallel', 3000, 50);
    ({ target, dir, oldIds } = fixture);
  });
  after(async () => {
    await fixture?.done();
  });

  it('no event archived twice, none lost', async () => {
    const args = [...target.args, '--json', 'archive', '--older-than', '90', '--to', `file://${dir}`, '--batch-size', '150'];
    const [a, b] = await Promise.all([runCli(args), runCli(args)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const da = a.json<{ deleted: number; batches: unknown[] }>();
    const db_ = b.json<{ deleted: number; batches: unknown[] }>();
    assert.equal(da.deleted + db_.deleted, oldIds.length);
    assert.ok(da.batches.length > 0 && db_.batches.length > 0, `both took batches (${da.batches.length}, ${db_.batches.length})`);
    const stored = await archivedIds(`file://${dir}`);
    assert.ok(stored.ok);
    assert.equal(stored.ids.length, oldIds.length, 'each event in exactly one part');
    assert.deepEqual([...new Set(stored.ids)].sort(), [...oldIds].sort());
    const hot = await withDb(target, async (db) => {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events WHERE id = ANY($1::uuid[])`, [
        oldIds,
      ]);
      return rows[0]!.n;
    });
    assert.equal(hot, 0);
  });
});
