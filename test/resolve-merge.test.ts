// Merging the contacts one person was split across (SPEC §6), decided by what one batch shows,
// whatever the batch size: identities shared between interactions make one person of them, a
// contact a person entered is the one the pipeline's contacts fold into (and keeps what they
// wrote), and two contacts people entered are never merged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import type { Db } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import type { Counts } from '../src/stages/engine/ledger.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { createResolveStage } from '../src/stages/resolve.js';
import { createContactWithIdentities } from '../src/stages/resolve-sql.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';

const P = '+14155551234';
const Q = '+14155556789';
const E = 'pat@example.com';
const at = (day: number) => new Date(Date.UTC(2025, 2, day)).toISOString();

const sms = (n: number, from: string) => ({
  MessageSid: `SM${String(n).padStart(32, '0')}`,
  From: from,
  To: '+14155550000',
  Body: `sms ${n}`,
});
const form = (id: string, email: string, phone: string, day: number, name: string | null = 'Pat Doe') => ({
  id,
  form_id: 'contact',
  submitted_at: at(day),
  fields: { ...(name === null ? {} : { name }), email, phone, message: `form ${id}` },
});
const mail = (id: string, from: string, day: number) => ({
  id,
  threadId: id,
  labelIds: ['INBOX'],
  internalDate: String(Date.parse(at(day))),
  payload: {
    mimeType: 'text/plain',
    headers: [
      { name: 'From', value: from },
      { name: 'To', value: 'me@crm.example' },
      { name: 'Subject', value: `mail ${id}` },
    ],
    body: { data: Buffer.from(`mail ${id}`).toString('base64url') },
  },
});

/** A migrated database, open in this process (several runs on the embedded one are slow). */
interface Target {
  db: Db;
  drop(): Promise<void>;
}

async function migratedTarget(): Promise<Target> {
  const { db, close } = await migratedDb();
  return { db, drop: close };
}

const logger = createMemoryLogger();
const context = (db: Db, flags: RangeFlags = {}) => ({ db, clock: systemClock, logger, range: parseRange(flags, systemClock) });

/** `resolve --create-contacts` (with `flags`): its counts. */
async function resolve(target: Target, flags: RangeFlags = {}): Promise<Counts> {
  return (await runStage(createResolveStage({ createContacts: true, logger }), context(target.db, flags))).counts;
}

