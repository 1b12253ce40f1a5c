// trace through the real binary: an event that went through every stage shows its row in each
// table, found by its raw event id, its provider id or its interaction's id; a dead-lettered one
// shows its error; an id nothing matches exits 2.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';
import { loadEvents, USER_B } from './support/events.js';

const fixture = (name: string) => JSON.parse(fs.readFileSync(path.join(packageRoot, 'fixtures/webform', name), 'utf8')) as { id: string };

interface TraceDoc {
  foundBy: string;
  event: { id: string; provider: string; source_id: string } | null;
  import: { batchId: string | null; audit: { id: string } | null } | null;
  normalize: { outcome: string };
  interactions: { id: string; contact_id: string | null }[];
  contact: { contact: { id: string }; identities: { kind: string; matched: boolean }[] } | null;
  chunks: { chunk_index: number; content_hash: string; dimensions: number }[];
  insights: { kind: string }[];
  timeline: { source_type: string }[];
  errors: { stage: string; status: string; attempts: number }[];
  runs: { command: string; exact: boolean }[];
}

describe('trace', () => {
  let target: TestTarget;
  const cli = (...args: string[]) => runCli([...target.args, ...args]);
  const good = fixture('contact-with-message.json');
  const bad = fixture('invalid/date-without-offset.json');

  before(async () => {
    target = await migratedTarget();
    const db = await target.open();
    try {
      await loadEvents(db, 'webform', [good, bad]);
    } finally {
      await db.close();
    }
    const r = await cli('backfill', '--since', '2000-01-01', '--create-contacts', '--no-progress');
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => target.drop());

  it('follows an event through every table, from any of its ids', async () => {
    const bySource = await cli('--json', 'trace', `webform:${good.id}`);
    assert.equal(bySource.code, 0, bySource.stderr);
    const t = bySource.json<TraceDoc>();
    assert.equal(t.foundBy, 'source_id');
    assert.equal(t.event?.source_id, good.id);
    assert.ok(t.import?.batchId, 'the import batch');
    assert.equal(t.normalize.outcome, 'interactions');
    assert.equal(t.interactions.length, 1);
    assert.ok(t.contact, 'resolved to a contact');
    assert.equal(t.interactions[0]!.contact_id, t.contact.contact.id);
    assert.ok(
      t.contact.identities.some((i) => i.matched),
      'the identity it was resolved by',
    );
    assert.ok(t.chunks.length >= 1 && t.chunks.every((c) => c.dimensions === 1536 && c.content_hash.length === 64));
    assert.ok(t.insights.length >= 1, 'the insights it fed');
    assert.ok(t.timeline.some((x) => x.source_type === 'interaction'));
    assert.ok(t.timeline.some((x) => x.source_type === 'insight'));
    assert.deepEqual(t.errors, []);
    assert.ok(t.runs.some((r) => r.command === 'backfill'));

    const byRaw = await cli('--json', 'trace', t.event!.id);
    assert.equal(byRaw.code, 0, byRaw.stderr);
    assert.equal(byRaw.json<TraceDoc>().foundBy, 'raw_event');
    assert.deepEqual({ ...byRaw.json<TraceDoc>(), foundBy: 'source_id' }, t);

    const byInteraction = await cli('--json', 'trace', t.interactions[0]!.id);
    assert.equal(byInteraction.code, 0, byInteraction.stderr);
    assert.equal(byInteraction.json<TraceDoc>().foundBy, 'interaction');
    assert.equal(byInteraction.json<TraceDoc>().event?.id, t.event!.id);

    const text = await cli('trace', t.event!.id);
    assert.equal(text.code, 0, text.stderr);
    for (const part of ['raw event', 'normalize: interactions', 'contact', 'embeddings: ', 'timeline: ', 'dead letters: 0', 'runs: '])
      assert.ok(text.stdout.includes(part), `${part}\n${text.stdout}`);
  });

  it('shows the dead letter of an event that failed', async () => {
    const r = await cli('--json', 'trace', `webform:${bad.id}`);
    assert.equal(r.code, 0, r.stderr);
    const t = r.json<TraceDoc>();
    assert.equal(t.normalize.outcome, 'dead-lettered');
    assert.deepEqual(
      t.errors.map((e) => [e.stage, e.status, e.attempts]),
      [['normalize', 'open', 1]],
    );
    assert.deepEqual(t.interactions, []);
  });

  it('exits 2 on an id nothing matches and on what is not an id', async () => {
    const unknown = await cli('trace', '6b1d7c2e-0000-4000-8000-000000000000');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no raw event, interaction or dead letter matches 6b1d7c2e-0000-4000-8000-000000000000/);
    const json = await cli('--json', 'trace', 'gmail:no-such-message');
    assert.equal(json.code, 2);
    assert.equal(json.json<{ ok: boolean }>().ok, false);
    for (const args of [['trace', 'not an id'], ['trace'], ['trace', `webform:${good.id}`, '--user', 'me']]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
  });

  it('lists only the dead letters of the event’s own user, and refuses --user of another user', async () => {
    const db = await target.open();
    try {
      // Another user's import error about the same provider id.
      await db.query(
        `INSERT INTO public.raw_event_errors (user_id, provider, stage, error, context)
VALUES ($1, 'webform', 'import', 'the time is not valid', jsonb_build_object('file', '/x', 'line', 1, 'batch_id', NULL, 'source_id', $2::text))`,
        [USER_B, good.id],
      );
    } finally {
      await db.close();
    }
    const r = await cli('--json', 'trace', `webform:${good.id}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json<TraceDoc>().errors, []);
    const other = await cli('trace', r.json<TraceDoc>().event!.id, '--user', USER_B);
    assert.equal(other.code, 2, other.stdout);
    assert.match(other.stderr, /is not an event of user/);
  });

  it('an event whose raw row is gone (archived, deleted): its interaction, contact and chunks are traced from either id', async () => {
    const before = (await cli('--json', 'trace', `webform:${good.id}`)).json<TraceDoc>();
    const db = await target.open();
    try {
      await db.query(`DELETE FROM public.raw_events WHERE id = $1`, [before.event!.id]);
    } finally {
      await db.close();
    }
    for (const id of [before.interactions[0]!.id, before.event!.id]) {
      const r = await cli('--json', 'trace', id);
      assert.equal(r.code, 0, `${id}: ${r.stderr}`);
      const t = r.json<TraceDoc>();
      assert.equal(t.event, null);
      assert.equal(t.normalize.outcome, 'interactions');
      assert.deepEqual(
        t.interactions.map((i) => i.id),
        [before.interactions[0]!.id],
      );
      assert.equal(t.contact?.contact.id, before.contact!.contact.id);
      assert.equal(t.chunks.length, before.chunks.length);
    }
  });
});
