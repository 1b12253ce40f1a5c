// Every raw event ends as exactly one of: an interaction, a counted skip, a dead letter — even
// when the database refuses a row at write time, when one item of a webhook body is bad, when a
// status callback comes before its message, or when a customer withdraws a message.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { makeRange } from '../src/stages/engine/range.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A, USER_B } from './support/events.js';

const normalize = (db: Db, batchSize = 1000) =>
  runStage(normalizeStage, { db, clock: systemClock, logger: createMemoryLogger(), range: makeRange({ batchSize }) });

async function one<T>(db: Db, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.query<{ v: T }>(sql, params);
  return rows[0]!.v;
}

interface Letter {
  raw_event_id: string;
  error: string;
  context: { raw_event_id: string; source_id: string; item?: string; kind?: string; sqlstate?: string; issues: { path: string }[] };
}

const letters = (db: Db) =>
  db
    .query<Letter>(`SELECT raw_event_id, error, context FROM public.raw_event_errors WHERE stage = 'normalize' ORDER BY error_at, id`)
    .then((r) => r.rows);

describe('a poison event never blocks normalize', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  it('a row the database refuses at write time: 999 interactions, 1 dead letter with the database message, and the next run has nothing to do', async () => {
    // A value the column refuses: the database, not our validation, says no.
    await db.query(
      `ALTER TABLE public.interactions ADD CONSTRAINT test_no_poison CHECK (body_text IS NULL OR body_text NOT LIKE '%POISON%')`,
    );
    const events = [...generateEvents('webform', 1000, { seed: 81, userId: USER_A })] as Record<string, unknown>[];
    const poison = events[517]!;
    poison.fields = { ...(poison.fields as object), message: 'this one is POISON for the column' };
    await loadEvents(db, 'webform', events);
    const first = await normalize(db);
    assert.equal(first.counts.events, 1000);
    assert.equal(first.counts.dead_lettered, 1);
    assert.equal(await one<number>(db, `SELECT count(*)::int AS v FROM public.interactions`), 999);
    const [letter] = await letters(db);
    assert.equal(letter?.context.source_id, poison.id);
    assert.equal(letter?.context.kind, 'database');
    assert.equal(letter?.context.sqlstate, '23514');
    assert.match(letter!.error, /test_no_poison/);
    assert.equal(letter?.raw_event_id, await one<string>(db, `SELECT id AS v FROM public.raw_events WHERE source_id = $1`, [poison.id]));
    const second = await normalize(db);
    assert.equal(second.counts.events ?? 0, 0);
    assert.equal(second.status, 'succeeded');
  });

  it('isolates several poison rows in one batch whatever their positions, and the batch commits the rest', async () => {
    await db.query(
      `ALTER TABLE public.interactions ADD CONSTRAINT test_no_poison CHECK (body_text IS NULL OR body_text NOT LIKE '%POISON%')`,
    );
    const events = [...generateEvents('webform', 300, { seed: 82, userId: USER_A })] as Record<string, unknown>[];
    const bad = [0, 1, 150, 298, 299];
    for (const i of bad) events[i]!.fields = { message: `POISON ${i}` };
    await loadEvents(db, 'webform', events);
    const s = await normalize(db, 300);
    assert.equal(s.counts.dead_lettered, bad.length);
    assert.equal(await one<number>(db, `SELECT count(*)::int AS v FROM public.interactions`), 300 - bad.length);
    assert.deepEqual((await letters(db)).map((l) => l.context.source_id).sort(), bad.map((i) => events[i]!.id as string).sort());
  });

  it('validates at the boundary what the database cannot store: a time past year 9999, an interaction id over 2000 bytes', async () => {
    const [gmail] = [...generateEvents('gmail', 1, { seed: 83, userId: USER_A })] as Record<string, unknown>[];
    const far = { ...gmail!, id: 'far-future', internalDate: String(Date.UTC(10000, 0, 2)) };
    const longMid = 'm'.repeat(3000);
    const body = {
      object: 'instagram',
      entry: [
        {
          id: '17841405822304914',
          messaging: [
            {
              sender: { id: '111' },
              recipient: { id: '17841405822304914' },
              timestamp: 1724490001000,
              message: { mid: 'ok-1', text: 'fine' },
            },
            {
              sender: { id: '111' },
              recipient: { id: '17841405822304914' },
              timestamp: 1724490002000,
              message: { mid: longMid, text: 'too long an id' },
            },
          ],
        },
      ],
    };
    // Fine in its own offset, past 9999 in UTC: what a provider's parser accepts, the database would not.
    const [form] = [...generateEvents('webform', 1, { seed: 84, userId: USER_A })] as Record<string, unknown>[];
    const offset = { ...form!, id: 'offset-edge', submitted_at: '9999-12-31T23:30:00-05:00' };
    await loadEvents(db, 'gmail', [far]);
    await loadEvents(db, 'instagram', [body]);
    await loadEvents(db, 'webform', [offset]);
    const s = await normalize(db);
    assert.equal(s.counts.dead_lettered, 3);
    assert.equal(await one<number>(db, `SELECT count(*)::int AS v FROM public.interactions`), 1, 'the good item of the body is stored');
    const byKind = await letters(db);
    assert.ok(byKind.some((l) => /after the year 9999/.test(l.error)));
    assert.ok(byKind.some((l) => /outside the years 0001-9999/.test(l.error) && l.context.source_id === 'offset-edge'));
    assert.ok(byKind.some((l) => /at most 2000/.test(l.error) && l.context.item?.startsWith('mmmm')));
  });
});