/** Each contact as `name: identities <- interactions`, and how many interactions have none. */
async function contacts(target: Target): Promise<{ contacts: string[]; unlinked: number }> {
  const { rows } = await target.db.query<{ k: string }>(`
SELECT coalesce(c.display_name, '') || ': '
       || coalesce((SELECT string_agg(ci.value, ',' ORDER BY ci.value) FROM public.contact_identities ci WHERE ci.contact_id = c.id), '')
       || ' <- ' || coalesce((SELECT string_agg(i.source_id, ',' ORDER BY i.source_id) FROM public.interactions i WHERE i.contact_id = c.id), '') AS k
FROM public.contacts c ORDER BY 1`);
  const unlinked = await target.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.interactions WHERE contact_id IS NULL`);
  return { contacts: rows.map((r) => r.k), unlinked: unlinked.rows[0]!.n };
}

/** Loads the events and normalizes them. */
async function load(target: Target, events: [provider: string, payloads: unknown[]][]): Promise<void> {
  for (const [provider, payloads] of events) await loadEvents(target.db, provider, payloads);
  await runStage(normalizeStage, context(target.db));
}

async function query<R extends object>(target: Target, sql: string, params: unknown[] = []): Promise<R[]> {
  return (await target.db.query<R>(sql, params)).rows;
}

async function enter(target: Target, name: string, identities: { kind: 'email' | 'phone'; value: string }[]): Promise<void> {
  await createContactWithIdentities(target.db, { userId: USER_A, displayName: name, identities });
}

describe('resolve merges one person split across contacts', { timeout: 120_000 }, () => {
  for (const size of ['1', '1000']) {
    it(`two forms sharing an email, each with the phone of a contact of its own, and a mail from the email: one contact (--batch-size ${size})`, async () => {
      const target = await migratedTarget();
      try {
        await load(target, [['twilio', [sms(1, P), sms(2, Q)]]]);
        await resolve(target);
        await load(target, [
          ['webform', [form('f1', E, P, 1), form('f2', E, Q, 2)]],
          ['gmail', [mail('m1', E, 3)]],
        ]);
        const r = await resolve(target, { batchSize: size });
        assert.equal(r.merged_contacts, 1);
        const got = await contacts(target);
        assert.equal(got.unlinked, 0);
        assert.deepEqual(got.contacts, [`Pat Doe: ${P},${Q},${E} <- SM${'1'.padStart(32, '0')},SM${'2'.padStart(32, '0')},f1,f2,m1`]);
      } finally {
        await target.drop();
      }
    });
  }

  for (const order of ['the one in the middle', 'the newest']) {
    it(`a contact two forms each join to another is merged with both, nothing lost (it is ${order})`, async () => {
      // Y owns P, X an email and Q, Z another email; one form names X's email with P, another
      // X's Q with Z's email: X, Y and Z are one person, and X sits in both of the forms' pairs.
      const X = 'x@example.com';
      const Z = 'z@example.com';
      const target = await migratedTarget();
      try {
        const y = (): [string, unknown[]] => ['twilio', [sms(1, P)]];
        const x = (): [string, unknown[]] => ['webform', [form('fx', X, Q, 1)]];
        const z = (): [string, unknown[]] => ['gmail', [mail('mz', Z, 2)]];
        for (const events of order === 'the newest' ? [y(), z(), x()] : [y(), x(), z()]) {
          await load(target, [events]);
          await resolve(target);
        }
        await load(target, [['webform', [form('f1', X, P, 3), form('f2', Z, Q, 4)]]]);
        const r = await resolve(target);
        assert.equal(r.merged_contacts, 2);
        const got = await contacts(target);
        assert.equal(got.unlinked, 0);
        assert.deepEqual(
          got.contacts.map((c) => c.replace(/^[^:]*: /, '')),
          [`${P},${Q},${X},${Z} <- SM${'1'.padStart(32, '0')},f1,f2,fx,mz`],
        );
      } finally {
        await target.drop();
      }
    });
  }

  it("a form naming a person's own contact (its phone) and a contact resolve made (its email): resolve's folds into the person's, which keeps its name", async () => {
    const target = await migratedTarget();
    try {
      await enter(target, 'Patricia (met at expo)', [{ kind: 'phone', value: P }]);
      await load(target, [['gmail', [mail('m1', E, 1)]]]);
      await resolve(target);
      await load(target, [['webform', [form('f1', E, P, 2)]]]);
      const r = await resolve(target);
      assert.equal(r.merged_contacts, 1);
      assert.deepEqual(await contacts(target), { contacts: [`Patricia (met at expo): ${P},${E} <- f1,m1`], unlinked: 0 });
    } finally {
      await target.drop();
    }
  });

  it('the open insights errors of a contact merged away are discarded, naming the contact it became', async () => {
    const target = await migratedTarget();
    try {
      await load(target, [['twilio', [sms(1, P)]]]);
      await resolve(target);
      await load(target, [['gmail', [mail('m1', E, 1)]]]);
      await resolve(target);
      const owners = await query<{ kind: string; contact_id: string }>(target, 'SELECT kind, contact_id FROM public.contact_identities');
      const of = (kind: string) => owners.find((r) => r.kind === kind)!.contact_id;
      await query(
        target,
        `INSERT INTO public.raw_event_errors (user_id, stage, error, context) VALUES ($1, 'insights', 'the model refused', jsonb_build_object('contact_id', $2::text))`,
        [USER_A, of('email')],
      );
      await load(target, [['webform', [form('f1', E, P, 2)]]]);
      await resolve(target);
      assert.deepEqual(await query(target, `SELECT status, close_reason FROM public.raw_event_errors WHERE stage = 'insights'`), [
        { status: 'discarded', close_reason: `its contact was merged into ${of('phone')}` },
      ]);
    } finally {
      await target.drop();
    }
  });

  it('a contact resolve made, which two forms join to two contacts people entered, merges with neither', async () => {
    const X = 'x@example.com';
    const Z = 'z@example.com';
    const target = await migratedTarget();
    try {
      await enter(target, 'Pat at work', [{ kind: 'phone', value: P }]);
      await enter(target, 'Pat at home', [{ kind: 'email', value: Z }]);
      await load(target, [['webform', [form('fx', X, Q, 1)]]]);
      await resolve(target);
      await load(target, [['webform', [form('f1', X, P, 2), form('f2', Z, Q, 3)]]]);
      const counts = await resolve(target);
      assert.equal(counts.merged_contacts, undefined);
      assert.equal(counts.ambiguous, 2);
      assert.deepEqual(await contacts(target), {
        contacts: ['Pat Doe: +14155556789,x@example.com <- fx', `Pat at home: ${Z} <- `, `Pat at work: ${P} <- `],
        unlinked: 2,
      });
    } finally {
      await target.drop();
    }
  });

  const shapes: [string, [string, unknown[]][], [string, unknown[]][]][] = [
    [
      'a merge counted once, later batches deciding by it',
      [['twilio', [sms(1, P), sms(2, Q)]]],
      [['webform', [form('f1', E, P, 1), form('f2', E, Q, 2), form('f3', E, P, 3), form('f4', E, Q, 4)]]],
    ],
    [
      'a contact an earlier batch would create merged by a later one',
      [['twilio', [sms(1, P)]]],
      [
        ['gmail', [mail('m1', E, 1)]],
        ['webform', [form('f2', E, P, 2)]],
      ],
    ],
  ];
  for (const [shape, known, next] of shapes) {
    it(`--dry-run in small batches says what the run will do: ${shape}`, async () => {
      const target = await migratedTarget();
      try {
        await load(target, known);
        await resolve(target);
        await load(target, next);
        const before = await contacts(target);
        const dry = await resolve(target, { batchSize: '1', dryRun: true });
        assert.deepEqual(await contacts(target), before, 'a dry run writes nothing');
        const real = await resolve(target, { batchSize: '1' });
        assert.equal(real.merged_contacts, 1);
        for (const k of ['linked', 'merged_contacts', 'created_contacts', 'created_identities', 'ambiguous', 'unresolved'])
          assert.equal(dry[k], real[k], k);
      } finally {
        await target.drop();
      }
    });
  }

  it('three contacts merged into one: the keeper named after its phone takes the one real name among them', async () => {
    const A = 'a@example.com';
    const B = 'b@example.com';
    const target = await migratedTarget();
    try {
      for (const events of [
        ['twilio', [sms(1, P)]],
        ['gmail', [mail('mb', B, 1)]],
        ['gmail', [mail('ma', `Ann <${A}>`, 2)]],
      ] as [string, unknown[]][]) {
        await load(target, [events]);
        await resolve(target);
      }
      await load(target, [['webform', [form('f1', B, P, 3, null), form('f2', A, P, 4, null)]]]);
      const r = await resolve(target);
      assert.equal(r.merged_contacts, 2);
      assert.deepEqual(await query(target, 'SELECT display_name, primary_email, primary_phone FROM public.contacts'), [
        { display_name: 'Ann', primary_email: B, primary_phone: P },
      ]);
    } finally {
      await target.drop();
    }
  });

  it('two contacts people entered are never merged: the form naming both stays ambiguous', async () => {
    const target = await migratedTarget();
    try {
      await enter(target, 'Pat at work', [{ kind: 'phone', value: P }]);
      await enter(target, 'Pat at home', [{ kind: 'email', value: E }]);
      await load(target, [['webform', [form('f1', E, P, 1)]]]);
      const counts = await resolve(target);
      assert.equal(counts.merged_contacts, undefined);
      assert.equal(counts.ambiguous, 1);
      assert.deepEqual(await contacts(target), { contacts: [`Pat at home: ${E} <- `, `Pat at work: ${P} <- `], unlinked: 1 });
    } finally {
      await target.drop();
    }
  });
});
