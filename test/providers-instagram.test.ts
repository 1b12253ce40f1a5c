// Instagram on fixtures/instagram: items and whole webhook bodies, every field, skips, ids.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { instagram } from '../src/providers/instagram/index.js';
import { PayloadError, type Identity, type NormalizedInteraction, type NormalizeResult } from '../src/providers/types.js';

const dir = path.join(packageRoot, 'fixtures', 'instagram');
const load = (name: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<string, unknown>;
const run = (payload: unknown): NormalizeResult =>
  instagram.normalize({ id: 'r1', userId: 'u1', provider: 'instagram', sourceId: null, occurredAt: null, payload });
const ig = (value: string): Identity => ({ kind: 'instagram_id', value });
const ACCOUNT = ig('17841405822304914');
const SOFIA = ig('6428719305487112');
const LIAM = ig('7135602948817345');
const MID = (tail: string) =>
  `aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk5NjM5MzE0MjA3NDYyODozMTk2NDE5${tail}`;
const MID1 = MID('MjA2MDk0MTY4NDQ4NjA3ODQ5MjM4NTk3MjAzMgZDZD');
const MID2 = MID('MzI4ODQ4OTYyMDk3ODI1NzI1NTIzNjg1NzY2NAZDZD');
const MID3 = MID('NDc3MjE3OTg0NTEyNjQ0MjQ5NzAxNDIwMTIxNgZDZD');
const MID4 = MID('NTE5NTQ3ODE3MDg4NjU5NzA1NzQ2NzY5MjgwMAZDZD');
const MID5 = MID('NjAxOTcwOTY5NzIxNzg5Nzk1NjA5NDQxNDA4MAZDZD');
const MID6 = MID('NzIyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNAZDZD');
const CDN = 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=';

const view = (i: NormalizedInteraction) => ({
  type: i.type,
  sourceId: i.sourceId,
  occurredAt: i.occurredAt.toISOString(),
  subject: i.subject,
  bodyText: i.bodyText,
  sourceMeta: i.sourceMeta,
});
type View = ReturnType<typeof view>;
const dm = (
  sourceId: string,
  occurredAt: string,
  bodyText: string | null,
  from: Identity,
  to: Identity,
  extra: Record<string, unknown> = {},
): View => ({
  type: from === ACCOUNT ? 'dm_sent' : 'dm_received',
  sourceId,
  occurredAt,
  subject: null,
  bodyText,
  sourceMeta: { direction: from === ACCOUNT ? 'outbound' : 'inbound', from: [from], to: [to], ...extra },
});

const expected: Record<
  string,
  { interactions: View[]; sourceId: string } | { skip: RegExp; sourceId: string } | { retracted: string[]; sourceId: string }
> = {
  'item-text.json': {
    sourceId: MID1,
    interactions: [dm(MID1, '2024-08-24T08:00:00.123Z', 'Hola! ¿Tienen la chaqueta azul en talla M? 🧥', SOFIA, ACCOUNT)],
  },
  'item-echo.json': {
    sourceId: MID2,
    interactions: [dm(MID2, '2024-08-24T08:05:00.456Z', '¡Hola! Sí, nos quedan dos en talla M. ¿Te reservo una?', ACCOUNT, SOFIA)],
  },
  'body-two-messages-and-read.json': {
    sourceId: 'ig:17841405822304914:1724490012345:32d0820cf98dae0b',
    interactions: [
      dm(MID3, '2024-08-24T09:00:01.000Z', 'Hi! Do you ship to Canada?', LIAM, ACCOUNT, { accountId: '17841405822304914' }),
      dm(MID4, '2024-08-24T09:00:09.500Z', 'Asking about the canvas tote from your last post', LIAM, ACCOUNT, {
        replyTo: { mid: MID3 },
        accountId: '17841405822304914',
      }),
    ],
  },
  'item-attachment-only.json': {
    sourceId: MID5,
    interactions: [
      dm(MID5, '2024-08-24T09:16:40.000Z', null, LIAM, ACCOUNT, {
        attachments: [
          { kind: 'image', url: `${CDN}18042331427512345&signature=AbzQ8xKp3nT2vY7w` },
          { kind: 'video', url: `${CDN}18042331427598765&signature=AbxR2mLq9sU4zW1c` },
        ],
      }),
    ],
  },
  'item-story-reply.json': {
    sourceId: MID6,
    interactions: [
      dm(MID6, '2024-08-24T09:33:20.000Z', 'Love this look 😍 is it in stock?', SOFIA, ACCOUNT, {
        replyTo: { story: { url: `${CDN}17999888777666555&signature=AbStory1`, id: '17999888777666555' } },
      }),
    ],
  },
  'item-postback.json': {
    sourceId: 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OnBvc3RiYWNrLTEZD',
    interactions: [
      dm(
        'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OnBvc3RiYWNrLTEZD',
        '2024-08-24T10:23:20.000Z',
        'Book a fitting',
        SOFIA,
        ACCOUNT,
        { postback: 'BOOK_FITTING' },
      ),
    ],
  },
  'item-reaction.json': { skip: /^reaction \(react ❤️\)$/, sourceId: 'ig:reaction:6428719305487112:17841405822304914:1724486800000' },
  // An unsent message: keyed apart from the message it withdraws, whichever arrives first.
  'item-deleted.json': { retracted: [MID5], sourceId: `ig:deleted:${MID5}` },
  'body-only-read-receipt.json': {
    skip: /^no message in the webhook body: read receipt$/,
    sourceId: 'ig:17841405822304914:1724493000000:d64a6f1f8a583bc0',
  },
};

describe('instagram fixtures', () => {
  it('every fixture has an expectation', () => {
    assert.deepEqual(
      fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort(),
      Object.keys(expected).sort(),
    );
  });

  for (const [file, want] of Object.entries(expected)) {
    it(file, () => {
      const payload = load(file);
      assert.equal(instagram.identify(payload).sourceId, want.sourceId);
      const result = run(payload);
      if ('skip' in want) {
        assert.equal(result.kind, 'skip');
        assert.match((result as { reason: string }).reason, want.skip);
        return;
      }
      if ('retracted' in want) {
        assert.deepEqual(result, { kind: 'interactions', interactions: [], retracted: want.retracted });
        return;
      }
      assert.equal(result.kind, 'interactions');
      const list = (result as { interactions: NormalizedInteraction[] }).interactions;
      assert.deepEqual(list.map(view), want.interactions);
      const items = payload.entry ? ((payload.entry as { messaging: unknown[] }[])[0]?.messaging ?? []) : [payload];
      list.forEach((i, n) => {
        // body_raw: the item itself (plus its entry's id and time when it came in a body).
        const { entry: _entry, ...item } = i.bodyRaw;
        assert.deepEqual(item, items[n]);
        if (payload.entry) assert.deepEqual(i.bodyRaw.entry, { id: '17841405822304914', time: 1724490012345 });
      });
    });
  }
});

describe('instagram ids and shapes', () => {
  it('a body with one message is identified by that message, like the item alone', () => {
    const item = load('item-text.json');
    const body = {
      object: 'instagram',
      entry: [{ id: '17841405822304914', time: 1724486401000, messaging: [item, { ...item, message: undefined, read: { mid: 'x' } }] }],
    };
    assert.deepEqual(instagram.identify(body), instagram.identify(item));
  });

  it('a body counts the items it skips beside its interactions, so the items add up', () => {
    const r = run(load('body-two-messages-and-read.json'));
    assert.equal(r.kind, 'interactions');
    if (r.kind !== 'interactions') return;
    assert.deepEqual([r.interactions.length, r.skipped], [2, 1]);
  });

  it('a derived body id does not depend on key order (it survives a jsonb round trip)', () => {
    const body = load('body-two-messages-and-read.json');
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const reordered = reverseKeys(body);
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(body));
    const shuffled = {
      entry: (body.entry as Record<string, unknown>[]).map((e) => ({ messaging: e.messaging, id: e.id, time: e.time })),
      object: body.object,
    };
    assert.equal(instagram.identify(reordered).sourceId, instagram.identify(body).sourceId);
    assert.equal(instagram.identify(shuffled).sourceId, instagram.identify(body).sourceId);
    assert.notEqual(
      instagram.identify({ ...body, entry: [{ ...(body.entry as object[])[0], time: 1 }] }).sourceId,
      instagram.identify(body).sourceId,
    );
  });

  it('skips unsupported and empty messages, and entries without messaging (comments)', () => {
    assert.deepEqual(run({ ...load('item-text.json'), message: { mid: 'm1', is_unsupported: true } }), {
      kind: 'skip',
      reason: 'unsupported message (message.is_unsupported)',
    });
    assert.deepEqual(run({ ...load('item-text.json'), message: { mid: 'm1', text: ' \u0000 ' } }), {
      kind: 'skip',
      reason: 'empty message: no text, no attachments',
    });
    assert.deepEqual(
      run({ object: 'instagram', entry: [{ id: '1784', time: 1724490012345, changes: [{ field: 'comments', value: {} }] }] }),
      { kind: 'skip', reason: 'no message in the webhook body' },
    );
    assert.equal(run({ ...load('item-postback.json'), postback: { mid: 'p1', payload: 'GET_STARTED' } }).kind, 'skip');
  });
});

