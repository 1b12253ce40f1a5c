// resolve: interactions made by normalize from realistic payloads are linked to contacts by their
// canonical counterpart identities; unknown people are created once, ambiguity is never guessed.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { createResolveStage, type ResolveOptions } from '../src/stages/resolve.js';
import { createContactWithIdentities, enqueueUnresolved } from '../src/stages/resolve-sql.js';
import { runCli } from './support/cli.js';
import { migratedDb, onServer } from './support/db.js';
import { loadEvents, USER_A, USER_B } from './support/events.js';

const normalize = (db: Db) =>
  runStage(normalizeStage, { db, clock: systemClock, logger: createMemoryLogger(), range: parseRange({}, systemClock) });
const resolve = (db: Db, options: Partial<ResolveOptions> = {}, flags: RangeFlags = {}, workers = 1) =>
  runStage(createResolveStage({ createContacts: false, ...options }), {
    db,
    clock: systemClock,
    logger: createMemoryLogger(),
    range: parseRange(flags, systemClock),
    workers,
  });

async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

let seq = 0;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

/** A Gmail users.messages resource (format=full) with a text/plain body. */
export function gmailMessage(h: {
  from: string;
  to: string;
  cc?: string;
  subject: string;
  body?: string;
  sent?: boolean;
  at?: number;
}): Record<string, unknown> {
  const id = `18f${(++seq).toString(16).padStart(13, '0')}`;
  const headers = [
    { name: 'From', value: h.from },
    { name: 'To', value: h.to },
    ...(h.cc ? [{ name: 'Cc', value: h.cc }] : []),
    { name: 'Subject', value: h.subject },
  ];
  return {
    id,
    threadId: id,
    labelIds: h.sent ? ['SENT'] : ['INBOX'],
    internalDate: String(h.at ?? 1_725_000_000_000 + seq * 60_000),
    payload: { mimeType: 'text/plain', headers, body: { data: b64(h.body ?? `Message ${seq}`) } },
  };
}

/** A Twilio incoming-message webhook (SMS, or WhatsApp with whatsapp: addresses). */
export function twilioWebhook(from: string, to: string, body: string, profileName?: string): Record<string, unknown> {
  const sid = `SM${(++seq).toString(16).padStart(32, '0')}`;
  return {
    MessageSid: sid,
    SmsSid: sid,
    AccountSid: 'AC00000000000000000000000000000001',
    From: from,
    To: to,
    Body: body,
    SmsStatus: 'received',
    ...(profileName ? { ProfileName: profileName } : {}),
  };
}

/** A Twilio REST Message resource sent by us. */
export function twilioSent(from: string, to: string, body: string): Record<string, unknown> {
  return {
    sid: `SM${(++seq).toString(16).padStart(32, '0')}`,
    from,
    to,
    body,
    direction: 'outbound-api',
    status: 'delivered',
    date_sent: 'Fri, 25 Aug 2023 16:30:02 +0000',
  };
}

export function webform(fields: Record<string, unknown>, formName = 'Contact us'): Record<string, unknown> {
  return { id: `wf-${++seq}`, form_id: 'contact', form_name: formName, submitted_at: '2024-10-02T14:35:12+02:00', fields };
}

export function instagramItem(sender: string, recipient: string, text: string, echo = false): Record<string, unknown> {
  return {
    sender: { id: sender },
    recipient: { id: recipient },
    timestamp: 1_724_486_400_000 + ++seq,
    message: { mid: `mid.${seq}`, text, ...(echo ? { is_echo: true } : {}) },
  };
}

const ME = 'alex.morgan@northwind.example';
const MY_NUMBER = '+14155550142';

async function contactOf(db: Db, source: string, sourceIdLike = '%'): Promise<(string | null)[]> {
  const { rows } = await db.query<{ contact_id: string | null }>(
    `SELECT contact_id FROM public.interactions WHERE source = $1 AND source_id LIKE $2 ORDER BY occurred_at, source_id`,
    [source, sourceIdLike],
  );
  return rows.map((r) => r.contact_id);
}

