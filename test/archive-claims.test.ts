// The claims of archive batches without a foreign key to their batch (migration
// 202612061500_archive_claims_without_fk): a second claim of an event is still refused by the
// claims' primary key, and deleting a batch still takes its claims with it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { migratedDb } from './support/db.js';

describe('archive claims', { timeout: 60_000 }, () => {
  let fixture: Awaited<ReturnType<typeof migratedDb>>;
  before(async () => {
    fixture = await migratedDb();
  });
  after(async () => {
    await fixture.close();
  });

  const newBatch = async (): Promise<string> => {
    const id = randomUUID();
    await fixture.db.query(`INSERT INTO omni_ingest.archive_batches (id, target, prefix, cutoff) VALUES ($1, 'file:///x', $2, now())`, [
      id,
      id,
    ]);
    return id;
  };
  const claims = async (batchId: string): Promise<number> => {
    const { rows } = await fixture.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM omni_ingest.archived_events WHERE batch_id = $1`,
      [batchId],
    );
    return rows[0]!.n;
  };

  it('refuses a second claim of an event', async () => {
    const [a, b] = [await newBatch(), await newBatch()];
    const event = randomUUID();
    await fixture.db.query(`INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id) VALUES ($1, $2)`, [event, a]);
    await assert.rejects(
      fixture.db.query(`INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id) VALUES ($1, $2)`, [event, b]),
      /archived_events_pkey|duplicate key/,
    );
  });

  it('drops the claims of a deleted batch, and only those', async () => {
    const [gone, kept] = [await newBatch(), await newBatch()];
    await fixture.db.query(
      `INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id) SELECT gen_random_uuid(), b FROM unnest($1::uuid[]) AS b, generate_series(1, 3)`,
      [[gone, kept]],
    );
    assert.equal(await claims(gone), 3);
    await fixture.db.query(`DELETE FROM omni_ingest.archive_batches WHERE id = $1`, [gone]);
    assert.equal(await claims(gone), 0);
    assert.equal(await claims(kept), 3);
  });
});
