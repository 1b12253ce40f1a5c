// Gmail on fixtures/gmail: every field of every fixture's interaction, the awkward MIME shapes,
// and the dead-letter messages of the invalid ones.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { gmail } from '../src/providers/gmail/index.js';
import { PayloadError, type Identity, type NormalizedInteraction, type NormalizeResult } from '../src/providers/types.js';

const dir = path.join(packageRoot, 'fixtures', 'gmail');
const load = (name: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<string, unknown>;
const run = (payload: unknown): NormalizeResult =>
  gmail.normalize({ id: 'r1', userId: 'u1', provider: 'gmail', sourceId: null, occurredAt: null, payload });
const email = (value: string): Identity => ({ kind: 'email', value });
const ALEX = email('alex.morgan@northwind.example');

function one(result: NormalizeResult): NormalizedInteraction {
  assert.equal(result.kind, 'interactions', JSON.stringify(result));
  assert.equal(result.kind === 'interactions' && result.interactions.length, 1);
  return (result as { interactions: NormalizedInteraction[] }).interactions[0] as NormalizedInteraction;
}
/** Everything but body_raw (checked on its own), the time as ISO text. */
const view = (i: NormalizedInteraction) => ({
  type: i.type,
  sourceId: i.sourceId,
  occurredAt: i.occurredAt.toISOString(),
  subject: i.subject,
  bodyText: i.bodyText,
  sourceMeta: i.sourceMeta,
});
const b64 = (s: string) => Buffer.from(s).toString('base64url');

type Expected = ReturnType<typeof view> | { skip: RegExp };
const inbound = (from: Identity, labels: string[], extra: Record<string, unknown> = {}) => ({
  direction: 'inbound' as const,
  from: [from],
  to: [ALEX],
  labels,
  ...extra,
});

const expected: Record<string, Expected> = {
  'plain-text-single-part.json': {
    type: 'email_received',
    sourceId: '191b5a7c3e2d4f01',
    occurredAt: '2024-09-03T07:14:07.000Z',
    subject: 'Proposal follow-up',
    bodyText:
      "Hi Alex,\n\nThanks for the quick turnaround on the proposal. We'd like to go ahead with the Pro plan for 25 seats.\nCould you send the order form?\n\nCheers,\nMarco",
    sourceMeta: {
      ...inbound(email('marco.bianchi@rossi-design.example'), ['INBOX', 'UNREAD', 'CATEGORY_PERSONAL']),
      threadId: '191b5a7c3e2d4f01',
      messageId: '<CAF3u9Xk2pQ@mail.rossi-design.example>',
      names: { 'marco.bianchi@rossi-design.example': 'Marco Bianchi' },
    },
  },
  'multipart-alternative-display-names.json': {
    type: 'email_received',
    sourceId: '192963b0f1a2c3d4',
    occurredAt: '2024-10-16T17:42:19.000Z',
    subject: 'Re: Q4 numbers 📈',
    bodyText: 'Ciao Alex,\n\nhere are the revised numbers for Q4 — 12% up on last quarter.\n\nSofía',
    sourceMeta: {
      direction: 'inbound',
      from: [email('sofia.rossi@example.com')],
      to: [ALEX, email('zoe@muller.example'), email('team@northwind.example')],
      cc: [email('ana.costa@example.org'), email('ravi@example.net'), email('lea.dubois@example.com'), email('sofia.rossi@example.com')],
      threadId: '1929600e55aa0b1c',
      labels: ['INBOX', 'IMPORTANT', 'CATEGORY_PERSONAL'],
      messageId: '<CAGx7=tq+8Y@mail.gmail.com>',
      names: {
        'sofia.rossi@example.com': 'Sofía Rossi',
        'alex.morgan@northwind.example': 'Morgan, Alex',
        'zoe@muller.example': 'Zoë Müller',
        'ana.costa@example.org': 'Ana (Billing)',
        'lea.dubois@example.com': 'Léa Dubois',
      },
    },
  },
  'nested-mixed-related-attachments.json': {
    type: 'email_received',
    sourceId: '192f4c8e7a6b5d21',
    occurredAt: '2024-11-04T02:05:44.000Z',
    subject: 'Signed contract',
    bodyText:
      'Hello Alex,\n\nPlease find the signed contract attached. Our logo for the onboarding deck is inline below.\n\nBest,\nKenji Tanaka\nSakura Labs',
    sourceMeta: {
      ...inbound(email('kenji@sakura-labs.example'), ['INBOX', 'CATEGORY_PERSONAL']),
      threadId: '192f4c8e7a6b5d21',
      attachments: [
        { name: 'sakura-logo.png', mimeType: 'image/png', size: 18231, id: 'ANGjdJ8wQm2Kf0hZ7yq3rX1' },
        { name: 'Contract – Sakura Labs (signed).pdf', mimeType: 'application/pdf', size: 482113, id: 'ANGjdJ9pL4cVx2Tn5sEo8Ya' },
      ],
      messageId: '<20241104020544.9F3C1A0B2@mx.sakura-labs.example>',
      names: { 'kenji@sakura-labs.example': 'Kenji Tanaka', 'alex.morgan@northwind.example': 'Alex Morgan' },
    },
  },
  'html-only.json': {
    type: 'email_received',
    sourceId: '19330f2a11b2c3d4',
    occurredAt: '2024-11-15T06:00:12.000Z',
    subject: 'Your invoice INV-2024-0412',
    bodyText:
      "Invoice INV-2024-0412\n\nDear Alex,\n\nYour invoice of €1,250.00 is due on 30\u00a0November. View invoice\n\n * Pro plan × 25 seats\n * SSO add-on\n\nQuestions? Reply to this e-mail & we'll help.",
    sourceMeta: {
      ...inbound(email('billing@verde-foods.example'), ['INBOX', 'CATEGORY_UPDATES']),
      threadId: '19330f2a11b2c3d4',
      messageId: '<0100019329a1b2c3-inv-0412@email.verde-foods.example>',
      names: { 'billing@verde-foods.example': 'Verde Foods Billing' },
    },
  },
  'iso-8859-1-body.json': {
    type: 'email_received',
    sourceId: '19350a1b2c3d4e5f',
    occurredAt: '2024-11-21T15:20:00.000Z',
    subject: 'Merci pour la démo',
    bodyText:
      "Bonjour Alex,\n\nMerci pour la démo de jeudi. Le café était excellent, et l'équipe est très intéressée.\nPouvez-vous m'envoyer le devis ? Budget : 2 000 £ par an.\n\nCordialement,\nRené Dupré",
    sourceMeta: {
      ...inbound(email('rene.dupre@atelier-dubois.example'), ['INBOX', 'UNREAD']),
      threadId: '19350a1b2c3d4e5f',
      messageId: '<5f1e2d3c.4b5a@atelier-dubois.example>',
      names: { 'rene.dupre@atelier-dubois.example': 'René Dupré' },
    },
  },
  'shift-jis-body.json': {
    type: 'email_received',
    sourceId: '1936a7b8c9d0e1f2',
    occurredAt: '2024-11-26T01:30:00.000Z',
    subject: '見積書について',
    bodyText:
      'アレックス様\n\nいつもお世話になっております。\n見積書を拝受しました。来週の打ち合わせでご説明いただけますか。\n\n田中 健二\nさくらラボ株式会社',
    sourceMeta: {
      ...inbound(email('kenji@sakura-labs.example'), ['INBOX', 'CATEGORY_PERSONAL']),
      threadId: '1936a7b8c9d0e1f2',
      messageId: '<20241126103000.A1B2@sakura-labs.example>',
      names: { 'kenji@sakura-labs.example': '田中 健二' },
    },
  },
  'iso-2022-jp-body.json': {
    type: 'email_received',
    sourceId: '1936f0e1d2c3b4a5',
    occurredAt: '2024-11-27T00:00:00.000Z',
    subject: '契約書の件',
    bodyText: 'アレックス様\n\n契約書に署名しました。ご確認ください。\n\n佐藤 由紀',
    sourceMeta: {
      ...inbound(email('yuki.sato@example.jp'), ['INBOX']),
      threadId: '1936f0e1d2c3b4a5',
      messageId: '<202411270900.C3D4@example.jp>',
      names: { 'yuki.sato@example.jp': '佐藤 由紀' },
    },
  },
  'sent-with-bcc.json': {
    type: 'email_sent',
    sourceId: '1937321a0b9c8d7e',
    occurredAt: '2024-11-28T22:02:11.000Z',
    subject: 'Summary of our call',
    bodyText:
      'Hi Priya,\n\nGreat speaking with you today. As promised, here is the summary:\n- 25 seats, Pro plan\n- SSO included\n- Annual billing\n\nBest,\nAlex',
    sourceMeta: {
      direction: 'outbound',
      from: [ALEX],
      to: [email('priya.sharma@example.com')],
      cc: [email('sales@northwind.example')],
      bcc: [email('crm-log@northwind.example')],
      threadId: '19372f00aa11bb22',
      labels: ['SENT'],
      messageId: '<CAHs9f2=Xy7@mail.gmail.com>',
      names: { 'alex.morgan@northwind.example': 'Alex Morgan', 'priya.sharma@example.com': 'Priya Sharma' },
    },
  },
  'forwarded-rfc822-html-body.json': {
    type: 'email_received',
    sourceId: '19386b2c3d4e5f60',
    occurredAt: '2024-12-02T08:15:30.000Z',
    subject: 'Fwd: complaint about order #4471',
    bodyText: 'See the customer complaint below — can you call them back today?\n\nThanks,\nOlu',
    sourceMeta: {
      ...inbound(email('olu@okafor-sons.example'), ['INBOX', 'UNREAD', 'IMPORTANT']),
      threadId: '19386b2c3d4e5f60',
      attachments: [{ name: 'Original message.eml', mimeType: 'message/rfc822', size: 5310, id: 'ANGjdJ_rfc822_Qm9vT3' }],
      messageId: '<CAB1x2y3z4@mail.okafor-sons.example>',
      names: { 'olu@okafor-sons.example': 'Olu Okafor' },
    },
  },
  'apple-mail-split-text.json': {
    type: 'email_received',
    sourceId: '1938c0d1e2f3a4b5',
    occurredAt: '2024-12-03T12:45:00.000Z',
    subject: 'Damaged delivery',
    bodyText: 'Here is the photo of the damaged pallet:\n\nCan we get a replacement by Friday?\n\nThanks,\nIngrid',
    sourceMeta: {
      ...inbound(email('ingrid@bluefin-logistics.example'), ['INBOX']),
      threadId: '1938c0d1e2f3a4b5',
      attachments: [{ name: 'IMG_0042.jpeg', mimeType: 'image/jpeg', size: 1044211, id: 'ANGjdJ_img0042_xyz' }],
      messageId: '<A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF@bluefin-logistics.example>',
      names: { 'ingrid@bluefin-logistics.example': 'Ingrid Andersson' },
    },
  },
  'attachment-only-snippet.json': {
    type: 'email_received',
    sourceId: '19391a2b3c4d5e6f',
    occurredAt: '2024-12-04T07:00:00.000Z',
    subject: 'Q4 forecast',
    bodyText: `Forecast & pipeline "Q4" <draft> 'v2'`,
    sourceMeta: {
      ...inbound(email('wei@example.net'), ['INBOX']),
      threadId: '19391a2b3c4d5e6f',
      attachments: [
        {
          name: 'Q4 forecast.xlsx',
          mimeType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
          size: 22910,
          id: 'ANGjdJ_xlsx_Q4',
        },
      ],
      messageId: '<q4-forecast-7781@example.net>',
      names: { 'wei@example.net': 'Wei Haddad' },
    },
  },
  'crlf-nul-invalid-utf8.json': {
    type: 'email_received',
    sourceId: '1939a0b1c2d3e4f5',
    occurredAt: '2024-12-05T09:00:00.000Z',
    subject: 'Export issue',
    bodyText: 'Hi Alex,\n\nThe export contains a stray NUL byte.\nSecond line.\nBad byte: \ufffd end',
    sourceMeta: {
      ...inbound(email('lukas@nordlicht.example'), ['INBOX']),
      threadId: '1939a0b1c2d3e4f5',
      messageId: '<exp-issue-1@nordlicht.example>',
      names: { 'lukas@nordlicht.example': 'Lukas Novák' },
    },
  },
  'draft.json': { skip: /draft/ },
};

describe('gmail fixtures', () => {
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
      const ids = gmail.identify(payload);
      assert.equal(ids.sourceId, payload.id);
      assert.equal(ids.occurredAt?.getTime(), Number(payload.internalDate));
      if ('skip' in want) {
        assert.equal(result.kind, 'skip');
        assert.match((result as { reason: string }).reason, want.skip);
        return;
      }
      const i = one(result);
      assert.deepEqual(view(i), want);
      const top = payload.payload as { headers: unknown[] };
      assert.deepEqual(i.bodyRaw, {
        id: payload.id,
        threadId: payload.threadId,
        labelIds: payload.labelIds,
        historyId: payload.historyId,
        internalDate: payload.internalDate,
        headers: top.headers,
      });
    });
  }
});

