// timeline: one readable entry per resolved interaction and per contact insight, idempotent,
// updated when its source changes, gone when its source lost its contact.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { enqueue } from '../src/stages/engine/queue.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { createResolveStage } from '../src/stages/resolve.js';
import { createContactWithIdentities } from '../src/stages/resolve-sql.js';
import { clip, createTimelineStage, interactionTitle } from '../src/stages/timeline.js';
import { runCli } from './support/cli.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';

const opts = (db: Db, flags: RangeFlags = {}) => ({
  db,
  clock: systemClock,
  logger: createMemoryLogger(),
  range: parseRange(flags, systemClock),
});
const normalize = (db: Db) => runStage(normalizeStage, opts(db));
const resolve = (db: Db) => runStage(createResolveStage({ createContacts: false }), opts(db));
const timeline = (db: Db, flags: RangeFlags = {}) => runStage(createTimelineStage(), opts(db, flags));

async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

let seq = 0;
const ME = 'alex.morgan@northwind.example';
const MY_NUMBER = '+14155550142';
const SOFIA_PHONE = '+393471234567';
const SOFIA_IG = '6428719305487112';
const MY_IG = '17841405822304914';

function gmail(from: string, to: string, subject: string, body: string, sent = false): Record<string, unknown> {
  const id = `19a${(++seq).toString(16).padStart(13, '0')}`;
  const headers = [
    { name: 'From', value: from },
    { name: 'To', value: to },
    { name: 'Subject', value: subject },
  ];
  return {
    id,
    labelIds: sent ? ['SENT'] : ['INBOX'],
    internalDate: String(1_725_000_000_000 + seq * 60_000),
    payload: { mimeType: 'text/plain', headers, body: { data: Buffer.from(body).toString('base64url') } },
  };
}

const sms = (from: string, to: string, body: string) => ({
  MessageSid: `SM${(++seq).toString(16).padStart(32, '0')}`,
  From: from,
  To: to,
  Body: body,
  SmsStatus: 'received',
});
const sent = (from: string, to: string, body: string) => ({
  sid: `SM${(++seq).toString(16).padStart(32, '0')}`,
  from,
  to,
  body,
  direction: 'outbound-api',
  status: 'delivered',
  date_sent: `Fri, 25 Aug 2023 16:${String(seq % 60).padStart(2, '0')}:02 +0000`,
});
const dm = (sender: string, recipient: string, text: string, echo = false) => ({
  sender: { id: sender },
  recipient: { id: recipient },
  timestamp: 1_724_486_400_000 + ++seq,
  message: { mid: `mid.${seq}`, text, ...(echo ? { is_echo: true } : {}) },
});

interface Entry {
  event_type: string;
  title: string;
  description: string | null;
  occurred_at: Date;
  event_data: Record<string, unknown>;
  contact_id: string;
  source_type: string;
  source_id: string;
}

const entries = (db: Db) =>
  db
    .query<Entry>(
      `SELECT event_type, title, description, occurred_at, event_data, contact_id, source_type, source_id FROM public.contact_timeline ORDER BY event_type, title`,
    )
    .then((r) => r.rows);

/** Sofia, known by email, phone and Instagram id, and one of each interaction type with her. */
async function sofiaEverywhere(db: Db, displayName: string | null = 'Sofia Rossi'): Promise<string> {
  const sofia = await createContactWithIdentities(db, {
    userId: USER_A,
    displayName,
    identities: [
      { kind: 'email', value: 'sofia.rossi@example.com' },
      { kind: 'phone', value: SOFIA_PHONE },
      { kind: 'instagram_id', value: SOFIA_IG },
    ],
  });
  await loadEvents(db, 'gmail', [
    gmail('"Sofía Rossi" <Sofia.Rossi@Example.COM>', ME, 'Re: pricing', 'Could you send over pricing for 25 seats?'),
    gmail(ME, 'Sofia Rossi <sofia.rossi@example.com>', 'Proposal', 'Attached.', true),
  ]);
  await loadEvents(db, 'twilio', [
    sms(SOFIA_PHONE, MY_NUMBER, 'Running late'),
    sent(MY_NUMBER, SOFIA_PHONE, 'No problem'),
    sms(`whatsapp:${SOFIA_PHONE}`, `whatsapp:${MY_NUMBER}`, 'Ciao'),
    sent(`whatsapp:${MY_NUMBER}`, `whatsapp:${SOFIA_PHONE}`, 'Ciao!'),
  ]);
  await loadEvents(db, 'instagram', [dm(SOFIA_IG, MY_IG, 'Hola'), dm(MY_IG, SOFIA_IG, '¡Hola!', true)]);
  await loadEvents(db, 'webform', [
    {
      id: `wf-${++seq}`,
      form_id: 'quote',
      form_name: 'Request a quote',
      submitted_at: '2024-10-02T14:35:12+02:00',
      fields: { email: 'sofia.rossi@example.com', message: 'Quote for 12 seats' },
    },
  ]);
  await normalize(db);
  const r = await resolve(db);
  assert.equal(r.counts.linked, 9);
  return sofia;
}

