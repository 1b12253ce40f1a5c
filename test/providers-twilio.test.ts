// Twilio on fixtures/twilio: webhooks and REST resources, every field, skips and dead letters.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { twilio } from '../src/providers/twilio/index.js';
import { PayloadError, type Identity, type NormalizedInteraction, type NormalizeResult } from '../src/providers/types.js';

const dir = path.join(packageRoot, 'fixtures', 'twilio');
const load = (name: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<string, unknown>;
const RECEIVED = new Date('2025-01-15T12:00:00Z'); // the raw event's occurred_at (import time for webhooks)
const run = (payload: unknown, occurredAt: Date | null = RECEIVED): NormalizeResult =>
  twilio.normalize({ id: 'r1', userId: 'u1', provider: 'twilio', sourceId: null, occurredAt, payload });
const phone = (value: string): Identity => ({ kind: 'phone', value });
const AC = 'AC3f9b2e7d41c6a8e05b7d93c1f4a2e6b8';
const MG = 'MG5d1f7e3a9c2b4d6e8f0a1b3c5d7e9f21';
const OURS = phone('+14155550142');

function one(result: NormalizeResult): NormalizedInteraction {
  assert.equal(result.kind, 'interactions', JSON.stringify(result));
  const list = (result as { interactions: NormalizedInteraction[] }).interactions;
  assert.equal(list.length, 1);
  return list[0] as NormalizedInteraction;
}
const view = (i: NormalizedInteraction) => ({
  type: i.type,
  sourceId: i.sourceId,
  occurredAt: i.occurredAt.toISOString(),
  subject: i.subject,
  bodyText: i.bodyText,
  sourceMeta: i.sourceMeta,
});
type Expected = ReturnType<typeof view> | { skip: RegExp };
const media = (sid: string, me: string, mimeType: string) => ({
  url: `https://api.twilio.com/2010-04-01/Accounts/${AC}/Messages/${sid}/Media/${me}`,
  mimeType,
  id: me,
});

const expected: Record<string, Expected> = {
  'webhook-sms-inbound.json': {
    type: 'sms_received',
    sourceId: 'SM8f2c1e4a7b3d9e6f0a5c2b8d1e7f4a3c',
    occurredAt: '2025-01-15T12:00:00.000Z',
    subject: null,
    bodyText: "Hi, this is Sofía from Rossi Design. Can we move tomorrow's call to 3pm? 🙏",
    sourceMeta: {
      direction: 'inbound',
      from: [phone('+12125550199')],
      to: [OURS],
      channel: 'sms',
      accountSid: AC,
      messagingServiceSid: MG,
    },
  },
  'webhook-whatsapp-media.json': {
    type: 'whatsapp_received',
    sourceId: 'MM4b7e1c9a2d5f8e3b6c0a9d2e5f8b1c4a',
    occurredAt: '2025-01-15T12:00:00.000Z',
    subject: null,
    bodyText: 'Photos of the damaged parcel',
    sourceMeta: {
      direction: 'inbound',
      from: [phone('+4915112345678')],
      to: [OURS],
      channel: 'whatsapp',
      accountSid: AC,
      attachments: [
        media('MM4b7e1c9a2d5f8e3b6c0a9d2e5f8b1c4a', 'ME1a2b3c4d5e6f708192a3b4c5d6e7f809', 'image/jpeg'),
        media('MM4b7e1c9a2d5f8e3b6c0a9d2e5f8b1c4a', 'ME9f8e7d6c5b4a39281706f5e4d3c2b1a0', 'image/png'),
      ],
      names: { '+4915112345678': 'Zoë' },
    },
  },
  'webhook-status-callback.json': { skip: /^status callback \(MessageStatus=delivered\)/ },
  'rest-inbound-sms.json': {
    type: 'sms_received',
    sourceId: 'SM1c5e9a3d7b2f6e0a4c8d2b6f0e4a8c2d',
    occurredAt: '2023-08-24T05:01:45.000Z',
    subject: null,
    bodyText: 'Yes, Thursday 10:00 UK time works for me.\nThanks!',
    sourceMeta: { direction: 'inbound', from: [phone('+447400123456')], to: [OURS], channel: 'sms', status: 'received', accountSid: AC },
  },
  'rest-outbound-api.json': {
    type: 'sms_sent',
    sourceId: 'SM7e3a9c5b1d8f2e6a0c4b8d2f6a0e4c8b',
    occurredAt: '2023-08-25T16:30:02.000Z',
    subject: null,
    bodyText: 'Hola Mateo, tu pedido #4471 sale hoy. ¡Gracias!',
    sourceMeta: {
      direction: 'outbound',
      from: [OURS],
      to: [phone('+34612345678')],
      channel: 'sms',
      status: 'delivered',
      accountSid: AC,
      messagingServiceSid: MG,
    },
  },
  'rest-whatsapp-outbound-reply-no-date-sent.json': {
    type: 'whatsapp_sent',
    sourceId: 'SM0d4b8f2a6c1e5d9b3f7a1c5e9b3d7f1a',
    occurredAt: '2023-08-28T07:45:10.000Z',
    subject: null,
    bodyText: 'Ciao Luca! La consegna è confermata per lunedì.',
    sourceMeta: {
      direction: 'outbound',
      from: [OURS],
      to: [phone('+393471234567')],
      channel: 'whatsapp',
      status: 'queued',
      accountSid: AC,
    },
  },
  'rest-inbound-mms.json': {
    type: 'sms_received',
    sourceId: 'MM2e6a0c4b8d2f6a0e4c8b2d6f0a4e8c2b',
    occurredAt: '2023-08-29T18:12:33.000Z',
    subject: null,
    bodyText: null,
    sourceMeta: {
      direction: 'inbound',
      from: [phone('+12125550199')],
      to: [OURS],
      channel: 'sms',
      status: 'received',
      accountSid: AC,
      numMedia: 1,
      mediaListUri: `/2010-04-01/Accounts/${AC}/Messages/MM2e6a0c4b8d2f6a0e4c8b2d6f0a4e8c2b/Media.json`,
    },
  },
  'rest-scheduled.json': { skip: /^message not sent \(status=scheduled\)$/ },
};

describe('twilio fixtures', () => {
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
      const result = run(payload);
      const webhook = payload.sid === undefined;
      const ids = twilio.identify(payload);
      // A status callback is keyed apart from the message it reports on.
      const status = webhook && payload.Body === undefined ? (payload.MessageStatus as string | undefined) : undefined;
      assert.equal(ids.sourceId, webhook ? `${payload.MessageSid}${status ? `:status:${status}` : ''}` : payload.sid);
      assert.equal(ids.occurredAt === null, webhook, 'webhooks carry no time; REST resources do');
      if ('skip' in want) {
        assert.equal(result.kind, 'skip');
        assert.match((result as { reason: string }).reason, want.skip);
        return;
      }
      const i = one(result);
      assert.deepEqual(view(i), want);
      if (!webhook) assert.equal(ids.occurredAt?.toISOString(), want.occurredAt);
      // body_raw: the whole payload, as it came.
      assert.deepEqual(i.bodyRaw, payload);
    });
  }
});

