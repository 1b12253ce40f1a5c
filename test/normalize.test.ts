// normalize in-process: every event once, failures dead-lettered, skips counted, filters honoured.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { interactionColumns } from '../src/stages/normalize-columns.js';
import { enqueueRawEvents, upsertInteractions } from '../src/stages/normalize-sql.js';
import { systemClock } from '../src/clock.js';
import { migratedDb, onServer } from './support/db.js';
import { loadEvents, USER_A, USER_B } from './support/events.js';

const normalize = (db: Db, flags: RangeFlags = {}) =>
  runStage(normalizeStage, { db, clock: systemClock, logger: createMemoryLogger(), range: parseRange(flags, systemClock) });

async function count(db: Db, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

describe('normalize', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  it('turns every pending event into its interaction once; a second run finds nothing', async () => {
    const loaded =
      (await loadEvents(db, 'gmail', generateEvents('gmail', 300, { seed: 1, userId: USER_A }))) +
      (await loadEvents(db, 'twilio', generateEvents('twilio', 300, { seed: 2, userId: USER_A }))) +
      (await loadEvents(db, 'webform', generateEvents('webform', 300, { seed: 3, userId: USER_A })));
    const first = await normalize(db, { batchSize: '128' });
    assert.equal(first.counts.events, loaded);
    assert.equal(first.counts.dead_lettered ?? 0, 0);
    const interactions = await count(db, 'SELECT count(*)::int AS n FROM public.interactions');
    assert.equal(interactions, first.counts.inserted);
    assert.equal(interactions + (first.counts.skipped ?? 0), loaded);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue'), 0);
    assert.equal(
      await count(
        db,
        'SELECT count(*)::int AS n FROM public.interactions i JOIN public.raw_events r ON r.id = i.raw_event_id AND r.batch_id = i.batch_id',
      ),
      interactions,
    );

    // Web forms and Twilio keep their whole payload as body_raw (the server copies it from the
    // raw event); Gmail builds its own.
    const bodies = await db.query<{ source: string; n: number; same: number }>(
      `SELECT i.source, count(*)::int AS n, count(*) FILTER (WHERE i.body_raw = r.payload)::int AS same
FROM public.interactions i JOIN public.raw_events r ON r.id = i.raw_event_id GROUP BY i.source ORDER BY i.source`,
    );
    const by = Object.fromEntries(bodies.rows.map((r) => [r.source, r]));
    for (const source of ['twilio', 'webform'])
      assert.ok(by[source]!.n > 0 && by[source]!.same === by[source]!.n, JSON.stringify(by[source]));
    assert.equal(by.gmail!.same, 0);

    const second = await normalize(db);
    assert.equal(second.counts.events ?? 0, 0);
    assert.equal(second.pendingAtStart, 0);
  });

  it('refuses a body taken from a raw event that is gone, rather than storing none', async () => {
    const row = {
      user_id: USER_A,
      source: 'webform',
      source_id: 'gone-1',
      type: 'form_submitted',
      subject: null,
      body_text: 'x',
      body_raw: {},
      body_at: { path: [] },
      occurred_at: '2025-01-01T00:00:00Z',
      source_meta: {},
      batch_id: null,
      raw_event_id: '00000000-0000-4000-8000-000000000001',
    };
    await assert.rejects(
      db.transaction((tx) => upsertInteractions(tx, interactionColumns([row]))),
      /invalid input syntax for type json/,
    );
    assert.equal(await count(db, "SELECT count(*)::int AS n FROM public.interactions WHERE source_id = 'gone-1'"), 0);
  });

  it('cleans a column that holds NUL or a lone surrogate before sending it', async () => {
    const row = (sourceId: string, bodyText: string, meta: Record<string, unknown>) => ({
      user_id: USER_A,
      source: 'webform',
      source_id: sourceId,
      type: 'form_submitted',
      subject: null,
      body_text: bodyText,
      body_raw: { note: bodyText },
      occurred_at: '2025-01-01T00:00:00Z',
      source_meta: meta,
      batch_id: null,
      raw_event_id: '00000000-0000-4000-8000-000000000002',
    });
    const rows = [
      row('clean-1', 'plain 👋', { names: { 'a@b.c': 'Zoë' } }),
      row('dirty-1', 'a\u0000b \ud800c', { ['k\udc00']: 'v\u0000' }),
    ];
    const columns = interactionColumns(rows);
    assert.equal(columns.length, 13);
    for (const c of columns) assert.ok(!c.includes('\\u0000') && !/\\ud[89a-f]/i.test(c), c);
    assert.ok(columns[5]!.includes('plain 👋'), 'a clean value is sent as it is');
    assert.deepEqual(await db.transaction((tx) => upsertInteractions(tx, columns)), { inserted: 2, updated: 0 });
    const { rows: stored } = await db.query<{ source_id: string; body_text: string; body_raw: unknown; source_meta: unknown }>(
      `SELECT source_id, body_text, body_raw, source_meta FROM public.interactions WHERE source_id IN ('clean-1', 'dirty-1') ORDER BY source_id`,
    );
    assert.deepEqual(stored[0], {
      source_id: 'clean-1',
      body_text: 'plain 👋',
      body_raw: { note: 'plain 👋' },
      source_meta: { names: { 'a@b.c': 'Zoë' } },
    });
    assert.deepEqual(stored[1], {
      source_id: 'dirty-1',
      body_text: 'ab \ufffdc',
      body_raw: { note: 'ab \ufffdc' },
      source_meta: { 'k\ufffd': 'v' },
    });
  });

  it('dead-letters invalid payloads with message, issues and raw event id, and goes on', async () => {
    const good = [...generateEvents('webform', 20, { seed: 4, userId: USER_A })];
    const bad = [
      { id: 'broken-1', form_id: 'f', submitted_at: 'not a date', fields: {} },
      { id: 'broken-2', submitted_at: '2025-01-01T00:00:00Z' },
    ];
    await loadEvents(db, 'webform', [...good, ...bad]);
    const s = await normalize(db);
    assert.equal(s.counts.events, 22);
    assert.equal(s.counts.dead_lettered, 2);
    assert.equal(s.counts.inserted, 20);
    const { rows } = await db.query<{
      stage: string;
      error: string;
      context: { raw_event_id: string; issues: { path: string; message: string }[] };
      raw_event_id: string;
      source_id: string;
    }>(`
SELECT e.stage, e.error, e.context, e.raw_event_id, r.source_id
FROM public.raw_event_errors e JOIN public.raw_events r ON r.id = e.raw_event_id
ORDER BY r.source_id`);
    assert.equal(rows.length, 2);
    for (const r of rows) {
      assert.equal(r.stage, 'normalize');
      assert.equal(r.context.raw_event_id, r.raw_event_id);
      assert.ok(r.error.length > 10, r.error);
      assert.ok(r.context.issues.length > 0, `no issues for ${r.source_id}`);
      assert.ok(r.context.issues.every((i) => i.path.length > 0 && i.message.length > 0));
    }
    assert.match(rows[0]!.error + JSON.stringify(rows[0]!.context), /submitted_at/);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue'), 0, 'dead-lettered events leave the queue');
  });

  it('an event of an unknown provider is dead-lettered, not fatal', async () => {
    await db.query(
      `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at)
VALUES ($1, 'myspace', 'x1', '{"id": "x1"}', now())`,
      [USER_A],
    );
    const s = await normalize(db);
    assert.equal(s.counts.dead_lettered, 1);
    const { rows } = await db.query<{ error: string }>('SELECT error FROM public.raw_event_errors');
    assert.match(rows[0]!.error, /unknown provider "myspace"/);
  });

  it('an event stored with an infinite time neither blocks its neighbours nor loops a dry run', async () => {
    // `pg` reads 'infinity' as a number, not a Date: every use of the row's time must take it.
    const [a, b, c] = generateEvents('webform', 3, { seed: 9, userId: USER_A });
    await loadEvents(db, 'webform', [a, b, c], USER_A);
    await db.query(
      `UPDATE public.raw_events SET occurred_at = CASE source_id WHEN $1 THEN 'infinity'::timestamptz ELSE '-infinity'::timestamptz END
WHERE source_id IN ($1, $2)`,
      [(a as { id: string }).id, (b as { id: string }).id],
    );
    await db.query(
      `UPDATE omni_ingest.normalize_queue q SET occurred_at = r.occurred_at FROM public.raw_events r WHERE r.id = q.raw_event_id`,
    );
    const dry = await normalize(db, { dryRun: true, batchSize: '1' });
    assert.equal(dry.counts.events, 3);
    const s = await normalize(db, { batchSize: '1' });
    assert.equal(s.counts.events, 3);
    // A web form carries its own time: the interaction takes it.
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions WHERE isfinite(occurred_at)'), 3);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue'), 0);
  });

  it('honours --provider, --user, --since/--until and --limit', async () => {
    await loadEvents(db, 'twilio', generateEvents('twilio', 50, { seed: 5, userId: USER_A }), USER_A);
    await loadEvents(db, 'twilio', generateEvents('twilio', 50, { seed: 6, userId: USER_B }), USER_B);
    await loadEvents(db, 'webform', generateEvents('webform', 50, { seed: 7, userId: USER_A }), USER_A);
    const byUser = await normalize(db, { user: USER_B });
    assert.equal(byUser.counts.events, 50);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions WHERE user_id <> $1', [USER_B]), 0);
    const limited = await normalize(db, { provider: 'webform', limit: '7' });
    assert.equal(limited.counts.events, 7);
    assert.equal(limited.stopReason, 'limit');
    const { rows } = await db.query<{ t: Date }>(
      `SELECT occurred_at AS t FROM omni_ingest.normalize_queue ORDER BY occurred_at, raw_event_id`,
    );
    const mid = rows[Math.floor(rows.length / 2)]!.t.toISOString();
    const ranged = await normalize(db, { since: mid });
    const expected = rows.filter((r) => r.t.toISOString() >= mid).length;
    assert.equal(ranged.counts.events, expected);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue WHERE occurred_at >= $1', [mid]), 0);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue'), rows.length - expected);
  });

  it('--dry-run reports what would happen and writes nothing', async () => {
    await loadEvents(db, 'gmail', generateEvents('gmail', 40, { seed: 8, userId: USER_A }));
    await loadEvents(db, 'webform', [{ id: 'bad', form_id: 'f', submitted_at: 'nope', fields: {} }]);
    const s = await normalize(db, { dryRun: true, batchSize: '16' });
    assert.equal(s.counts.events, 41);
    assert.equal(s.counts.dead_lettered, 1);
    assert.equal(s.runId, null);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions'), 0);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.raw_event_errors'), 0);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.normalize_queue'), 41, 'the queue is untouched');
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.runs'), 0);
  });

  it('re-normalizing an event updates its interaction but keeps the contact link', async () => {
    await loadEvents(db, 'webform', generateEvents('webform', 3, { seed: 9, userId: USER_A }));
    await normalize(db);
    await db.query(`UPDATE public.interactions SET contact_id = NULL, subject = 'stale subject'`);
    await enqueueRawEvents(db, parseRange({}, systemClock));
    const again = await normalize(db);
    assert.equal(again.counts.updated, 3);
    assert.equal(again.counts.inserted, 0);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.interactions WHERE subject = 'stale subject'`), 0);
    await enqueueRawEvents(db, parseRange({}, systemClock));
    const third = await normalize(db);
    assert.equal(third.counts.unchanged, 3, 'identical re-normalization writes nothing');
  });

  it('records the run in the ledger with its counts', async () => {
    await loadEvents(db, 'instagram', generateEvents('instagram', 25, { seed: 10, userId: USER_A }));
    const s = await normalize(db, { batchSize: '10' });
    const { rows } = await db.query<{ status: string; counts: Record<string, number>; command: string }>(
      'SELECT status, counts, command FROM omni_ingest.runs WHERE id = $1',
      [s.runId],
    );
    assert.equal(rows[0]?.command, 'normalize');
    assert.equal(rows[0]?.status, 'succeeded');
    assert.equal(rows[0]?.counts.events, 25);
    assert.deepEqual(rows[0]?.counts, s.counts);
  });

  it('keeps Unicode and removes NUL characters', async () => {
    await loadEvents(db, 'webform', [
      {
        id: 'u1',
        form_id: 'contact',
        form_name: 'Kontakt 📬',
        submitted_at: '2025-03-01T10:00:00+01:00',
        fields: { name: 'Zoë 李', message: 'Grüße\u0000 aus Köln 🚀' },
      },
    ]);
    await normalize(db);
    const { rows } = await db.query<{ subject: string; body_text: string; occurred_at: Date }>(
      'SELECT subject, body_text, occurred_at FROM public.interactions',
    );
    assert.equal(rows[0]?.subject, 'Kontakt 📬');
    assert.equal(rows[0]?.body_text, 'Grüße aus Köln 🚀');
    assert.equal(rows[0]?.occurred_at.toISOString(), '2025-03-01T09:00:00.000Z');
  });
});

describe('normalize with slow transactions', { skip: onServer ? false : 'needs a real server (two sessions)' }, () => {
  it('picks up an event committed late, after a later event was processed', async () => {
    const { db, target, close } = await migratedDb();
    const late = await target.open();
    try {
      const [early, later] = [...generateEvents('webform', 2, { seed: 11, userId: USER_A })];
      const slow = late.transaction(async (tx) => {
        await loadEvents(tx, 'webform', [early]);
        await new Promise((r) => setTimeout(r, 1_500)); // commits after the run below
      });
      await new Promise((r) => setTimeout(r, 300));
      await loadEvents(db, 'webform', [later]);
      const first = await normalize(db);
      assert.equal(first.counts.events, 1, 'the uncommitted event is invisible');
      await slow;
      const second = await normalize(db);
      assert.equal(second.counts.events, 1, 'the late event is picked up by the next incremental run');
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions'), 2);
    } finally {
      await late.close();
      await close();
    }
  });
});