describe('resolve', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  it('links mixed-case and display-name emails from Gmail and a web form to the same contact; queues timeline and insights', async () => {
    const sofia = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Sofia Rossi',
      identities: [{ kind: 'email', value: 'sofia.rossi@example.com' }],
    });
    await loadEvents(db, 'gmail', [gmailMessage({ from: '"Sofía Rossi" <Sofia.Rossi@Example.COM>', to: ME, subject: 'Re: pricing' })]);
    await loadEvents(db, 'webform', [webform({ name: 'Sofía Rossi', email: '  SOFIA.ROSSI@example.com ', message: 'A demo please' })]);
    await normalize(db);
    const s = await resolve(db);
    assert.equal(s.counts.events, 2);
    assert.equal(s.counts.linked, 2);
    assert.equal(s.counts.unresolved, 0);
    assert.deepEqual([...(await contactOf(db, 'gmail')), ...(await contactOf(db, 'webform'))], [sofia, sofia]);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM public.raw_events WHERE contact_id = $1`, [sofia]),
      2,
      'the raw events are linked too',
    );
    // The interactions' update trigger: both go on the timeline, the contact gets insights work.
    assert.equal(
      await count(
        db,
        `SELECT count(*)::int AS n FROM omni_ingest.work_queue q JOIN public.interactions i ON i.id = q.item_id WHERE q.stage = 'timeline' AND i.contact_id = $1`,
        [sofia],
      ),
      2,
    );
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights' AND item_id = $1`, [sofia]),
      1,
    );
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'resolve'`), 0);
    const again = await resolve(db);
    assert.equal(again.counts.events ?? 0, 0, 'nothing left to resolve');
  });

  it('links phone numbers from Twilio SMS and WhatsApp (whatsapp:+39…) to the phone identity, inbound and outbound', async () => {
    const marco = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Marco Bianchi',
      identities: [{ kind: 'phone', value: '+39 347 123 4567' }],
    });
    await loadEvents(db, 'twilio', [
      twilioWebhook('+393471234567', MY_NUMBER, 'Ciao!'),
      twilioWebhook('whatsapp:+393471234567', `whatsapp:${MY_NUMBER}`, 'Foto del pacco', 'Marco'),
      twilioSent(`whatsapp:${MY_NUMBER}`, 'whatsapp:+393471234567', 'Grazie!'),
      twilioSent(MY_NUMBER, '+393471234567', 'A domani'),
    ]);
    await normalize(db);
    const s = await resolve(db);
    assert.equal(s.counts.linked, 4);
    assert.deepEqual(await contactOf(db, 'twilio'), [marco, marco, marco, marco]);
    const { rows } = await db.query<{ type: string }>(`SELECT DISTINCT type FROM public.interactions ORDER BY type`);
    assert.deepEqual(
      rows.map((r) => r.type),
      ['sms_received', 'sms_sent', 'whatsapp_received', 'whatsapp_sent'],
    );
  });

  it('national-format numbers resolve only with a default region', async () => {
    const olu = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Olu',
      identities: [{ kind: 'phone', value: '+442079460958' }],
    });
    // Written by an older tool: the number as the person typed it, never made E.164.
    await db.query(
      `
