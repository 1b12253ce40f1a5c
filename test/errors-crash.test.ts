// errors retry under kill -9 and beside other runs: each error is resolved exactly once, with
// exactly one interaction, whatever instant the process dies at or whoever gets there first.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { killAfterBatches, runCli } from './support/cli.js';
import { migratedTarget, onServer, someoneWaitsForLock, type TestTarget } from './support/db.js';
import { loadEvents, webforms } from './support/events.js';

const EVENTS = onServer ? 5_000 : 1_000;
const KILLS = onServer ? 3 : 2;
const BATCH = onServer ? '250' : '100';
const NO_KEY = { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined };

/** A database holding EVENTS web forms that all failed normalize and have since been fixed. */
async function fixedFailures(): Promise<TestTarget> {
  const target = await migratedTarget();
  let db = await target.open();
  try {
    await loadEvents(
      db,
      'webform',
      webforms(EVENTS, () => true, 11),
    );
  } finally {
    await db.close();
  }
  const normalize = await runCli([...target.args, 'normalize'], { env: NO_KEY });
  assert.equal(normalize.code, 0, normalize.stderr);
  db = await target.open();
  try {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_event_errors WHERE status = 'open'`);
    assert.equal(rows[0]?.n, EVENTS);
    await db.query(
      `UPDATE public.raw_events SET payload = jsonb_set(payload, '{submitted_at}', to_jsonb((payload ->> 'submitted_at') || 'Z'))`,
    );
  } finally {
    await db.close();
  }
  return target;
}

async function assertEachResolvedOnce(target: TestTarget): Promise<void> {
  const db = await target.open();
  try {
    const { rows } = await db.query<{ errors: number; resolved: number; interactions: number; events: number; ledger: number }>(
      `SELECT (SELECT count(*)::int FROM public.raw_event_errors) AS errors,
       (SELECT count(*)::int FROM public.raw_event_errors WHERE status = 'resolved') AS resolved,
       (SELECT count(*)::int FROM public.interactions) AS interactions,
       (SELECT count(DISTINCT raw_event_id)::int FROM public.interactions) AS events,
       (SELECT coalesce(sum(coalesce((counts ->> 'normalize.resolved')::int, CASE WHEN command = 'normalize' THEN (counts ->> 'resolved')::int END, 0)), 0)::int
        FROM omni_ingest.runs) AS ledger`,
    );
    // The ledger holds every committed batch's counts, the killed runs' too: together the runs
    // (retries, and the backfill that raced them) resolved each error once.
    assert.deepEqual(rows[0], { errors: EVENTS, resolved: EVENTS, interactions: EVENTS, events: EVENTS, ledger: EVENTS });
  } finally {
    await db.close();
  }
}

describe('errors retry under kill -9', { timeout: 600_000 }, () => {
  let target: TestTarget;
  before(async () => {
    target = await fixedFailures();
  });
  after(async () => {
    await target?.drop();
  });

  it('killed at random points and run again: each error resolved once, with one interaction', async () => {
    let kills = 0;
    for (let attempt = 0; kills < KILLS && attempt < 3 * KILLS; attempt++) {
      const r = await killAfterBatches(
        [...target.args, 'errors', 'retry', '--all', '--batch-size', BATCH],
        1 + Math.floor(Math.random() * 2),
        Math.floor(Math.random() * 40),
        { OPENAI_API_KEY: '' },
      );
      if (r.killed) kills++;
    }
    assert.ok(kills >= KILLS, `only ${kills} kills landed`);
    const finish = await runCli([...target.args, '--json', 'errors', 'retry', '--all', '--batch-size', BATCH], { env: NO_KEY });
    assert.equal(finish.code, 0, finish.stderr);
    await assertEachResolvedOnce(target);
  });
});

describe('errors retry beside other runs (server)', {
  skip: !onServer && 'several processes at once need the server',
  timeout: 600_000,
}, () => {
  let target: TestTarget;
  before(async () => {
    target = await fixedFailures();
  });
  after(async () => {
    await target?.drop();
  });

  it('three retries of the group, normalize and a reprocessing backfill at once: each error resolved once', async () => {
    const db = await target.open();
    const signatures = await db
      .query<{ signature: string }>(`SELECT DISTINCT signature FROM public.raw_event_errors`)
      .finally(() => db.close());
    assert.equal(signatures.rows.length, 1, 'one cause, one group');
    const group = ['--group', signatures.rows[0]!.signature];
    const runs = await Promise.all([
      ...[1, 2, 3].map(() => runCli([...target.args, 'errors', 'retry', ...group, '--batch-size', BATCH], { env: NO_KEY })),
      runCli([...target.args, 'normalize', '--batch-size', BATCH], { env: NO_KEY }),
      runCli([...target.args, 'backfill', '--stages', 'normalize', '--reprocess', '--batch-size', BATCH], { env: NO_KEY }),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    await assertEachResolvedOnce(target);
  });
});

describe('errors retry and an error another transaction holds (server)', {
  skip: !onServer && 'a transaction held open beside the binary needs the server',
  timeout: 300_000,
}, () => {
  it('the retry leaves it to its holder and says so; normalize of its event waits for the holder, then finds it resolved', async () => {
    const target = await migratedTarget();
    const db = await target.open();
    try {
      await loadEvents(
        db,
        'webform',
        webforms(20, () => true, 5),
      );
      const normalize = await runCli([...target.args, 'normalize'], { env: NO_KEY });
      assert.equal(normalize.code, 0, normalize.stderr);
      await db.query(
        `UPDATE public.raw_events SET payload = jsonb_set(payload, '{submitted_at}', to_jsonb((payload ->> 'submitted_at') || 'Z'))`,
      );
      const { rows } = await db.query<{ id: string; raw_event_id: string }>(
        `SELECT id, raw_event_id FROM public.raw_event_errors WHERE stage = 'normalize' ORDER BY id LIMIT 1`,
      );
      const held = rows[0]!;
      const { later } = await db.transaction(async (tx) => {
        // Another `errors retry` has claimed this error and is finishing its event.
        await tx.query(`SELECT 1 FROM public.raw_event_errors WHERE id = $1 FOR UPDATE`, [held.id]);
        const retry = await runCli([...target.args, '--json', 'errors', 'retry', '--all'], { env: NO_KEY });
        assert.equal(retry.code, 0, retry.stderr);
        const out = retry.json<{ resolved: number; stillOpen: number; status: string }>();
        assert.deepEqual(
          { resolved: out.resolved, stillOpen: out.stillOpen, status: out.status },
          { resolved: 19, stillOpen: 1, status: 'incomplete' },
        );

        // The event queued again (as --reprocess does): normalize's batch waits for the holder
        // before writing anything, so the holder can write the event's interaction.
        await db.query(
          `INSERT INTO omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
SELECT id, user_id, provider, occurred_at FROM public.raw_events WHERE id = $1`,
          [held.raw_event_id],
        );
        const later = runCli([...target.args, '--json', 'normalize'], { env: NO_KEY });
        await someoneWaitsForLock(db);
        await tx.query(
          `INSERT INTO public.interactions (user_id, source, source_id, type, occurred_at, raw_event_id)
SELECT user_id, provider, source_id, 'form_submission', now(), id FROM public.raw_events WHERE id = $1`,
          [held.raw_event_id],
        );
        await tx.query(
          `UPDATE public.raw_event_errors SET status = 'resolved', closed_at = now(), close_reason = 'by its holder' WHERE id = $1`,
          [held.id],
        );
        return { later };
      });
      const after = await later;
      assert.equal(after.code, 0, after.stderr);
      assert.equal(after.json<{ counts: Record<string, number> }>().counts.resolved ?? 0, 0, 'resolved once, by its holder');
      const check = await db.query<{ status: string; close_reason: string; interactions: number }>(
        `SELECT e.status, e.close_reason,
       (SELECT count(*)::int FROM public.interactions i WHERE i.raw_event_id = e.raw_event_id) AS interactions
FROM public.raw_event_errors e WHERE e.id = $1`,
        [held.id],
      );
      assert.deepEqual(check.rows[0], { status: 'resolved', close_reason: 'by its holder', interactions: 1 });
    } finally {
      await db.close();
      await target.drop();
    }
  });
});
