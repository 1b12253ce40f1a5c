// Web forms on fixtures/webform: every field, the rendered body, identities found in fields.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { PayloadError, type Identity, type NormalizedInteraction, type NormalizeResult } from '../src/providers/types.js';
import { webform } from '../src/providers/webform/index.js';

const dir = path.join(packageRoot, 'fixtures', 'webform');
const load = (name: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<string, unknown>;
const run = (payload: unknown): NormalizeResult =>
  webform.normalize({ id: 'r1', userId: 'u1', provider: 'webform', sourceId: null, occurredAt: null, payload });
const email = (value: string): Identity => ({ kind: 'email', value });
const phone = (value: string): Identity => ({ kind: 'phone', value });

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

const expected: Record<string, ReturnType<typeof view>> = {
  'contact-with-message.json': {
    type: 'form_submitted',
    sourceId: 'sub_01J9ZK4M7Q3V8X2N6B5C1D0E9F',
    occurredAt: '2024-10-02T12:35:12.000Z',
    subject: 'Contact us',
    bodyText: "Buongiorno! We'd like a demo of the inbox for our team of 12.\nAre Thursdays possible?",
    sourceMeta: {
      direction: 'inbound',
      from: [email('sofia.rossi@example.com'), phone('+393471234567')],
      to: [],
      formId: 'contact-us',
      formName: 'Contact us',
      names: { 'sofia.rossi@example.com': 'Sofía Rossi', '+393471234567': 'Sofía Rossi' },
    },
  },
  'quote-without-message.json': {
    type: 'form_submitted',
    sourceId: '48213',
    occurredAt: '2024-10-03T08:00:00.000Z',
    subject: 'Request a quote',
    // Sorted by key, case-insensitively; empty and null fields left out; arrays and objects rendered.
    bodyText:
      'address: {"city":"Tokyo","country":"JP"}\nbudget: 20k+\nFull Name: Kenji Tanaka\nnewsletter: false\nproducts: CRM, Inbox, Reports\nseats: 40\nworkEmail: kenji@sakura-labs.example',
    sourceMeta: {
      direction: 'inbound',
      from: [email('kenji@sakura-labs.example')],
      to: [],
      formId: '7',
      formName: 'Request a quote',
      names: { 'kenji@sakura-labs.example': 'Kenji Tanaka' },
    },
  },
  'unicode-and-nul.json': {
    type: 'form_submitted',
    sourceId: 'f-2024-10-04-0001',
    occurredAt: '2024-10-05T06:59:59.250Z',
    subject: 'Support 🛟 Kundenservice',
    bodyText: 'Grüße aus Köln!\nDas Formular schickt ein NUL-Zeichen: hier.\nשלום 👋 مرحبا — 你好',
    sourceMeta: {
      direction: 'inbound',
      from: [email('zoe@muller.example')],
      to: [],
      formId: 'support',
      formName: 'Support 🛟 Kundenservice',
      names: { 'zoe@muller.example': 'Zoë Müller' },
    },
  },
  'national-phone-comments.json': {
    type: 'form_submitted',
    sourceId: 'wf_9c1d2e3f',
    occurredAt: '2024-10-05T08:15:00.000Z',
    subject: null,
    bodyText: 'Please call me back after 5pm.',
    sourceMeta: {
      direction: 'inbound',
      from: [phone('+442079460958'), phone('+447400123456')],
      to: [],
      formId: 'callback',
      names: { '+442079460958': 'Olu O’Brien', '+447400123456': 'Olu O’Brien' },
    },
  },
};

describe('webform fixtures', () => {
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
      const i = one(run(payload));
      assert.deepEqual(view(i), want);
      assert.deepEqual(webform.identify(payload), { sourceId: want.sourceId, occurredAt: new Date(want.occurredAt) });
      // body_raw: the whole submission, NUL removed (keys too), nothing else changed.
      assert.deepEqual(i.bodyRaw, JSON.parse(JSON.stringify(payload).replaceAll('\\u0000', '')));
      assert.ok(!JSON.stringify(i).includes('\\u0000'), 'no NUL anywhere');
    });
  }
});

