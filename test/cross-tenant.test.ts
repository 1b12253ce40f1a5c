// A user cannot make the pipeline write into another user's data (issue 12, item 2). Row level
// security lets an authenticated user insert `note_added` interactions of their own, with any
// raw_event_id and contact_id they like: here user A's notes name user B's raw event and B's
// contact, and each stage run by the operator afterwards must leave B's rows alone.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Db, Queryable } from '../src/db/connect.js';
import { runCli } from './support/cli.js';
import { migratedDb, type TestTarget } from './support/db.js';
import { USER_A, USER_B } from './support/events.js';

const one = async <T>(db: Queryable, sql: string, params: unknown[] = []): Promise<T | undefined> =>
  (await db.query<T & object>(sql, params)).rows[0];

describe('notes pointing at another user’s rows', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let bRawEvent: string;
  let bContact: string;
  let noteToRaw: string;
  let noteToContact: string;

  const withDb = async <T>(fn: (db: Db) => Promise<T>): Promise<T> => {
    const db = await target.open();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };

  before(async () => {
    const setup = await migratedDb();
    target = setup.target;
    const db = setup.db;
    try {
      // B's raw event, not linked to any contact yet, and B's contact with one interaction of B's
      // whose work is done (its queue rows taken), so nothing of B's is pending.
      bRawEvent = (await one<{ id: string }>(
        db,
        `INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at) VALUES ($1, 'webform', 'b-1', '{}', now()) RETURNING id`,
        [USER_B],
      ))!.id;
      bContact = (await one<{ id: string }>(
        db,
        `INSERT INTO public.contacts (user_id, display_name, primary_email, source) VALUES ($1, 'Bea of B', 'bea@b.example', 'manual') RETURNING id`,
        [USER_B],
      ))!.id;
      await db.query(
        `INSERT INTO public.interactions (user_id, contact_id, type, subject, body_text, source, source_id, occurred_at)
VALUES ($1, $2, 'email_received', 'B private', 'B private text', 'gmail', 'b-mail-1', now())`,
        [USER_B, bContact],
      );
      await db.query(`DELETE FROM omni_ingest.work_queue`);
      await db.query(`DELETE FROM omni_ingest.normalize_queue`);
      // User A, as the authenticated role with A's JWT claims, the way Supabase runs A's requests.
      noteToRaw = randomUUID();
      noteToContact = randomUUID();
      await db.transaction(async (tx) => {
        await tx.query(`SELECT set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: USER_A, role: 'authenticated' })]);
        await tx.query('SET LOCAL ROLE authenticated');
        await tx.query(
          `INSERT INTO public.interactions (id, user_id, type, subject, body_text, source, source_id, occurred_at, source_meta, raw_event_id, contact_id)
VALUES ($1, $3, 'note_added', 'note one', 'a note about a stranger', 'manual', 'n-1', now(),
        '{"direction": "inbound", "from": [{"kind": "email", "value": "stranger@a.example"}]}', $4, NULL),
       ($2, $3, 'note_added', 'note two', 'a note naming B''s contact', 'manual', 'n-2', now(), '{}', $4, $5)`,
          [noteToRaw, noteToContact, USER_A, bRawEvent, bContact],
        );
      });
      // The queue holds no work on B's contact for A (the trigger checks whose contact it is).
      const queued = await one<{ n: number }>(
        db,
        `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE item_id = $1 OR (stage = 'timeline' AND item_id = $2)`,
        [bContact, noteToContact],
      );
      assert.equal(queued?.n, 0);
      // Work queued before the guard existed: the stages must ignore it too.
      await db.query(
        `INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, occurred_at) VALUES ('insights', $1, $2, now()), ('timeline', $3, $2, now())`,
        [bContact, USER_A, noteToContact],
      );
    } finally {
      await db.close();
    }
  });
  after(async () => {
    await target.drop();
  });

  it('resolve links A’s note to A’s contact, and never B’s raw event', async () => {
    const r = await runCli([...target.args, 'resolve', '--create-contacts']);
    assert.equal(r.code, 0, r.stderr);
    await withDb(async (db) => {
      const note = await one<{ contact_id: string | null; owner: string }>(
        db,
        `SELECT i.contact_id, c.user_id AS owner FROM public.interactions i LEFT JOIN public.contacts c ON c.id = i.contact_id WHERE i.id = $1`,
        [noteToRaw],
      );
      assert.equal(note?.owner, USER_A, 'the stage ran: A’s note has A’s new contact');
      const raw = await one<{ contact_id: string | null }>(db, 'SELECT contact_id FROM public.raw_events WHERE id = $1', [bRawEvent]);
      assert.equal(raw?.contact_id, null, 'B’s raw event was linked to A’s contact');
    });
  });

  it('embed stores A’s chunks under A and no dead letter of A points at B’s raw event', async () => {
    const r = await runCli([...target.args, 'embed', '--embedder', 'local']);
    assert.equal(r.code, 0, r.stderr);
    await withDb(async (db) => {
      const chunks = await one<{ a: number; other: number }>(
        db,
        `SELECT count(*) FILTER (WHERE user_id = $3)::int AS a, count(*) FILTER (WHERE user_id <> $3)::int AS other
FROM public.embeddings WHERE owner_id IN ($1, $2)`,
        [noteToRaw, noteToContact, USER_A],
      );
      assert.ok((chunks?.a ?? 0) >= 2, 'the stage ran');
      assert.equal(chunks?.other, 0);
      const letters = await one<{ n: number }>(
        db,
        'SELECT count(*)::int AS n FROM public.raw_event_errors WHERE raw_event_id = $1 AND user_id <> $2',
        [bRawEvent, USER_B],
      );
      assert.equal(letters?.n, 0);
    });
  });

  it('insights makes nothing for B’s contact from A’s note', async () => {
    const r = await runCli([...target.args, 'insights', '--insights-provider', 'heuristic']);
    assert.equal(r.code, 0, r.stderr);
    await withDb(async (db) => {
      const made = await one<{ b: number; a: number }>(
        db,
        `SELECT count(*) FILTER (WHERE subject_id = $1)::int AS b, count(*) FILTER (WHERE user_id = $2)::int AS a FROM public.ai_insights`,
        [bContact, USER_A],
      );
      assert.ok((made?.a ?? 0) > 0, 'the stage ran: A’s own contact has insights');
      assert.equal(made?.b, 0, 'A’s note made insights for B’s contact');
    });
  });

  it('timeline puts nothing on B’s contact and no entry of A points at B’s raw event', async () => {
    const r = await runCli([...target.args, 'timeline']);
    assert.equal(r.code, 0, r.stderr);
    await withDb(async (db) => {
      const entries = await one<{ a: number; on_b: number; to_b_raw: number }>(
        db,
        `SELECT count(*) FILTER (WHERE user_id = $1)::int AS a,
       count(*) FILTER (WHERE contact_id = $2)::int AS on_b,
       count(*) FILTER (WHERE event_data ->> 'raw_event_id' = $3::text)::int AS to_b_raw
FROM public.contact_timeline`,
        [USER_A, bContact, bRawEvent],
      );
      assert.ok((entries?.a ?? 0) > 0, 'the stage ran');
      assert.equal(entries?.on_b, 0);
      assert.equal(entries?.to_b_raw, 0);
    });
  });
});