describe('gmail shapes', () => {
  it('reads header names case-insensitively', () => {
    const payload = load('multipart-alternative-display-names.json');
    const p = payload.payload as { headers: { name: string; value: string }[] };
    p.headers = p.headers.map((h) => ({
      ...h,
      name: h.name === 'Subject' ? 'SUBJECT' : h.name === 'From' ? 'from' : h.name === 'Content-Type' ? 'content-TYPE' : h.name,
    }));
    const i = one(run(payload));
    assert.equal(i.subject, 'Re: Q4 numbers 📈');
    assert.deepEqual(i.sourceMeta.from, [email('sofia.rossi@example.com')]);
  });

  it('finds text/plain at any depth, beyond the unrolled schema levels too', () => {
    let part: Record<string, unknown> = {
      mimeType: 'text/plain',
      headers: [{ name: 'Content-Type', value: 'text/plain; charset=utf-8' }],
      body: { size: 5, data: b64('deep body') },
    };
    for (let d = 0; d < 14; d++)
      part = {
        mimeType: d % 2 ? 'multipart/mixed' : 'multipart/related',
        body: { size: 0 },
        parts: [{ mimeType: 'text/html', filename: 'x.html', body: { attachmentId: `a${d}` } }, part],
      };
    const i = one(
      run({
        id: 'deep1',
        internalDate: '1730000000000',
        labelIds: ['INBOX'],
        payload: { ...part, headers: [{ name: 'Subject', value: 'deep' }] },
      }),
    );
    assert.equal(i.bodyText, 'deep body');
    assert.equal(i.sourceMeta.attachments?.length, 14);
  });

  it('names the path of bad data deep in the tree', () => {
    let part: Record<string, unknown> = { mimeType: 'text/plain', body: { data: 'not base64!' } };
    for (let d = 0; d < 12; d++) part = { mimeType: 'multipart/mixed', parts: [part] };
    assert.throws(
      () => run({ id: 'deep2', internalDate: '1730000000000', payload: part }),
      (err: unknown) =>
        err instanceof PayloadError &&
        err.issues[0]?.path === `payload.payload${'.parts[0]'.repeat(12)}.body.data` &&
        /not base64url/.test(err.message),
    );
  });

  it('prefers text/plain over text/html, and uses html-to-text only without it', () => {
    const alt = (plain: string | null) => ({
      id: 'alt',
      internalDate: '1730000000000',
      payload: {
        mimeType: 'multipart/alternative',
        parts: [
          ...(plain === null ? [] : [{ mimeType: 'text/plain', body: { data: b64(plain) } }]),
          { mimeType: 'text/html', body: { data: b64('<p>from <b>html</b></p>') } },
        ],
      },
    });
    assert.equal(one(run(alt('from plain'))).bodyText, 'from plain');
    assert.equal(one(run(alt('  \r\n '))).bodyText, 'from html', 'an empty text/plain part is no body');
    assert.equal(one(run(alt(null))).bodyText, 'from html');
  });

  it('never takes the text of a forwarded message (message/rfc822) as the body, even without a filename', () => {
    const inner = { mimeType: 'multipart/alternative', parts: [{ mimeType: 'text/plain', body: { data: b64('inner text') } }] };
    const i = one(
      run({
        id: 'fwd',
        internalDate: '1730000000000',
        snippet: 'outer snippet',
        payload: { mimeType: 'multipart/mixed', parts: [{ mimeType: 'message/rfc822', body: { size: 99 }, parts: [inner] }] },
      }),
    );
    assert.equal(i.bodyText, 'outer snippet');
    assert.deepEqual(i.sourceMeta.attachments, [{ mimeType: 'message/rfc822', size: 99 }]);
  });

  it('does not take a .txt attachment as the body', () => {
    const i = one(
      run({
        id: 'txt',
        internalDate: '1730000000000',
        snippet: 'the snippet',
        payload: {
          mimeType: 'multipart/mixed',
          parts: [{ mimeType: 'text/plain', filename: 'notes.txt', body: { data: b64('attached notes'), size: 14 } }],
        },
      }),
    );
    assert.equal(i.bodyText, 'the snippet');
    assert.deepEqual(i.sourceMeta.attachments, [{ name: 'notes.txt', mimeType: 'text/plain', size: 14 }]);
  });

  it('decodes unlabelled and unknown charsets: UTF-8 if valid, else windows-1252', () => {
    const mail = (bytes: Buffer, contentType?: string) => ({
      id: 'cs',
      internalDate: '1730000000000',
      payload: {
        mimeType: 'text/plain',
        headers: contentType ? [{ name: 'Content-Type', value: contentType }] : [],
        body: { data: bytes.toString('base64url') },
      },
    });
    assert.equal(one(run(mail(Buffer.from('Grüße', 'utf8')))).bodyText, 'Grüße');
    assert.equal(one(run(mail(Buffer.from('Grüße', 'latin1')))).bodyText, 'Grüße');
    assert.equal(one(run(mail(Buffer.from('Grüße', 'latin1'), 'text/plain; charset=x-unknown-charset'))).bodyText, 'Grüße');
    assert.equal(one(run(mail(Buffer.from([0x80, 0x20, 0x35]), 'text/plain; charset=windows-1252'))).bodyText, '€ 5');
    assert.equal(one(run(mail(Buffer.from('Grüße', 'utf8'), 'text/plain; charset="UTF-8"; format=flowed'))).bodyText, 'Grüße');
  });

  it('accepts internalDate as a number, and standard base64', () => {
    const i = one(
      run({
        id: 'n',
        internalDate: 1730000000000,
        payload: { mimeType: 'text/plain', body: { data: Buffer.from('??>>').toString('base64') } },
      }),
    );
    assert.equal(i.occurredAt.toISOString(), '2024-10-27T03:33:20.000Z');
    assert.equal(i.bodyText, '??>>');
    assert.equal(i.subject, null);
    assert.deepEqual(i.sourceMeta, { direction: 'inbound', from: [], to: [] });
  });
});