INSERT INTO public.interactions (user_id, source, source_id, type, body_text, occurred_at, source_meta)
VALUES ($1, 'webform', 'legacy-1', 'form_submitted', 'Call me back', '2024-10-05T08:15:00Z', $2)`,
      [USER_A, JSON.stringify({ direction: 'inbound', from: [{ kind: 'phone', value: '020 7946 0958' }], to: [] })],
    );
    const without = await resolve(db);
    assert.equal(without.counts.no_identity, 1, 'a national number without a region is no identity');
    assert.equal(await enqueueUnresolved(db, parseRange({}, systemClock)), 1);
    const withRegion = await resolve(db, { defaultRegion: 'GB' });
    assert.equal(withRegion.counts.linked, 1);
    assert.deepEqual(await contactOf(db, 'webform'), [olu]);
    // The web form provider itself reads a country field: national numbers resolve straight away.
    await loadEvents(db, 'webform', [webform({ first_name: 'Olu', 'Phone Number': '020 7946 0958', country: 'GB' })]);
    await normalize(db);
    assert.equal((await resolve(db)).counts.linked, 1);
  });

  it('outbound mail resolves to the To recipient (Cc and our own address do not compete)', async () => {
    const sofia = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Sofia',
      identities: [{ kind: 'email', value: 'sofia.rossi@example.com' }],
    });
    await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Lukas',
      identities: [{ kind: 'email', value: 'lukas@nordlicht.example' }],
    });
    await createContactWithIdentities(db, { userId: USER_A, displayName: 'Me', identities: [{ kind: 'email', value: ME }] });
    await loadEvents(db, 'gmail', [
      gmailMessage({
        from: `Alex <${ME}>`,
        to: 'Sofia Rossi <SOFIA.ROSSI@example.com>',
        cc: `lukas@nordlicht.example, ${ME}`,
        subject: 'Proposal',
        sent: true,
      }),
    ]);
    await normalize(db);
    const s = await resolve(db);
    assert.equal(s.counts.linked, 1);
    assert.deepEqual(await contactOf(db, 'gmail'), [sofia]);
  });

  it('counts ambiguity and links nothing when identities point at different contacts', async () => {
    await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Ana by email',
      identities: [{ kind: 'email', value: 'ana@costa.example' }],
    });
    await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Ana by phone',
      identities: [{ kind: 'phone', value: '+34612345678' }],
    });
    await loadEvents(db, 'webform', [webform({ name: 'Ana Costa', email: 'ana@costa.example', phone: '+34 612 345 678' })]);
    await loadEvents(db, 'gmail', [gmailMessage({ from: ME, to: 'ana@costa.example, Ana <ana@costa.example>', subject: 'x', sent: true })]);
    await loadEvents(db, 'gmail', [gmailMessage({ from: ME, to: 'ana@costa.example, other@costa.example', subject: 'y', sent: true })]);
    await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Other',
      identities: [{ kind: 'email', value: 'other@costa.example' }],
    });
    await normalize(db);
    const s = await resolve(db, { createContacts: true });
    assert.equal(s.counts.ambiguous, 2, 'web form email ≠ phone contact; mail to two known contacts');
    assert.equal(s.counts.linked, 1, 'a repeated address is one person');
    assert.equal(s.counts.created_contacts, 0);
    assert.deepEqual(await contactOf(db, 'webform'), [null]);
  });

  it('without --create-contacts unknown people stay unresolved and nothing is created; other users’ contacts never match', async () => {
    await createContactWithIdentities(db, {
      userId: USER_B,
      displayName: 'Not yours',
      identities: [{ kind: 'email', value: 'new.person@example.org' }],
    });
    await loadEvents(db, 'gmail', [gmailMessage({ from: 'New Person <new.person@example.org>', to: ME, subject: 'Hello' })]);
    await loadEvents(db, 'instagram', [instagramItem('6428719305487112', '17841405822304914', 'Hola!')]);
    await normalize(db);
    const s = await resolve(db);
    assert.equal(s.counts.unresolved, 2);
    assert.equal(s.counts.linked, 0);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contacts'), 1);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contact_identities'), 1);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions WHERE contact_id IS NOT NULL'), 0);
  });

  it('--create-contacts creates each unknown person once, within a batch and across batches', async () => {
    // One person seen five times (address case varies) over three batches.
    await loadEvents(
      db,
      'gmail',
      [1, 2, 3, 4, 5].map((n) =>
        gmailMessage({
          from: n % 2 ? 'Chloé Dubois <Chloe@Atelier-Dubois.example>' : 'chloe@atelier-dubois.example',
          to: ME,
          subject: `Order ${n}`,
        }),
      ),
    );
    // In one batch: a web form with email and phone, an SMS from that phone, a mail from that email.
    await loadEvents(db, 'webform', [
      webform({ name: 'Kenji Tanaka', email: 'kenji@sakura.example', phone: '+81 90 1234 5678' }, 'Request a quote'),
    ]);
    await loadEvents(db, 'twilio', [twilioWebhook('+819012345678', MY_NUMBER, 'Did you get my form?')]);
    await loadEvents(db, 'instagram', [instagramItem('17841405822304914', '6428719305487112', 'Thanks for writing!', true)]);
    await normalize(db);
    const first = await resolve(db, { createContacts: true }, { batchSize: '2', provider: 'gmail' });
    assert.equal(first.batches, 3);
    assert.equal(first.counts.created_contacts, 1);
    assert.equal(first.counts.linked, 5);
    const second = await resolve(db, { createContacts: true });
    assert.equal(second.counts.created_contacts, 2, 'Kenji once (web form + SMS), the Instagram recipient once');
    assert.equal(second.counts.linked, 3);
    const { rows } = await db.query<{
      display_name: string;
      primary_email: string | null;
      primary_phone: string | null;
      source: string;
      identities: string[];
      interactions: number;
    }>(`
SELECT c.display_name, c.primary_email, c.primary_phone, c.source,
       (SELECT array_agg(ci.kind || ':' || ci.value ORDER BY ci.kind) FROM public.contact_identities ci WHERE ci.contact_id = c.id) AS identities,
       (SELECT count(*)::int FROM public.interactions i WHERE i.contact_id = c.id) AS interactions