describe('webform shapes', () => {
  it('renders the same body whatever the key order (jsonb reorders keys)', () => {
    const payload = load('quote-without-message.json');
    const fields = payload.fields as Record<string, unknown>;
    const reversed = Object.fromEntries(Object.entries(fields).reverse());
    assert.equal(one(run({ ...payload, fields: reversed })).bodyText, expected['quote-without-message.json']?.bodyText);
  });

  it('takes message, then comments, comment, body… case-insensitively; empty ones do not count', () => {
    const base = { id: 'x', form_id: 'f', submitted_at: '2024-10-05T09:15:00Z' };
    assert.equal(one(run({ ...base, fields: { Body: 'the body', comments: 'the comments' } })).bodyText, 'the comments');
    assert.equal(one(run({ ...base, fields: { MESSAGE: '  ', comment: 'the comment' } })).bodyText, 'the comment');
    assert.equal(one(run({ ...base, fields: {} })).bodyText, null);
  });

  it('finds identities under many field names, skipping what is not valid', () => {
    const i = one(
      run({
        id: 'x',
        form_id: 'f',
        submitted_at: '2024-10-05T09:15:00Z',
        fields: {
          workEmail: 'A@Example.com',
          'e-mail': 'b@example.com',
          emails: ['c@example.com', 'A@example.com'],
          mailing_address: 'd@example.com',
          mobile: '+1 415 555 1234',
          tel: '415-555-0000',
          cell_phone: 'call me',
          hotel: '+14155559999',
        },
      }),
    );
    // In key order (sorted, case-insensitively): e-mail, emails, workEmail; then phones.
    assert.deepEqual(i.sourceMeta.from, [email('b@example.com'), email('c@example.com'), email('a@example.com'), phone('+14155551234')]);
    assert.equal(i.sourceMeta.names, undefined);
  });

  it('accepts offsets in every ISO 8601 spelling, and fractions', () => {
    const at = (submitted_at: string) => one(run({ id: 'x', form_id: 'f', submitted_at, fields: {} })).occurredAt.toISOString();
    assert.equal(at('2024-10-05T09:15:00Z'), '2024-10-05T09:15:00.000Z');
    assert.equal(at('2024-10-05 09:15:00.5+0530'), '2024-10-05T03:45:00.500Z');
    assert.equal(at('2024-10-05T09:15-03:00'), '2024-10-05T12:15:00.000Z');
    assert.equal(at('2024-12-31T23:59:60Z'), '2024-12-31T23:59:59.999Z');
  });
});

describe('webform invalid payloads', () => {
  const cases: [string, string, RegExp][] = [
    ['missing-id.json', 'payload.id', /^invalid web form submission: payload\.id is missing/],
    ['date-without-offset.json', 'payload.submitted_at', /submitted_at has no UTC offset.*"2024-10-02T14:35:12"/],
    ['impossible-date.json', 'payload.submitted_at', /submitted_at is not a valid date-time: "2024-02-30T10:00:00Z"/],
    ['fields-not-an-object.json', 'payload.fields', /payload\.fields expected an object, got "email=a@example\.com&message=hi"/],
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
          assert.match(err.message, message);
          assert.equal(err.issues[0]?.path, issuePath);
          return true;
        },
      );
    });
  }
  it('refuses dates without a time, and nonsense', () => {
    for (const bad of ['2024-10-05', 'yesterday', '2024-13-01T00:00:00Z', '2024-10-05T25:00:00Z', '2024-10-05T09:15:00+25:00', '']) {
      assert.throws(
        () => run({ id: 'x', form_id: 'f', submitted_at: bad, fields: {} }),
        (e: unknown) => e instanceof PayloadError && e.issues[0]?.path === 'payload.submitted_at',
        bad,
      );
    }
  });
  it('identify() refuses only a payload without an id', () => {
    assert.throws(() => webform.identify(load('invalid/missing-id.json')), /payload\.id is missing/);
    assert.deepEqual(webform.identify(load('invalid/date-without-offset.json')), { sourceId: 'sub_no_offset', occurredAt: null });
  });
});
