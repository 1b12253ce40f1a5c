// `archive` under kill -9, through the real binary, at each step of a batch's state machine
// (OMNI_INGEST_ARCHIVE_PAUSE_AT holds the process there until the kill): after a part is written,
// after the manifest, after verify, in the middle of deleting. After every kill each old event is
// either in raw_events or in a part that checks out — never neither — and nothing is deleted
// before its batch was verified; a run without the hook then finishes the job: every old event
// archived exactly once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ARCHIVE_COMMAND } from '../src/archive/run.js';
import { archiveFixture, archivedIds, killAt, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import type { TestTarget } from './support/db.js';

const OLD = 240;

async function hotIds(target: TestTarget): Promise<Set<string>> {
  return withDb(target, async (db) => {
    const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM public.raw_events`);
    return new Set(rows.map((r) => r.id));
  });
}

describe('archive under kill -9', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let uri: string;
  let dir: string;
  let oldIds: string[];

  let fixture: Awaited<ReturnType<typeof archiveFixture>> | undefined;

  before(async () => {
    fixture = await archiveFixture('archive-crash', OLD, 10);
    ({ target, uri, dir, oldIds } = fixture);
  });
  after(async () => {
    await fixture?.done();
  });

  const args = () => [...target.args, 'archive', '--older-than', '90', '--to', uri, '--batch-size', '100', '--part-rows', '40'];

  /** Every old event is hot or in a part that checks out; returns how many are hot. */
  async function assertNothingLost(): Promise<number> {
    const hot = await hotIds(target);
    const stored = await archivedIds(uri);
    const safe = new Set(stored.ok ? stored.ids : []);
    const lost = oldIds.filter((id) => !hot.has(id) && !safe.has(id));
    assert.deepEqual(lost, [], 'events neither in raw_events nor in a verified part');
    return oldIds.filter((id) => hot.has(id)).length;
  }

  for (const point of ['part', 'manifest', 'verified', 'deleting'] as const) {
    it(`killed at "${point}": nothing lost${point === 'deleting' ? '' : ', nothing deleted'}`, async () => {
      const killed = await killAt(args(), point);
      assert.ok(killed.paused, killed.stderr);
      const hot = await assertNothingLost();
      if (point === 'deleting') assert.ok(hot < oldIds.length, 'the first delete chunk committed before the kill');
      else assert.equal(hot, oldIds.length, 'nothing deleted before verify');
    });
  }

  it('a run after the kills finishes: every old event archived exactly once, verify passes', async () => {
    const r = await runCli([...args(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await assertNothingLost(), 0);
    const stored = await archivedIds(uri);
    // A batch killed before its manifest is written again under new part names, and the parts
    // of the killed attempt are removed; a manifest lists each event once.
    assert.equal(stored.ids.length, oldIds.length);
    assert.deepEqual([...new Set(stored.ids)].sort(), [...oldIds].sort());
    const parts = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ndjson.gz'));
    assert.equal(parts.length, stored.parts, `only the parts the manifests list are left:\n${parts.join('\n')}`);
    const verify = await runCli([...target.args, 'archive', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const runs = await withDb(target, async (db) => {
      const { rows } = await db.query<{ status: string }>(`SELECT status FROM omni_ingest.runs WHERE command = $1 ORDER BY started_at`, [
        ARCHIVE_COMMAND,
      ]);
      return rows.map((x) => x.status);
    });
    assert.deepEqual(runs, ['abandoned', 'abandoned', 'abandoned', 'abandoned', 'succeeded']);
  });
});