FROM public.contacts c ORDER BY c.display_name`);
    assert.deepEqual(
      rows,
      [
        {
          display_name: '6428719305487112',
          primary_email: null,
          primary_phone: null,
          source: 'instagram',
          identities: ['instagram_id:6428719305487112'],
          interactions: 1,
        },
        {
          display_name: 'Chloé Dubois',
          primary_email: 'chloe@atelier-dubois.example',
          primary_phone: null,
          source: 'gmail',
          identities: ['email:chloe@atelier-dubois.example'],
          interactions: 5,
        },
        {
          display_name: 'Kenji Tanaka',
          primary_email: 'kenji@sakura.example',
          primary_phone: '+819012345678',
          source: 'webform',
          identities: ['email:kenji@sakura.example', 'phone:+819012345678'],
          interactions: 2,
        },
      ].sort((a, b) => (a.display_name < b.display_name ? -1 : 1)),
    );
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.raw_events WHERE contact_id IS NULL'), 0, 'raw events linked too');
  });

  it('--create-contacts gives a known contact the unknown identities of the same person', async () => {
    const zoe = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Zoë',
      identities: [{ kind: 'email', value: 'zoe@verde.example' }],
    });
    await loadEvents(db, 'webform', [webform({ name: 'Zoë', email: 'zoe@verde.example', whatsapp: '+49 151 12345678' })]);
    await loadEvents(db, 'twilio', [twilioWebhook('whatsapp:+4915112345678', `whatsapp:${MY_NUMBER}`, 'Hallo')]);
    await normalize(db);
    const s = await resolve(db, { createContacts: true });
    assert.equal(s.counts.linked, 2);
    assert.equal(s.counts.created_contacts, 0);
    assert.deepEqual([...(await contactOf(db, 'webform')), ...(await contactOf(db, 'twilio'))], [zoe, zoe]);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.contact_identities WHERE contact_id = $1`, [zoe]), 2);
  });

  it('over generated traffic: every person once, no contact without identities, a re-run finds nothing', async () => {
    for (const [provider, seed] of [
      ['gmail', 1],
      ['twilio', 2],
      ['webform', 3],
      ['instagram', 4],
    ] as const) {
      await loadEvents(db, provider, generateEvents(provider, 120, { seed, userId: USER_A, contacts: 25 }));
    }
    await normalize(db);
    const s = await resolve(db, { createContacts: true }, { batchSize: '37' });
    const interactions = await count(db, 'SELECT count(*)::int AS n FROM public.interactions');
    assert.equal(s.counts.events, interactions);
    assert.equal(
      (s.counts.linked ?? 0) + (s.counts.ambiguous ?? 0) + (s.counts.no_identity ?? 0) + (s.counts.unresolved ?? 0),
      interactions,
    );
    assert.equal(s.counts.unresolved, 0, 'with --create-contacts everyone with an identity is known afterwards');
    assert.ok((s.counts.linked ?? 0) > interactions * 0.8, JSON.stringify(s.counts));
    assert.equal(
      await count(
        db,
        'SELECT count(*)::int AS n FROM public.contacts c WHERE NOT EXISTS (SELECT 1 FROM public.contact_identities ci WHERE ci.contact_id = c.id)',
      ),
      0,
    );
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contacts'), s.counts.created_contacts);
    assert.equal(
      await count(
        db,
        'SELECT count(*)::int AS n FROM public.interactions i JOIN public.raw_events r ON r.id = i.raw_event_id WHERE i.contact_id IS NOT NULL AND r.contact_id IS NULL',
      ),
      0,
    );
    assert.equal((await resolve(db, { createContacts: true })).counts.events ?? 0, 0);
  });

  it('--dry-run reports what would happen and writes nothing', async () => {
    await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Sofia',
      identities: [{ kind: 'email', value: 'sofia.rossi@example.com' }],
    });
    await loadEvents(db, 'gmail', [
      gmailMessage({ from: 'sofia.rossi@example.com', to: ME, subject: 'a' }),
      gmailMessage({ from: 'x@y.example', to: ME, subject: 'b' }),
      gmailMessage({ from: 'X@y.example', to: ME, subject: 'c' }),
    ]);
    await normalize(db);
    const s = await resolve(db, { createContacts: true }, { dryRun: true, batchSize: '2' });
    assert.equal(s.runId, null);
    assert.deepEqual(s.counts, {
      events: 3,
      linked: 3,
      created_contacts: 1,
      created_identities: 1,
      unresolved: 0,
      ambiguous: 0,
      no_identity: 0,
      skipped: 0,
    });
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contacts'), 1);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.interactions WHERE contact_id IS NOT NULL'), 0);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'resolve'`), 3);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.runs WHERE command = 'resolve'`), 0);
  });

  it('skips interactions linked or deleted since they were queued; records the run', async () => {
    const sofia = await createContactWithIdentities(db, {
      userId: USER_A,
      displayName: 'Sofia',
      identities: [{ kind: 'email', value: 'sofia.rossi@example.com' }],
    });
    await loadEvents(
      db,
      'gmail',
      [1, 2, 3].map(() => gmailMessage({ from: 'someone@else.example', to: ME, subject: 'hi' })),
    );
    await normalize(db);
    const { rows } = await db.query<{ id: string }>('SELECT id FROM public.interactions ORDER BY occurred_at');
    await db.query('UPDATE public.interactions SET contact_id = $1 WHERE id = $2', [sofia, rows[0]!.id]);
    await db.query('DELETE FROM public.interactions WHERE id = $1', [rows[1]!.id]);
    const s = await resolve(db);
    assert.equal(s.counts.skipped, 2);
    assert.equal(s.counts.unresolved, 1);
    const run = await db.query<{ command: string; status: string; counts: Record<string, number> }>(
      'SELECT command, status, counts FROM omni_ingest.runs WHERE id = $1',
      [s.runId],
    );
    assert.deepEqual(run.rows[0], { command: 'resolve', status: 'succeeded', counts: s.counts });
  });
});

