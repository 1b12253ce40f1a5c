// `archive` stopped on purpose, and a row changed under it. A time budget stops the run between
// batches (exit 0, "stopped (time-budget)", the events left counted) and SIGINT after the step in
// hand (exit 130); a batch left written or verified by a stop or a kill is finished by the next
// run, and a row updated after it was written to a part stays hot until a later batch archives
// its new version. After each, every old event is in raw_events or in a part that checks out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ArchiveRunResult } from '../src/archive/run.js';
import { renderRun } from '../src/commands/archive-render.js';
import type { Clock } from '../src/clock.js';
import { archiveFixture, archivedIds, archiveInProcess, killAt, withDb } from './support/archive.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import type { TestTarget } from './support/db.js';

const OLD = 240;
const BATCH = 30;

describe('archive stopped by a time budget, a signal, a kill', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let uri: string;
  let oldIds: string[];

  let fixture: Awaited<ReturnType<typeof archiveFixture>> | undefined;

  before(async () => {
    fixture = await archiveFixture('archive-stop', OLD, 10);
    ({ target, uri, oldIds } = fixture);
  });
  after(async () => {
    await fixture?.done();
  });

  const args = (...more: string[]) => [
    ...target.args,
    'archive',
    '--older-than',
    '90',
    '--to',
    uri,
    '--batch-size',
    String(BATCH),
    ...more,
  ];

  /** Every old event is hot or in a part that checks out; returns how many are hot. */
  async function assertNothingLost(): Promise<number> {
    const hot = await withDb(target, async (db) => {
      const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM public.raw_events`);
      return new Set(rows.map((r) => r.id));
    });
    const stored = await archivedIds(uri);
    assert.ok(stored.ok, 'every manifest checks out');
    const safe = new Set(stored.ids);
    assert.deepEqual(
      oldIds.filter((id) => !hot.has(id) && !safe.has(id)),
      [],
      'events neither in raw_events nor in a verified part',
    );
    return oldIds.filter((id) => hot.has(id)).length;
  }

  it('a tiny --time-budget is a planned stop: exit 0, the summary says so and counts what is left', async () => {
    const r = await runCli([...args('--time-budget', '1ms'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = r.json<ArchiveRunResult>();
    assert.deepEqual([doc.status, doc.stopReason, doc.left, doc.deleted], ['stopped', 'time-budget', oldIds.length, 0]);
    // What a person reads for the same run (the document rendered without --json).
    assert.match(renderRun(doc).join('\n'), new RegExp(`stopped \\(time-budget\\) with ${oldIds.length} eligible events left`));
    assert.equal(await assertNothingLost(), oldIds.length);
  });

  it('the budget is checked between batches: spent after two, the run stops there', async () => {
    let now = Date.parse('2026-12-06T12:00:00Z');
    const clock: Clock = { now: () => new Date(now) };
    const db = await target.open();
    try {
      const result = await archiveInProcess(db, uri, {
        batchSize: BATCH,
        timeBudgetMs: 60_000,
        clock,
        // Each finished batch takes "30 s" of the 60 s budget.
        bar: { increment: () => (now += 30_000), setTotal: () => {} },
      });
      assert.deepEqual([result.status, result.stopReason], ['stopped', 'time-budget']);
      assert.deepEqual(
        result.batches.map((b) => b.state),
        ['deleted', 'deleted'],
      );
      assert.equal(result.deleted, 2 * BATCH);
      assert.equal(result.left, oldIds.length - 2 * BATCH);
    } finally {
      await db.close();
    }
    assert.equal(await assertNothingLost(), oldIds.length - 2 * BATCH);
  });

  it('SIGINT stops the run after the step in hand: exit 130, every event hot or in a verified part', async () => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, '--verbose', ...args('--json')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let planned = 0;
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      planned += d.split('\n').filter((l) => /archive: planned batch/.test(l)).length;
      // In the middle of the run: the first batch done, the second one under way. Once: a
      // second SIGINT would end the process at once.
      if (planned >= 2 && !sent) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 130, stdout);
    const doc = JSON.parse(stdout) as ArchiveRunResult;
    assert.deepEqual([doc.status, doc.stopReason], ['stopped', 'signal']);
    assert.ok(doc.deleted >= BATCH && doc.left > 0, `deleted ${doc.deleted}, left ${doc.left}`);
    const hot = await assertNothingLost();
    assert.ok(hot > 0 && hot < oldIds.length - 2 * BATCH);
  });

  let changed = '';
  it('a row updated after its part was written is not deleted', async () => {
    const killed = await killAt(args(), 'written');
    assert.ok(killed.paused, killed.stderr);
    changed = await withDb(target, async (db) => {
      const { rows } = await db.query<{ id: string }>(
        `SELECT a.raw_event_id::text AS id
         FROM omni_ingest.archived_events a JOIN omni_ingest.archive_batches b ON b.id = a.batch_id
         WHERE b.state = 'written' LIMIT 1`,
      );
      await db.query(`UPDATE public.raw_events SET payload = payload || '{"edited": true}' WHERE id = $1`, [rows[0]!.id]);
      return rows[0]!.id;
    });
    assert.equal((await assertNothingLost()) > 0, true);
  });

  it('the next run finishes everything: the changed row kept, then archived in its new version', async () => {
    const r = await runCli([...args(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = r.json<ArchiveRunResult>();
    assert.equal(doc.status, 'succeeded');
    assert.equal(doc.kept, 1);
    assert.equal(doc.left, 0);
    assert.equal(await assertNothingLost(), 0);
    const stored = await archivedIds(uri);
    // Each event once, but the changed one twice: as it was when written, and as it is now.
    assert.equal(stored.ids.length, oldIds.length + 1);
    assert.deepEqual([...new Set(stored.ids)].sort(), [...oldIds].sort());
    assert.equal(stored.ids.filter((id) => id === changed).length, 2);
  });
});
