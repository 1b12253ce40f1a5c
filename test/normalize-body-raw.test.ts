// body_raw as normalize stores it. Where a provider's body_raw is a part of the payload (a web
// form or a Twilio message whole, an Instagram item), the database copies it from the stored
// payload instead of parsing it again from the batch: what it stores must be exactly what the
// provider made, for every provider and every shape of payload.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange } from '../src/commands/flags.js';
import { packageRoot } from '../src/paths.js';
import { providers } from '../src/providers/index.js';
import type { BodyRawAt } from '../src/providers/types.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { type InteractionRow, interactionColumns } from '../src/stages/normalize-columns.js';
import { upsertInteractions } from '../src/stages/normalize-sql.js';
import { systemClock } from '../src/clock.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';

const normalize = (db: Db) =>
  runStage(normalizeStage, { db, clock: systemClock, logger: createMemoryLogger(), range: parseRange({ batchSize: '7' }, systemClock) });

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(packageRoot, 'fixtures', 'instagram', name), 'utf8')) as Record<string, unknown>;

const item = (mid: string, extra: Record<string, unknown> = {}) => ({
  sender: { id: '7135602948817345' },
  recipient: { id: '17841405822304914' },
  timestamp: 1724490001000,
  message: { mid, text: `text of ${mid}` },
  ...extra,
});

/** An Instagram interaction whose body the upsert is to take from its raw event at `at`. */
const rowAt = (rawEventId: string, sourceId: string, at: BodyRawAt): InteractionRow => ({
  user_id: USER_A,
  source: 'instagram',
  source_id: sourceId,
  type: 'dm_received',
  subject: null,
  body_text: 'x',
  body_raw: {},
  body_at: at,
  occurred_at: '2025-01-01T00:00:00Z',
  source_meta: {},
  batch_id: null,
  raw_event_id: rawEventId,
});

/** Instagram payloads of every shape a body_raw can be taken from. */
function instagramPayloads(): unknown[] {
  return [
    ...[...generateEvents('instagram', 60, { seed: 11, userId: USER_A })],
    fixture('body-two-messages-and-read.json'),
    fixture('item-story-reply.json'),
    fixture('item-attachment-only.json'),
    // Keys the schema does not know, on the item and in its message: kept, as the payload has them.
    item('m-unknown-item', {
      referral_source: { ref: 'ad-7' },
      message: { mid: 'm-unknown-item', text: 'hi', is_self: false, tags: [1, 2] },
    }),
    // Two entries, messaging and standby, in one body: each item from its own place.
    {
      object: 'instagram',
      entry: [
        { id: '17841405822304914', time: 1724490012345, messaging: [item('m-e0-a'), item('m-e0-b', { extra: true })] },
        { id: '17841405822304999', standby: [item('m-e1-standby')], messaging: [item('m-e1-msg')] },
      ],
    },
    // An item that itself holds a key named entry: the body's entry is put over it.
    { object: 'instagram', entry: [{ id: '17841405822304914', time: 1, messaging: [item('m-own-entry', { entry: 'mine' })] }] },
  ];
}

/**
 * Every stored interaction's body_raw beside what its provider makes of the payload as the database
 * holds it; returns the providers seen.
 */
async function bodiesAsMade(db: Db, inserted: number): Promise<string[]> {
  const { rows } = await db.query<{
    provider: string;
    source_id: string;
    payload: unknown;
    body_raw: unknown;
    raw_event_id: string;
    raw_source_id: string;
    occurred_at: Date;
  }>(`
SELECT r.provider, i.source_id, r.payload, i.body_raw, r.id AS raw_event_id, r.source_id AS raw_source_id, r.occurred_at
FROM public.interactions i JOIN public.raw_events r ON r.id = i.raw_event_id`);
  assert.equal(rows.length, inserted);
  const bySource = new Map<string, number>();
  for (const r of rows) {
    const made = providers[r.provider]!.normalize({
      id: r.raw_event_id,
      userId: USER_A,
      provider: r.provider,
      sourceId: r.raw_source_id,
      occurredAt: r.occurred_at,
      payload: r.payload,
    });
    assert.equal(made.kind, 'interactions');
    const mine = made.kind === 'interactions' ? made.interactions.find((i) => i.sourceId === r.source_id) : undefined;
    assert.ok(mine, `${r.provider} ${r.source_id}`);
    assert.deepEqual(r.body_raw, mine.bodyRaw, `${r.provider} ${r.source_id}`);
    bySource.set(r.provider, (bySource.get(r.provider) ?? 0) + 1);
  }
  return [...bySource.keys()].sort();
}