describe('gmail invalid payloads', () => {
  const cases: [string, string, RegExp][] = [
    ['missing-id.json', 'payload.id', /payload\.id is missing/],
    ['bad-internal-date.json', 'payload.internalDate', /internalDate expected milliseconds since the epoch.*"yesterday"/],
    ['internal-date-in-seconds.json', 'payload.internalDate', /looks like seconds/],
    ['headers-not-a-list.json', 'payload.payload.headers', /payload\.payload\.headers expected an array, got an object/],
    ['bad-base64-body.json', 'payload.payload.parts[1].body.data', /parts\[1\]\.body\.data is not base64url data/],
  ];
  it('every invalid fixture is tested', () => {
    assert.deepEqual(fs.readdirSync(path.join(dir, 'invalid')).sort(), cases.map((c) => c[0]).sort());
  });
  for (const [file, issuePath, message] of cases) {
    it(file, () => {
      const payload = load(`invalid/${file}`);
      assert.throws(
        () => run(payload),
        (err: unknown) => {
          assert.ok(err instanceof PayloadError, String(err));
          assert.match(err.message, /^invalid Gmail message/);
          assert.match(err.message, message);
          assert.equal(err.issues[0]?.path, issuePath);
          return true;
        },
      );
    });
  }
  it('identify() refuses only a payload without an id', () => {
    assert.throws(
      () => gmail.identify(load('invalid/missing-id.json')),
      (e: unknown) => e instanceof PayloadError && e.issues[0]?.path === 'payload.id',
    );
    assert.throws(() => gmail.identify('a string'), PayloadError);
    assert.throws(() => gmail.identify({ id: 42 }), /expected a non-empty string id, got number 42/);
    assert.deepEqual(gmail.identify(load('invalid/bad-internal-date.json')), { sourceId: '191b5a7c3e2d4f01', occurredAt: null });
  });
});