describe('instagram invalid payloads', () => {
  const cases: [string, string, RegExp][] = [
    ['message-without-mid.json', 'payload.message.mid', /^invalid Instagram messaging item.*payload\.message\.mid is missing/],
    ['timestamp-not-a-number.json', 'payload.timestamp', /payload\.timestamp expected a number, got "2024-08-24T08:00:00Z"/],
    [
      'timestamp-in-seconds.json',
      'payload.entry[0].messaging[0].timestamp',
      /^invalid Instagram webhook body: .*timestamp 1724490001 .*looks like seconds/,
    ],
    ['not-instagram-object.json', 'payload.object', /payload\.object expected "instagram", got "page"/],
    ['sender-id-not-numeric.json', 'payload.sender.id', /sender\.id is not an Instagram-scoped id/],
  ];
  it('every invalid fixture is tested', () => {
    assert.deepEqual(fs.readdirSync(path.join(dir, 'invalid')).sort(), cases.map((c) => c[0]).sort());
  });
  for (const [file, issuePath, message] of cases) {
    it(file, () => {
      const payload = load(`invalid/${file}`);
      // In a whole body each item stands alone: the bad one is rejected, not the body.
      if (payload.entry && issuePath.includes('messaging')) {
        const result = run(payload);
        assert.equal(result.kind, 'interactions');
        const rejected = (result as { rejected?: { item: string; error: PayloadError }[] }).rejected ?? [];
        assert.equal(rejected.length, 1);
        assert.match(rejected[0]!.error.message, message);
        assert.equal(rejected[0]!.error.issues[0]?.path, issuePath);
        return;
      }
      assert.throws(
        () => run(payload),
        (err: unknown) => {
          assert.ok(err instanceof PayloadError, String(err));
          assert.match(err.message, message);
          assert.equal(err.issues[0]?.path, issuePath);
          return true;
        },
      );
    });
  }
  it('identify() refuses what has no id to give', () => {
    assert.throws(
      () => instagram.identify(load('invalid/message-without-mid.json')),
      (e: unknown) => e instanceof PayloadError && e.issues[0]?.path === 'payload.message.mid',
    );
    assert.throws(() => instagram.identify({ object: 'instagram', entry: [] }), /payload\.entry is missing or empty/);
    assert.throws(() => instagram.identify([1, 2]), PayloadError);
  });
});