describe('timeline titles', () => {
  it('reads naturally for every kind of interaction', () => {
    assert.equal(interactionTitle('email_received', 'Re: pricing', 'Sofia Rossi'), 'Email from Sofia Rossi: Re: pricing');
    assert.equal(interactionTitle('email_sent', null, 'Sofia Rossi'), 'Email to Sofia Rossi');
    assert.equal(interactionTitle('form_submitted', null, 'x', 'callback'), 'Form submitted: callback');
    assert.equal(interactionTitle('note_added', 'Met at the fair', 'Sofia Rossi'), 'Note: Met at the fair');
    assert.equal(interactionTitle('call_missed', null, 'Sofia Rossi'), 'Call missed with Sofia Rossi');
    const long = interactionTitle('email_received', 'word '.repeat(100), 'S');
    assert.ok(Array.from(long).length <= 'Email from S: '.length + 150 && long.endsWith('…'), long);
    assert.equal(clip('  a\n\n b  ', 10), 'a b');
    assert.equal(clip('🙂'.repeat(300), 200), `${'🙂'.repeat(199)}…`, 'emoji are never cut in half');
  });
});

describe('timeline', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  it('writes one entry per resolved interaction with its title, description, time and source', async () => {
    const sofia = await sofiaEverywhere(db);
    await loadEvents(db, 'gmail', [gmail('stranger@example.org', ME, 'Unresolved', 'not on any timeline')]);
    await normalize(db);
    const s = await timeline(db);
    assert.deepEqual(s.counts, { events: 9, written: 9, updated: 0, unchanged: 0, skipped: 0, removed: 0 });
    const rows = await entries(db);
    assert.deepEqual(
      rows.map((r) => [r.event_type, r.title]),
      [
        ['dm_received', 'Instagram DM from Sofia Rossi'],
        ['dm_sent', 'Instagram DM to Sofia Rossi'],
        ['email_received', 'Email from Sofia Rossi: Re: pricing'],
        ['email_sent', 'Email to Sofia Rossi: Proposal'],
        ['form_submitted', 'Form submitted: Request a quote'],
        ['sms_received', 'SMS from Sofia Rossi'],
        ['sms_sent', 'SMS to Sofia Rossi'],
        ['whatsapp_received', 'WhatsApp message from Sofia Rossi'],
        ['whatsapp_sent', 'WhatsApp message to Sofia Rossi'],
      ],
    );
    const { rows: joined } = await db.query<{ ok: boolean }>(`
SELECT bool_and(t.contact_id = i.contact_id AND t.occurred_at = i.occurred_at AND t.user_id = i.user_id
  AND t.event_data = jsonb_build_object('source_type', 'interaction', 'interaction_id', i.id, 'raw_event_id', i.raw_event_id, 'source', i.source, 'source_id', i.source_id)) AS ok
FROM public.contact_timeline t JOIN public.interactions i ON i.id = t.source_id AND t.source_type = 'interaction'`);
    assert.equal(joined[0]?.ok, true);
    const mail = rows.find((r) => r.event_type === 'email_received');
    assert.equal(mail?.description, 'Could you send over pricing for 25 seats?');
    assert.equal(mail?.contact_id, sofia);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage IN ('timeline', 'timeline_insight')`),
      0,
    );
  });

  it('names the contact by its identity when it has no display name; clips long bodies', async () => {
    await sofiaEverywhere(db, null);
    await loadEvents(db, 'twilio', [sms(SOFIA_PHONE, MY_NUMBER, `${'Lorem ipsum dolor sit amet. '.repeat(20)}END`)]);
    await normalize(db);
    await resolve(db);
    await timeline(db);
    const rows = await entries(db);
    assert.ok(rows.some((r) => r.title === 'Email from sofia.rossi@example.com: Re: pricing'));
    assert.ok(rows.some((r) => r.title === `WhatsApp message to ${SOFIA_PHONE}`));
    const long = rows.find((r) => r.description?.startsWith('Lorem'));
    assert.ok(
      long?.description && Array.from(long.description).length <= 200 && long.description.endsWith('…'),
      long?.description ?? 'missing',
    );
  });

  it('a re-run creates no duplicates; a changed subject updates the entry', async () => {
    await sofiaEverywhere(db);
    await timeline(db);
    const { rows } = await db.query<{ id: string; user_id: string; source: string; occurred_at: Date }>(
      'SELECT id, user_id, source, occurred_at FROM public.interactions',
    );
    await enqueue(
      db,
      'timeline',
      rows.map((r) => ({ itemId: r.id, userId: r.user_id, provider: r.source, occurredAt: r.occurred_at })),
    );
    const again = await timeline(db);
    assert.deepEqual(again.counts, { events: 9, written: 0, updated: 0, unchanged: 9, skipped: 0, removed: 0 });
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contact_timeline'), 9);

    // The interactions' update trigger queues the changed one.
    await db.query(`UPDATE public.interactions SET subject = 'Re: pricing (revised)' WHERE subject = 'Re: pricing'`);
    const changed = await timeline(db);
    assert.deepEqual(changed.counts, { events: 1, written: 0, updated: 1, unchanged: 0, skipped: 0, removed: 0 });
    assert.equal(
      await count(
        db,
        `SELECT count(*)::int AS n FROM public.contact_timeline WHERE title = 'Email from Sofia Rossi: Re: pricing (revised)'`,
      ),
      1,
    );
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contact_timeline'), 9);
  });

  it('writes insight entries for contact insights', async () => {
    const sofia = await sofiaEverywhere(db);
    const { rows } = await db.query<{ id: string; created_at: Date }>(
      `
INSERT INTO public.ai_insights (user_id, subject_type, subject_id, kind, content, model)
VALUES ($1, 'contact', $2, 'next_step', $3, 'heuristic-v1')
RETURNING id, created_at`,
      [USER_A, sofia, JSON.stringify({ title: 'Send the 25-seat quote', body: 'She asked for pricing twice this week.' })],
    );
    const insight = rows[0]!;
    const s = await timeline(db);
    assert.equal(s.counts.written, 10);
    const { rows: found } = await db.query<Entry & { exact: boolean }>(`
SELECT t.*, t.occurred_at = a.created_at AS exact
FROM public.contact_timeline t JOIN public.ai_insights a ON a.id = t.source_id
WHERE t.source_type = 'insight'`);
    assert.equal(found.length, 1);
    assert.equal(found[0]?.event_type, 'insight_next_step');
    assert.equal(found[0]?.title, 'Insight: Send the 25-seat quote');
    assert.equal(found[0]?.description, 'She asked for pricing twice this week.');
    assert.equal(found[0]?.contact_id, sofia);
    assert.equal(found[0]?.exact, true, 'occurred_at is the insight’s created_at, to the microsecond');
    assert.equal(found[0]?.event_data.insight_id, insight.id);
    assert.equal(found[0]?.event_data.source_type, 'insight');
  });

  it('skips an interaction whose contact was removed, and removes its old entry', async () => {
    const sofia = await sofiaEverywhere(db);
    await timeline(db);
    await db.query(`UPDATE public.interactions SET subject = 'changed' WHERE subject = 'Proposal'`); // queued again
    await db.query('DELETE FROM public.contacts WHERE id = $1', [sofia]); // interactions.contact_id → null
    const s = await timeline(db);
    assert.deepEqual(s.counts, { events: 1, written: 0, updated: 0, unchanged: 0, skipped: 1, removed: 1 });
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.contact_timeline WHERE event_type = 'email_sent'`), 0);
  });

  it('--dry-run reports and writes nothing', async () => {
    await sofiaEverywhere(db);
    const s = await timeline(db, { dryRun: true, batchSize: '4' });
    assert.equal(s.counts.events, 9);
    assert.equal(s.counts.written, 9);
    assert.equal(s.runId, null);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.contact_timeline'), 0);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'timeline'`), 9);
  });
});

describe('omni-ingest timeline', () => {
  it('writes the entries through the binary with --json', async () => {
    const { db, target } = await migratedDb();
    try {
      await sofiaEverywhere(db);
      await db.close();
      const r = await runCli([...target.args, 'timeline', '--json', '--batch-size', '5']);
      assert.equal(r.code, 0, r.stderr);
      const out = r.json<{ stage: string; status: string; batches: number; counts: Record<string, number> }>();
      assert.equal(out.stage, 'timeline');
      assert.equal(out.status, 'succeeded');
      assert.equal(out.batches, 2);
      assert.equal(out.counts.written, 9);
      const again = await target.open();
      try {
        assert.equal(await count(again, 'SELECT count(*)::int AS n FROM public.contact_timeline'), 9);
      } finally {
        await again.close();
      }
    } finally {
      await target.drop();
    }
  });
});