describe('resolve with parallel workers', { skip: onServer ? false : 'needs a real server (several sessions)' }, () => {
  it('creates one contact for one unknown person seen by every worker at once', async () => {
    const { db, close } = await migratedDb();
    try {
      await loadEvents(
        db,
        'twilio',
        Array.from({ length: 24 }, (_, n) => twilioWebhook(n % 2 ? '+1 (212) 555-0199' : '+12125550199', MY_NUMBER, `message ${n}`)),
      );
      await loadEvents(
        db,
        'gmail',
        Array.from({ length: 24 }, (_, n) => gmailMessage({ from: 'Priya <priya@bluefin.example>', to: ME, subject: `s${n}` })),
      );
      await normalize(db);
      const s = await resolve(db, { createContacts: true }, { batchSize: '1' }, 3);
      assert.equal(s.counts.linked, 48);
      assert.equal(s.counts.created_contacts, 2);
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contacts'), 2);
      assert.equal(await count(db, 'SELECT count(DISTINCT contact_id)::int AS n FROM public.interactions'), 2);
    } finally {
      await close();
    }
  });
});

describe('omni-ingest resolve', () => {
  it('links through the binary with --create-contacts --json', async () => {
    const { db, target } = await migratedDb();
    try {
      await createContactWithIdentities(db, {
        userId: USER_A,
        displayName: 'Sofia',
        identities: [{ kind: 'email', value: 'sofia.rossi@example.com' }],
      });
      await loadEvents(db, 'gmail', [
        gmailMessage({ from: 'Sofia.Rossi@Example.com', to: ME, subject: 'a' }),
        gmailMessage({ from: 'New <new@example.org>', to: ME, subject: 'b' }),
      ]);
      await normalize(db);
      await db.close();
      const r = await runCli([...target.args, 'resolve', '--create-contacts', '--default-region', 'it', '--json', '--no-progress']);
      assert.equal(r.code, 0, r.stderr);
      const out = r.json<{ stage: string; status: string; counts: Record<string, number> }>();
      assert.equal(out.stage, 'resolve');
      assert.equal(out.status, 'succeeded');
      assert.equal(out.counts.linked, 2);
      assert.equal(out.counts.created_contacts, 1);
      const again = await target.open();
      try {
        assert.equal(await count(again, 'SELECT count(*)::int AS n FROM public.interactions WHERE contact_id IS NULL'), 0);
        assert.equal(await count(again, 'SELECT count(*)::int AS n FROM public.contacts'), 2);
      } finally {
        await again.close();
      }
    } finally {
      await target.drop();
    }
  });

  it('--default-region xx exits 2 with a clear message', async () => {
    const r = await runCli(['resolve', '--default-region', 'xx', '--json']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--default-region "xx" is not a country code/);
    assert.equal(r.json<{ ok: boolean; error: { code: string } }>().error.code, 'usage');
  });
});