describe('provider edge cases that used to lose messages', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  const SID = 'SM0123456789abcdef0123456789abcdef';
  const rest = {
    sid: SID,
    account_sid: 'AC0123456789abcdef0123456789abcdef',
    from: '+14155550100',
    to: '+14155550199',
    body: 'Your table is booked',
    direction: 'outbound-api',
    status: 'delivered',
    date_sent: 'Thu, 24 Aug 2023 05:01:45 +0000',
  };
  const callback = (status: string) => ({
    MessageSid: SID,
    MessageStatus: status,
    SmsStatus: status,
    From: '+14155550100',
    To: '+14155550199',
  });

  for (const order of ['callbacks first', 'message first'] as const) {
    it(`a Twilio message and its status callbacks, ${order}: the message is an interaction, the callbacks are skipped`, async () => {
      const callbacks = [callback('sent'), callback('delivered'), { MessageSid: SID, MessageStatus: 'read' }];
      if (order === 'callbacks first') {
        await loadEvents(db, 'twilio', callbacks);
        await loadEvents(db, 'twilio', [rest]);
      } else {
        await loadEvents(db, 'twilio', [rest]);
        await loadEvents(db, 'twilio', callbacks);
      }
      assert.equal(await one<number>(db, `SELECT count(*)::int AS v FROM public.raw_events`), 4, 'no callback shadows the message');
      const s = await normalize(db);
      assert.deepEqual([s.counts.inserted, s.counts.skipped, s.counts.dead_lettered], [1, 3, 0]);
      assert.equal(
        await one<string>(db, `SELECT body_text AS v FROM public.interactions WHERE source_id = $1`, [SID]),
        'Your table is booked',
      );
    });
  }

  it('an Instagram message unsent after it was stored loses its text in interactions, embeddings and the timeline', async () => {
    const item = {
      sender: { id: '222' },
      recipient: { id: '17841405822304914' },
      timestamp: 1724490001000,
      message: { mid: 'mid-to-unsend', text: 'my card number is 4111' },
    };
    await loadEvents(db, 'instagram', [item]);
    await normalize(db);
    const id = await one<string>(db, `SELECT id AS v FROM public.interactions WHERE source_id = 'mid-to-unsend'`);
    await db.query(
      `INSERT INTO public.embeddings (user_id, owner_type, owner_id, content_hash, chunk_index, meta) VALUES ($1, 'interaction', $2, 'h', 0, '{}')`,
      [USER_A, id],
    );
    await db.query(
      `INSERT INTO public.contact_timeline (user_id, event_type, title, description, occurred_at, source_type, source_id) VALUES ($1, 'dm_received', 't', 'my card number is 4111', now(), 'interaction', $2)`,
      [USER_A, id],
    );
    await loadEvents(db, 'instagram', [{ ...item, timestamp: 1724490009000, message: { mid: 'mid-to-unsend', is_deleted: true } }]);
    const s = await normalize(db);
    assert.equal(s.counts.withdrawn, 1);
    const row = await db.query<{ body_text: string | null; body_raw: unknown; source_meta: { withdrawn?: boolean } }>(
      `SELECT body_text, body_raw, source_meta FROM public.interactions WHERE id = $1`,
      [id],
    );
    assert.equal(row.rows[0]?.body_text, null);
    assert.doesNotMatch(JSON.stringify(row.rows[0]?.body_raw), /4111/);
    assert.equal(row.rows[0]?.source_meta.withdrawn, true);
    assert.equal(await one<number>(db, `SELECT count(*)::int AS v FROM public.embeddings WHERE owner_id = $1`, [id]), 0);
    assert.equal(await one<string | null>(db, `SELECT description AS v FROM public.contact_timeline WHERE source_id = $1`, [id]), null);
  });

  it('an Instagram message whose unsend notice arrived first is stored withdrawn', async () => {
    const item = {
      sender: { id: '333' },
      recipient: { id: '17841405822304914' },
      timestamp: 1724490001000,
      message: { mid: 'mid-early-unsend', text: 'oops' },
    };
    await loadEvents(db, 'instagram', [{ ...item, timestamp: 1724490005000, message: { mid: 'mid-early-unsend', is_deleted: true } }]);
    await normalize(db);
    await loadEvents(db, 'instagram', [item]);
    await normalize(db);
    const row = await db.query<{ body_text: string | null; source_meta: { withdrawn?: boolean } }>(
      `SELECT body_text, source_meta FROM public.interactions WHERE source_id = 'mid-early-unsend'`,
    );
    assert.equal(row.rows.length, 1);
    assert.equal(row.rows[0]?.body_text, null);
    assert.equal(row.rows[0]?.source_meta.withdrawn, true);
  });

  it('in a batch of many messages, only those whose own unsend notice arrived first are withdrawn: by position, by user, by provider', async () => {
    const msg = (mid: string, t: number) => ({
      sender: { id: '333' },
      recipient: { id: '17841405822304914' },
      timestamp: 1724490001000 + t,
      message: { mid, text: `text of ${mid}` },
    });
    const unsent = (mid: string, t: number) => ({ ...msg(mid, t), timestamp: 1724490100000 + t, message: { mid, is_deleted: true } });
    // User A unsent m2 and m5 first; user B unsent m3 (a mid of user A's too), which is no withdrawal of A's.
    await loadEvents(db, 'instagram', [unsent('m2', 2), unsent('m5', 5)]);
    await loadEvents(db, 'instagram', [unsent('m3', 3)], USER_B);
    await normalize(db);
    const forms = [...generateEvents('webform', 3, { seed: 85, userId: USER_A })];
    await loadEvents(db, 'webform', forms);
    await loadEvents(
      db,
      'instagram',
      [1, 2, 3, 4, 5, 6].map((n) => msg(`m${n}`, n)),
    );
    await loadEvents(db, 'instagram', [msg('m3', 3), msg('m2', 20)], USER_B);
    await normalize(db);
    const { rows } = await db.query<{
      user_id: string;
      source: string;
      source_id: string;
      body_text: string | null;
      withdrawn: string | null;
    }>(
      `SELECT user_id::text, source, source_id, body_text, source_meta ->> 'withdrawn' AS withdrawn
       FROM public.interactions ORDER BY user_id, source, source_id`,
    );
    const withdrawn = rows.filter((r) => r.withdrawn === 'true').map((r) => `${r.user_id === USER_A ? 'A' : 'B'}:${r.source_id}`);
    assert.deepEqual(withdrawn, ['A:m2', 'A:m5', 'B:m3']);
    for (const r of rows.filter((x) => x.withdrawn !== 'true'))
      assert.notEqual(r.body_text, null, `${r.source}:${r.source_id} kept its text`);
    assert.equal(rows.filter((r) => r.source === 'webform').length, 3);
    assert.equal(rows.filter((r) => r.source === 'instagram').length, 8);
  });

  it('a whole Instagram body with one bad item stores the good ones and dead-letters that item only; entry[].time is not required', async () => {
    const ok = (mid: string, t: number) => ({
      sender: { id: '444' },
      recipient: { id: '17841405822304914' },
      timestamp: t,
      message: { mid, text: `hello ${mid}` },
    });
    const body = {
      object: 'instagram',
      entry: [
        {
          id: '17841405822304914',
          messaging: [ok('a1', 1724490001000), { ...ok('bad', 1), timestamp: 'yesterday' }, ok('a2', 1724490003000)],
        },
      ],
    };
    await loadEvents(db, 'instagram', [body]);
    const s = await normalize(db);
    assert.deepEqual([s.counts.inserted, s.counts.dead_lettered], [2, 1]);
    const [letter] = await letters(db);
    assert.equal(letter?.context.item, 'bad');
    assert.equal(letter?.context.issues[0]?.path, 'payload.entry[0].messaging[1].timestamp');
  });
});