describe('twilio shapes', () => {
  it('a webhook needs the raw event time', () => {
    assert.throws(
      () => run(load('webhook-sms-inbound.json'), null),
      (e: unknown) => e instanceof PayloadError && e.issues[0]?.path === 'occurred_at' && /no time of its own/.test(e.message),
    );
  });

  it('a REST resource with no dates at all uses the raw event time', () => {
    const p = { ...load('rest-inbound-sms.json'), date_sent: null, date_created: null };
    assert.equal(one(run(p)).occurredAt.toISOString(), RECEIVED.toISOString());
    assert.throws(() => run(p, null), /date_sent is missing, and so is date_created/);
  });

  it('accepts ISO 8601 dates from exports that converted them, and numeric counts', () => {
    const p = { ...load('rest-outbound-api.json'), date_sent: '2023-08-25T18:30:02+02:00', num_media: 0, num_segments: 1 };
    assert.equal(one(run(p)).occurredAt.toISOString(), '2023-08-25T16:30:02.000Z');
  });

  it('skips canceled messages and keeps failed ones', () => {
    assert.equal(run({ ...load('rest-outbound-api.json'), status: 'canceled' }).kind, 'skip');
    const failed = one(run({ ...load('rest-outbound-api.json'), status: 'failed', error_code: 30007 }));
    assert.equal(failed.sourceMeta.status, 'failed');
    assert.equal(failed.sourceMeta.errorCode, 30007);
  });

  it('keeps a message from a short code, without a phone identity', () => {
    const i = one(run({ ...load('webhook-sms-inbound.json'), From: '22395' }));
    assert.deepEqual(i.sourceMeta.from, []);
    assert.equal(i.type, 'sms_received');
  });

  it('reads WhatsApp locations and NUL in the body', () => {
    const i = one(
      run({
        ...load('webhook-whatsapp-media.json'),
        NumMedia: '0',
        MediaUrl0: undefined,
        MediaUrl1: undefined,
        Body: 'here\u0000 I am',
        Latitude: '52.52',
        Longitude: '13.405',
        Address: 'Berlin',
      }),
    );
    assert.equal(i.bodyText, 'here I am');
    assert.deepEqual(i.sourceMeta.location, { latitude: '52.52', longitude: '13.405', address: 'Berlin' });
    assert.equal(i.sourceMeta.attachments, undefined);
  });
});

describe('twilio invalid payloads', () => {
  const cases: [string, string, RegExp][] = [
    ['missing-sid.json', 'payload.MessageSid', /MessageSid is missing, and so is sid/],
    ['bad-date-sent.json', 'payload.date_sent', /date_sent has an unknown month "Nop"/],
    [
      'unknown-direction.json',
      'payload.direction',
      /direction expected one of "inbound", "outbound-api", "outbound-call", "outbound-reply", got "sideways"/,
    ],
    ['to-not-a-string.json', 'payload.to', /payload\.to expected a string, got number 14155550142/],
    ['webhook-missing-from.json', 'payload.From', /payload\.From is missing/],
  ];
  it('every invalid fixture is tested', () => {
    assert.deepEqual(fs.readdirSync(path.join(dir, 'invalid')).sort(), cases.map((c) => c[0]).sort());
  });
  for (const [file, issuePath, message] of cases) {
    it(file, () => {
      assert.throws(
        () => run(load(`invalid/${file}`)),
        (err: unknown) => {
          assert.ok(err instanceof PayloadError, String(err));
          assert.match(err.message, /^invalid Twilio /);
          assert.match(err.message, message);
          assert.equal(err.issues[0]?.path, issuePath);
          return true;
        },
      );
    });
  }
  it('identify() refuses a payload with neither MessageSid nor sid', () => {
    assert.throws(() => twilio.identify(load('invalid/missing-sid.json')), PayloadError);
    assert.throws(() => twilio.identify({ sid: 42 }), /payload\.sid expected a non-empty string id, got number 42/);
    assert.deepEqual(twilio.identify(load('invalid/bad-date-sent.json')), {
      sourceId: 'SM4f8b2d6a0c4e8b2f6d0a4c8e2b6f0d4a',
      occurredAt: null,
    });
  });
});
