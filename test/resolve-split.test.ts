// One person, one contact, whatever the interleaving (SPEC §6): people whose phone, email and
// web form arrive in different batches, resolved by several workers at once, end as the same
// contacts and links as one worker makes; a database that already holds such splits is repaired
// by running resolve again over its unresolved interactions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Db, Queryable } from '../src/db/connect.js';
import { type Merge, mergeContacts, readContacts } from '../src/stages/resolve-sql.js';
import { runCli } from './support/cli.js';
import { cloneTarget, migratedTarget, onServer, poolerUrl, throughPooler, type TestTarget } from './support/db.js';
import { whileAnotherWorkerHolds } from './support/held.js';
import { loadEvents } from './support/events.js';

const PEOPLE = 120;

/** Per person: an SMS from their phone, then a Gmail message from their email, then a form with both. */
async function seed(db: Db): Promise<void> {
  const sms = [];
  const mail = [];
  const forms = [];
  for (let p = 0; p < PEOPLE; p++) {
    const phone = `+1415555${String(1000 + p).padStart(4, '0')}`;
    const email = `person${p}@example.com`;
    const t = Date.UTC(2025, 0, 1) + p * 60_000;
    sms.push({ MessageSid: `SM${String(p).padStart(32, '0')}`, From: phone, To: '+14155550000', Body: `sms from ${p}` });
    mail.push({
      id: `m${p}`,
      threadId: `t${p}`,
      labelIds: ['INBOX'],
      snippet: `mail ${p}`,
      internalDate: String(t + 1_000),
      payload: {
        mimeType: 'text/plain',
        headers: [
          { name: 'From', value: email },
          { name: 'To', value: 'me@crm.example' },
          { name: 'Subject', value: `hello ${p}` },
        ],
        body: { data: Buffer.from(`mail from ${p}`).toString('base64url') },
      },
    });
    forms.push({
      id: `form${p}`,
      form_id: 'contact',
      submitted_at: new Date(t + 2_000).toISOString(),
      fields: { name: `Person ${p}`, email, phone, message: `form from ${p}` },
    });
  }
  await loadEvents(db, 'twilio', sms);
  await loadEvents(db, 'gmail', mail);
  await loadEvents(db, 'webform', forms);
  // Webhooks carry no time of their own: put each SMS first in its person's story.
  await db.query(
    `UPDATE public.raw_events SET occurred_at = '2025-01-01'::timestamptz + (substr(source_id, 3)::int * interval '1 minute') WHERE provider = 'twilio'`,
  );
}

