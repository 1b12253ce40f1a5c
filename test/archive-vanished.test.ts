// Claims whose rows were deleted by someone else between planning and writing: a batch whose
// first pages hold nothing but such claims is written past them (a page with no row left is not
// the batch's end), the vanished claims are dropped, and every row still there is archived.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { archivedIds, archiveFixture, archiveInProcess, withDb } from './support/archive.js';

const PAGE = 4;

describe('archive batch with claims of rows gone since planning', { timeout: 120_000 }, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>>;

  before(async () => {
    fixture = await archiveFixture('archive-vanished', 20, 0);
  });
  after(async () => {
    await fixture.done();
  });

  it('writes every row still there, however many pages of vanished claims come first', async () => {
    const { target, uri, oldIds } = fixture;
    const batchId = randomUUID();
    // Three pages of claims that sort before every real id, of rows that are not there.
    const gone = Array.from({ length: 3 * PAGE }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    await withDb(target, async (db) => {
      await db.query(
        `INSERT INTO omni_ingest.archive_batches (id, target, prefix, cutoff, rows) VALUES ($1, $2, $3, now() - interval '90 days', $4)`,
        [batchId, uri, `raw_events/test/${batchId}`, gone.length + oldIds.length],
      );
      await db.query(
        `INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id, row_xmin)
         SELECT x.id, $1, r.xmin FROM unnest($2::uuid[]) AS x(id) LEFT JOIN public.raw_events r ON r.id = x.id`,
        [batchId, [...gone, ...oldIds]],
      );
    });
    const db = await target.open();
    try {
      const result = await archiveInProcess(db, uri, { partRows: PAGE });
      assert.equal(result.status, 'succeeded');
      const batch = result.batches.find((b) => b.id === batchId);
      assert.deepEqual([batch?.state, batch?.rows, batch?.deleted], ['deleted', oldIds.length, oldIds.length]);
    } finally {
      await db.close();
    }
    const stored = await archivedIds(uri);
    assert.ok(stored.ok, 'every manifest checks out');
    assert.deepEqual([...stored.ids].sort(), [...oldIds].sort());
    const claims = await withDb(target, async (q) => {
      const { rows } = await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM omni_ingest.archived_events WHERE batch_id = $1 AND raw_event_id = ANY($2::uuid[])`,
        [batchId, gone],
      );
      return rows[0]!.n;
    });
    assert.equal(claims, 0, 'the claims of rows that were gone are dropped');
  });
});