describe('normalize: body_raw taken from the stored payload', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  it('stores exactly the body_raw each provider makes, whichever way it travels', async () => {
    let loaded = await loadEvents(db, 'instagram', instagramPayloads());
    loaded += await loadEvents(db, 'twilio', generateEvents('twilio', 40, { seed: 12, userId: USER_A }));
    loaded += await loadEvents(db, 'webform', generateEvents('webform', 40, { seed: 13, userId: USER_A }));
    loaded += await loadEvents(db, 'gmail', generateEvents('gmail', 20, { seed: 14, userId: USER_A }));
    const s = await normalize(db);
    assert.equal(s.counts.events, loaded);
    assert.equal(s.counts.dead_lettered ?? 0, 0);

    assert.deepEqual(await bodiesAsMade(db, s.counts.inserted ?? 0), ['gmail', 'instagram', 'twilio', 'webform']);

    const byMid = async (mid: string) =>
      (await db.query<{ body_raw: Record<string, unknown> }>(`SELECT body_raw FROM public.interactions WHERE source_id = $1`, [mid]))
        .rows[0]?.body_raw;
    assert.deepEqual(
      await byMid('m-unknown-item'),
      item('m-unknown-item', {
        referral_source: { ref: 'ad-7' },
        message: { mid: 'm-unknown-item', text: 'hi', is_self: false, tags: [1, 2] },
      }),
    );
    assert.deepEqual(await byMid('m-e1-standby'), { ...item('m-e1-standby'), entry: { id: '17841405822304999' } });
    assert.deepEqual(await byMid('m-e0-b'), {
      ...item('m-e0-b', { extra: true }),
      entry: { id: '17841405822304914', time: 1724490012345 },
    });
    assert.deepEqual((await byMid('m-own-entry'))?.entry, { id: '17841405822304914', time: 1 });
  });

  it('stores the same bodies when rows the database refuses are isolated out of their batches', async () => {
    // Isolating a refused row writes the rest of its batch again in parts, rebuilt from the batch's
    // columns (read back) after the batch let go of its payloads and interactions: the bodies taken
    // from the stored payload must come out as they would have.
    await db.query(
      `ALTER TABLE public.interactions ADD CONSTRAINT test_no_poison CHECK (body_text IS NULL OR body_text NOT LIKE '%POISON%')`,
    );
    const poisoned = [
      item('m-poison-1', { message: { mid: 'm-poison-1', text: 'POISON one' } }),
      {
        object: 'instagram',
        entry: [
          {
            id: '17841405822304914',
            time: 9,
            messaging: [item('m-next-to-poison'), item('m-poison-2', { message: { mid: 'm-poison-2', text: 'POISON two' } })],
          },
        ],
      },
    ];
    let loaded = await loadEvents(db, 'instagram', [...instagramPayloads(), ...poisoned]);
    const forms = [...generateEvents('webform', 40, { seed: 13, userId: USER_A })] as Record<string, unknown>[];
    for (const i of [3, 17, 18]) forms[i]!.fields = { message: `POISON ${i}` };
    loaded += await loadEvents(db, 'webform', forms);
    loaded += await loadEvents(db, 'twilio', generateEvents('twilio', 40, { seed: 12, userId: USER_A }));
    const s = await normalize(db);
    assert.equal(s.counts.events, loaded);
    assert.equal(s.counts.dead_lettered, 5);
    assert.deepEqual(await bodiesAsMade(db, s.counts.inserted ?? 0), ['instagram', 'twilio', 'webform']);
    // Each refused row's dead letter names its own event, and the message of a body by its mid.
    const { rows: letters } = await db.query<{ source_id: string; item: string | null }>(
      `SELECT r.source_id, e.context ->> 'item' AS item
       FROM public.raw_event_errors e JOIN public.raw_events r ON r.id = e.raw_event_id
       WHERE e.stage = 'normalize' ORDER BY r.source_id`,
    );
    const poisonForms = [3, 17, 18].map((i) => forms[i]!.id as string);
    assert.deepEqual(
      letters
        .filter((l) => l.item === null)
        .map((l) => l.source_id)
        .sort(),
      ['m-poison-1', ...poisonForms].sort(),
    );
    assert.deepEqual(
      letters.filter((l) => l.item !== null).map((l) => l.item),
      ['m-poison-2'],
    );
    const next = (
      await db.query<{ body_raw: Record<string, unknown> }>(`SELECT body_raw FROM public.interactions WHERE source_id = 'm-next-to-poison'`)
    ).rows[0];
    assert.deepEqual(next?.body_raw, { ...item('m-next-to-poison'), entry: { id: '17841405822304914', time: 9 } });
  });

  it('a message withdrawn before it arrived is stored without its text, not as the payload holds it', async () => {
    const deleted = fixture('item-deleted.json');
    const mid = (deleted.message as { mid: string }).mid;
    await loadEvents(db, 'instagram', [deleted]);
    await normalize(db);
    await loadEvents(db, 'instagram', [
      { object: 'instagram', entry: [{ id: '17841405822304914', time: 5, messaging: [item(mid, { message: { mid, text: 'regret' } })] }] },
    ]);
    await normalize(db);
    const { rows } = await db.query<{ body_raw: { message: Record<string, unknown> }; body_text: string | null; withdrawn: string }>(
      `SELECT body_raw, body_text, source_meta ->> 'withdrawn' AS withdrawn FROM public.interactions WHERE source_id = $1`,
      [mid],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.body_text, null);
    assert.equal(rows[0]!.withdrawn, 'true');
    assert.deepEqual(rows[0]!.body_raw.message, { mid });
  });

  it('finds a body under keys that quote, escape, split or look like NULL in a text[] literal', async () => {
    const keys = ['a "quoted" key', 'back\\slash\\', 'comma, {brace}', 'NULL', '', ' spaced ', 'ünï ✉'];
    const deep = { text: 'found' };
    let nested: Record<string, unknown> = deep;
    for (const k of [...keys].reverse()) nested = { [k]: nested };
    await loadEvents(db, 'instagram', [item('awkward-keys-1', { extra: [nested] })]);
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM public.raw_events`);
    const row = rowAt(rows[0]!.id, 'awkward-keys-1', { path: ['extra', 0, ...keys], set: { 'set "key"': 1 } });
    await db.transaction((tx) => upsertInteractions(tx, interactionColumns([row])));
    const stored = await db.query<{ body_raw: unknown }>(`SELECT body_raw FROM public.interactions WHERE source_id = 'awkward-keys-1'`);
    assert.deepEqual(stored.rows[0]?.body_raw, { ...deep, 'set "key"': 1 });
  });

  it('refuses a row whose path is not in its raw event, rather than storing no body', async () => {
    await loadEvents(db, 'instagram', [fixture('item-text.json')]);
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM public.raw_events`);
    const row = rowAt(rows[0]!.id, 'nowhere-1', { path: ['entry', 3, 'messaging', 0], set: { entry: { id: '1' } } });
    await assert.rejects(
      db.transaction((tx) => upsertInteractions(tx, interactionColumns([row]))),
      /invalid input syntax for type json/,
    );
  });
});