/** Who each contact is (its identities) and which interactions it holds: the substance, not the ids. */
async function people(target: TestTarget): Promise<{ contacts: string[]; unlinked: number }> {
  const db = await target.open();
  try {
    const { rows } = await db.query<{ k: string }>(`
SELECT (SELECT string_agg(ci.kind || ':' || ci.value, ',' ORDER BY ci.kind, ci.value) FROM public.contact_identities ci WHERE ci.contact_id = c.id)
       || ' <- ' || (SELECT string_agg(i.source || ':' || i.source_id, ',' ORDER BY i.source, i.source_id) FROM public.interactions i WHERE i.contact_id = c.id) AS k
FROM public.contacts c ORDER BY 1`);
    const unlinked = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.interactions WHERE contact_id IS NULL`);
    return { contacts: rows.map((r) => r.k), unlinked: unlinked.rows[0]!.n };
  } finally {
    await db.close();
  }
}

async function prepared(): Promise<TestTarget> {
  const target = await migratedTarget();
  const db = await target.open();
  try {
    await seed(db);
  } finally {
    await db.close();
  }
  const n = await runCli([...target.args, 'normalize']);
  assert.equal(n.code, 0, n.stderr);
  return target;
}

/** Every person is one contact holding their email, their phone and their three interactions. */
async function assertOneContactEach(target: TestTarget): Promise<void> {
  const after = await people(target);
  assert.equal(after.unlinked, 0);
  assert.equal(after.contacts.length, PEOPLE, after.contacts.slice(0, 4).join('\n'));
  assert.ok(
    after.contacts.every((c) => /^email:person\d+@example\.com,phone:\+1415555\d{4} <- gmail:m\d+,twilio:SM\d+,webform:form\d+$/.test(c)),
    after.contacts[0],
  );
}

/** Several processes, or a transaction held open beside the CLI: PGlite has one connection. */
const CONNECTIONS = { skip: onServer ? false : 'needs a real server (several connections)' };

describe('parallel resolve never splits a person', { timeout: 300_000 }, () => {
  it('three processes with small batches make the same contacts and links as one worker', CONNECTIONS, async () => {
    const one = await prepared();
    const many = await cloneTarget(one);
    const pooled = poolerUrl ? await cloneTarget(one) : undefined;
    try {
      const single = await runCli([...one.args, 'resolve', '--create-contacts', '--batch-size', '10000', '--json']);
      assert.equal(single.code, 0, single.stderr);
      const expected = await people(one);
      assert.equal(expected.contacts.length, PEOPLE, 'one contact per person');
      assert.equal(expected.unlinked, 0);
      for (const target of [many, ...(pooled ? [throughPooler(pooled)] : [])]) {
        const runs = await Promise.all(
          [1, 2, 3].map(() => runCli([...target.args, 'resolve', '--create-contacts', '--batch-size', '7', '--workers', '2', '--json'])),
        );
        for (const r of runs) assert.equal(r.code, 0, r.stderr);
        const got = await people(target);
        assert.deepEqual(got.contacts, expected.contacts);
        assert.equal(got.unlinked, 0, 'nothing left ambiguous');
      }
    } finally {
      await one.drop();
      await many.drop();
      await pooled?.drop();
    }
  });

  it('a form linked by its phone while another worker creates the contact of its email ends as one person', CONNECTIONS, async () => {
    // The interleaving a loaded machine gives now and then, made certain: the form batch reads the
    // phone's contact and not the email (another worker's contact for it is not committed yet),
    // so it links by the phone and gives that contact the email, whose insert waits for the
    // other worker and then finds the email taken.
    const target = await prepared();
    try {
      const sms = await runCli([...target.args, 'resolve', '--create-contacts', '--provider', 'twilio']);
      assert.equal(sms.code, 0, sms.stderr);
      // What `resolve --create-contacts --provider gmail` writes, held open.
      const mail = (tx: Queryable) =>
        tx
          .query(`
WITH m AS (
  SELECT i.id, i.user_id, gen_random_uuid() AS contact_id, i.source_meta->'from'->0->>'value' AS email
  FROM public.interactions i WHERE i.source = 'gmail'
), c AS (
  INSERT INTO public.contacts (id, user_id, display_name, primary_email, source)
  SELECT contact_id, user_id, email, email, 'gmail' FROM m RETURNING id, user_id
), p AS (
  INSERT INTO omni_ingest.pipeline_contacts (contact_id, user_id) SELECT id, user_id FROM c
), ci AS (
  INSERT INTO public.contact_identities (user_id, contact_id, kind, value, provider)
  SELECT m.user_id, m.contact_id, 'email', m.email, 'gmail' FROM m JOIN c ON c.id = m.contact_id
)
UPDATE public.interactions i SET contact_id = m.contact_id FROM m, c WHERE i.id = m.id AND c.id = m.contact_id`)
          .then(() => undefined);
      const form = await whileAnotherWorkerHolds(target, mail, ['resolve', '--create-contacts', '--provider', 'webform', '--json']);
      assert.equal(form.code, 0, form.stderr);
      assert.equal(form.json<{ counts: { merged_contacts?: number } }>().counts.merged_contacts, PEOPLE);
      await assertOneContactEach(target);
    } finally {
      await target.drop();
    }
  });

  it(
    'a split another worker is merging while the form batch waits for it ends as one person, nothing left ambiguous',
    CONNECTIONS,
    async () => {
      // Each person split in two (phone, then email, each its own contact); another worker holds
      // both locked while it merges the email's contact into the phone's. The form batch sees the
      // split, waits for those locks and then finds the email's contact gone: it must look again,
      // not call the form ambiguous.
      const target = await prepared();
      try {
        for (const provider of ['twilio', 'gmail']) {
          const r = await runCli([...target.args, 'resolve', '--create-contacts', '--provider', provider]);
          assert.equal(r.code, 0, r.stderr);
        }
        const merging = async (tx: Queryable) => {
          const { rows } = await tx.query<Merge>(`
SELECT p.contact_id AS keep, e.contact_id AS other, p.user_id
FROM public.contact_identities p
JOIN public.contact_identities e ON e.user_id = p.user_id AND e.kind = 'email' AND e.value = 'person' || (right(p.value, 4)::int - 1000) || '@example.com'
WHERE p.kind = 'phone'`);
          assert.equal(rows.length, PEOPLE);
          await readContacts(
            tx,
            rows.flatMap((m) => [m.keep, m.other]),
            true,
          );
          await mergeContacts(tx, rows);
        };
        const form = await whileAnotherWorkerHolds(target, merging, ['resolve', '--create-contacts', '--provider', 'webform', '--json']);
        assert.equal(form.code, 0, form.stderr);
        const counts = form.json<{ counts: { linked?: number; ambiguous?: number } }>().counts;
        assert.equal(counts.ambiguous ?? 0, 0);
        assert.equal(counts.linked, PEOPLE);
        await assertOneContactEach(target);
      } finally {
        await target.drop();
      }
    },
  );

  it('a batch that merges a split links its other interactions of the merged contact to the one it became', async () => {
    // Phone and email each their own contact; then one batch holds the person's mail (decided for
    // the email's contact) and the form that merges the two: the mail must follow the merge.
    const target = await prepared();
    try {
      for (const provider of ['twilio', 'gmail']) {
        const r = await runCli([...target.args, 'resolve', '--create-contacts', '--provider', provider]);
        assert.equal(r.code, 0, r.stderr);
      }
      const db = await target.open();
      try {
        await db.query(`UPDATE public.interactions SET contact_id = NULL WHERE source = 'gmail'`);
      } finally {
        await db.close();
      }
      const repair = await runCli([...target.args, 'resolve', '--retry-unresolved', '--create-contacts', '--json']);
      assert.equal(repair.code, 0, repair.stderr);
      const counts = repair.json<{ counts: { merged_contacts?: number; linked?: number } }>().counts;
      assert.equal(counts.merged_contacts, PEOPLE);
      assert.equal(counts.linked, 2 * PEOPLE);
      await assertOneContactEach(target);
    } finally {
      await target.drop();
    }
  });

  it('a database that already holds splits is repaired by resolving its unresolved interactions again, saying what it merged', async () => {
    const target = await prepared();
    try {
      // The state a race left behind: phone and email each their own contact, the form ambiguous.
      const sms = await runCli([...target.args, 'resolve', '--create-contacts', '--provider', 'twilio']);
      assert.equal(sms.code, 0, sms.stderr);
      const mail = await runCli([...target.args, 'resolve', '--create-contacts', '--provider', 'gmail']);
      assert.equal(mail.code, 0, mail.stderr);
      const forms = await runCli([...target.args, 'resolve', '--provider', 'webform', '--json']);
      assert.equal(forms.json<{ counts: { ambiguous?: number } }>().counts.ambiguous, PEOPLE);
      assert.equal((await people(target)).contacts.length, 2 * PEOPLE);
      const repair = await runCli([...target.args, 'resolve', '--retry-unresolved', '--create-contacts', '--json']);
      assert.equal(repair.code, 0, repair.stderr);
      assert.equal(repair.json<{ counts: { merged_contacts?: number } }>().counts.merged_contacts, PEOPLE);
      assert.match(repair.stderr, /contacts are one person: .* merged into /);
      await assertOneContactEach(target);
    } finally {
      await target.drop();
    }
  });
});
