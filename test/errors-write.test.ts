// errors retry, discard, export and purge through the real binary: a retry closes an error only
// with its output, in one transaction; failing again counts an attempt on the same row; nothing
// the selection does not name is touched.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI } from '../tools/fake-openai.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';
import { loadEvents, USER_A, webforms } from './support/events.js';

const NO_KEY = { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined };

interface ErrorRow {
  id: string;
  raw_event_id: string;
  status: string;
  attempts: number;
  closed_by: string | null;
  close_reason: string | null;
  closed_at: Date | null;
  first_seen: Date;
  last_seen: Date;
}

async function query<T>(target: TestTarget, sql: string, params: unknown[] = []): Promise<T[]> {
  const db = await target.open();
  try {
    return (await db.query<T & Record<string, unknown>>(sql, params)).rows;
  } finally {
    await db.close();
  }
}

const errorsOf = (target: TestTarget, stage: string) =>
  query<ErrorRow>(
    target,
    `SELECT id, raw_event_id, status, attempts, closed_by, close_reason, closed_at, first_seen, last_seen
FROM public.raw_event_errors WHERE stage = $1 ORDER BY raw_event_id`,
    [stage],
  );

/** Gives the stored payloads of these raw events their missing offset back, as an operator would. */
const fixOffsets = (target: TestTarget, ids: string[]) =>
  query(
    target,
    `UPDATE public.raw_events SET payload = jsonb_set(payload, '{submitted_at}', to_jsonb((payload ->> 'submitted_at') || 'Z'))
WHERE id = ANY($1::uuid[])`,
    [ids],
  );

async function seeded(events: number, bad: (i: number) => boolean): Promise<TestTarget> {
  const target = await migratedTarget();
  const db = await target.open();
  try {
    await loadEvents(db, 'webform', webforms(events, bad));
  } finally {
    await db.close();
  }
  const normalize = await runCli([...target.args, 'normalize'], { env: NO_KEY });
  assert.equal(normalize.code, 0, normalize.stderr);
  return target;
}

interface RetryJson {
  runId: string;
  status: string;
  resolved: number;
  stillOpen: number;
  stages: { stage: string; selected: number; counts: Record<string, number>; gone: number }[];
}

describe('errors retry', { timeout: 300_000 }, () => {
  let target: TestTarget;
  before(async () => {
    target = await seeded(40, (i) => i % 10 === 3);
  });
  after(async () => {
    await target?.drop();
  });

  it('dead letters have ids in time order: the layout of a version 7 UUID, the first 48 bits the time of the insert', async () => {
    const rows = await query<{ id: string; ms: string; written: string }>(
      target,
      `SELECT id, ('x' || left(replace(id::text, '-', ''), 12))::bit(48)::bigint::text AS ms,
       floor(extract(epoch FROM error_at) * 1000)::bigint::text AS written
FROM public.raw_event_errors`,
    );
    assert.equal(rows.length, 4);
    for (const r of rows) {
      assert.equal(r.id[14], '7', `version 7: ${r.id}`);
      // error_at is the transaction's start; the id is taken a moment later in the same one.
      const lag = Number(r.ms) - Number(r.written);
      assert.ok(lag >= 0 && lag < 60_000, `id ${r.id} written ${lag} ms after its transaction began`);
    }
  });

  it('--dry-run lists what it would retry and writes nothing', async () => {
    const before = await errorsOf(target, 'normalize');
    const dry = await runCli([...target.args, 'errors', 'retry', '--all', '--dry-run'], { env: NO_KEY });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /nothing written/);
    assert.deepEqual(await errorsOf(target, 'normalize'), before);
  });

  it('--limit: the errors past it are not said to be held by another run', async () => {
    const limited = await runCli([...target.args, '--json', 'errors', 'retry', '--stage', 'normalize', '--limit', '1'], { env: NO_KEY });
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(limited.json<RetryJson>().status, 'succeeded');
    assert.doesNotMatch(limited.stderr, /held by another run/);
    // The one retried failed again: one attempt more on exactly one row.
    const attempts = (await errorsOf(target, 'normalize')).map((e) => e.attempts).sort();
    assert.deepEqual(attempts, [1, 1, 1, 2]);
    await query(target, `UPDATE public.raw_event_errors SET attempts = 1 WHERE stage = 'normalize'`);
  });

  it('a retry that fails again counts an attempt on the same row; a fixed payload resolves with its interaction', async () => {
    const before = await errorsOf(target, 'normalize');
    assert.equal(before.length, 4);
    assert.ok(before.every((e) => e.status === 'open' && e.attempts === 1));

    const again = await runCli([...target.args, '--json', 'errors', 'retry', '--all'], { env: NO_KEY });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      { resolved: again.json<RetryJson>().resolved, stillOpen: again.json<RetryJson>().stillOpen },
      { resolved: 0, stillOpen: 4 },
    );
    const twice = await errorsOf(target, 'normalize');
    assert.deepEqual(
      twice.map((e) => [e.id, e.status, e.attempts]),
      before.map((e) => [e.id, 'open', 2]),
    );
    // Failing again is counted on the open row itself: never closed on the way, first seen as
    // before, last seen at the retry.
    for (const [i, e] of twice.entries()) {
      assert.deepEqual([e.closed_at, e.closed_by, e.close_reason], [null, null, null]);
      assert.deepEqual(e.first_seen, before[i]?.first_seen);
      assert.ok(e.last_seen > before[i]!.last_seen, 'last seen moved');
    }

    const fixed = before.slice(0, 3).map((e) => e.raw_event_id);
    await fixOffsets(target, fixed);
    const retry = await runCli([...target.args, '--json', 'errors', 'retry', '--stage', 'normalize'], { env: NO_KEY });
    assert.equal(retry.code, 0, retry.stderr);
    const out = retry.json<RetryJson>();
    assert.deepEqual(
      { resolved: out.resolved, stillOpen: out.stillOpen, status: out.status },
      { resolved: 3, stillOpen: 1, status: 'succeeded' },
    );

    const after = await errorsOf(target, 'normalize');
    assert.equal(after.length, 4, 'no row added: retries update the error they retry');
    for (const e of after) {
      if (fixed.includes(e.raw_event_id)) {
        assert.equal(e.status, 'resolved');
        assert.equal(e.closed_by, out.runId, 'closed by the retry run');
      } else assert.deepEqual([e.status, e.attempts], ['open', 3]);
    }
    const interactions = await query<{ raw_event_id: string }>(
      target,
      `SELECT raw_event_id FROM public.interactions WHERE raw_event_id = ANY($1::uuid[]) ORDER BY raw_event_id`,
      [before.map((e) => e.raw_event_id)],
    );
    assert.deepEqual(
      interactions.map((r) => r.raw_event_id),
      [...fixed].sort(),
    );
    const runs = await query<{ command: string; status: string }>(target, `SELECT command, status FROM omni_ingest.runs WHERE id = $1`, [
      out.runId,
    ]);
    assert.deepEqual(runs, [{ command: 'errors retry', status: 'succeeded' }]);
  });

  it('a write that fails after the interaction is inserted rolls back the resolution with it', async () => {
    const [open] = (await errorsOf(target, 'normalize')).filter((e) => e.status === 'open');
    assert.ok(open);
    await fixOffsets(target, [open.raw_event_id]);
    await query(
      target,
      `CREATE FUNCTION public.test_refuse_interaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$`,
    );
    await query(
      target,
      `CREATE TRIGGER test_refuse AFTER INSERT ON public.interactions FOR EACH ROW EXECUTE FUNCTION public.test_refuse_interaction()`,
    );
    try {
      const retry = await runCli([...target.args, '--json', 'errors', 'retry', open.id], { env: NO_KEY });
      // A database failure is not the item's fault: the run fails, its batch rolled back whole.
      assert.equal(retry.code, 1, retry.stderr);
      assert.match(retry.stderr, /refused by a test trigger/);
      const [row] = (await errorsOf(target, 'normalize')).filter((e) => e.id === open.id);
      assert.deepEqual([row?.status, row?.attempts], ['open', open.attempts], 'not resolved without its interaction');
      const n = await query<{ n: number }>(target, `SELECT count(*)::int AS n FROM public.interactions WHERE raw_event_id = $1`, [
        open.raw_event_id,
      ]);
      assert.equal(n[0]?.n, 0);
    } finally {
      await query(target, `DROP TRIGGER test_refuse ON public.interactions`);
      await query(target, `DROP FUNCTION public.test_refuse_interaction()`);
    }
    const retry = await runCli([...target.args, '--json', 'errors', 'retry', open.id], { env: NO_KEY });
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(retry.json<RetryJson>().resolved, 1);
  });

  it('an error whose raw event is gone, or that names none, is counted as not retryable and left open', async () => {
    const rows = await query<{ id: string }>(
      target,
      `INSERT INTO public.raw_event_errors (raw_event_id, user_id, provider, stage, error, context)
VALUES (gen_random_uuid(), $1, 'webform', 'normalize', 'invalid webform submission: gone', '{"source_id": null, "issues": []}'),
       (NULL, $1, 'webform', 'normalize', 'invalid webform submission: no event', '{"source_id": null, "issues": []}')
RETURNING id`,
      [USER_A],
    );
    const retry = await runCli([...target.args, '--json', 'errors', 'retry', ...rows.map((r) => r.id)], { env: NO_KEY });
    assert.equal(retry.code, 0, retry.stderr);
    const out = retry.json<RetryJson>();
    assert.deepEqual(
      { resolved: out.resolved, stillOpen: out.stillOpen, stages: out.stages.map((s) => [s.stage, s.selected, s.gone]) },
      { resolved: 0, stillOpen: 2, stages: [['normalize', 2, 2]] },
    );
    await query(target, `UPDATE public.raw_event_errors SET status = 'discarded', closed_at = now() WHERE id = ANY($1::uuid[])`, [
      rows.map((r) => r.id),
    ]);
  });

  it('refuses a selection it cannot keep: exit 2, nothing run', async () => {
    const cases: [string[], RegExp][] = [
      [['errors', 'retry'], /name the errors to retry/],
      [['errors', 'retry', '--status', 'resolved', '--all'], /open errors only/],
      [['errors', 'retry', 'not-an-id'], /id/i],
      [['errors', 'retry', '--signature', 'xyz'], /signature/i],
      [['errors', 'retry', '--group', 'aaaaaaaaaaaaaaaa', '--signature', 'bbbbbbbbbbbbbbbb'], /different groups/],
      [['errors', 'retry', '--all', '--batch-size', '0'], /batch-size/],
      [['errors', 'retry', '--stage', 'timeline'], /stage/],
      [['errors', 'discard', '--all'], /reason/],
      [['errors', 'export', '--all'], /--out/],
      [['errors', 'purge'], /older-than/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([...target.args, ...args], { env: NO_KEY });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
  });
});

describe('errors after backfill --reprocess', { timeout: 300_000 }, () => {
  it('reprocessing a failing event twice keeps one open error per event, its attempts counted', async () => {
    const target = await seeded(30, (i) => i % 6 === 0);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await runCli([...target.args, 'backfill', '--stages', 'normalize', '--reprocess'], { env: NO_KEY });
        assert.equal(r.code, 0, r.stderr);
      }
      const rows = await query<{ events: number; open: number; attempts: number }>(
        target,
        `SELECT count(DISTINCT raw_event_id)::int AS events, count(*) FILTER (WHERE status = 'open')::int AS open, min(attempts)::int AS attempts
FROM public.raw_event_errors WHERE stage = 'normalize'`,
      );
      assert.deepEqual(rows[0], { events: 5, open: 5, attempts: 3 });
    } finally {
      await target.drop();
    }
  });
});

describe('errors export, discard and purge', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let dir: string;
  before(async () => {
    target = await seeded(20, (i) => i % 5 === 1);
    dir = await mkdtemp(path.join(os.tmpdir(), 'omni-errors-'));
  });
  after(async () => {
    await target?.drop();
  });

  it('export, fix by hand, import --update: the errors resolve with their interactions', async () => {
    const out = path.join(dir, 'fix.ndjson');
    const exported = await runCli([...target.args, '--json', 'errors', 'export', '--stage', 'normalize', '--out', out], { env: NO_KEY });
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    const fixed = lines.map((l) => {
      const p = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify({ ...p, submitted_at: `${String(p.submitted_at)}Z` });
    });
    writeFileSync(out, `${fixed.slice(0, 3).join('\n')}\n${lines[3]}\n`);

    const imported = await runCli([...target.args, 'import', out, '--provider', 'webform', '--user', USER_A, '--update'], { env: NO_KEY });
    assert.equal(imported.code, 0, imported.stderr);
    const normalize = await runCli([...target.args, '--json', 'normalize'], { env: NO_KEY });
    assert.equal(normalize.code, 0, normalize.stderr);
    const errors = await errorsOf(target, 'normalize');
    assert.deepEqual(errors.map((e) => e.status).sort(), ['open', 'resolved', 'resolved', 'resolved']);
    const n = await query<{ n: number }>(
      target,
      `SELECT count(*)::int AS n FROM public.interactions WHERE raw_event_id = ANY($1::uuid[])`,
      [errors.filter((e) => e.status === 'resolved').map((e) => e.raw_event_id)],
    );
    assert.equal(n[0]?.n, 3);
  });

  it('import errors: export, fix, import again resolves them; an unfixed line stays open', async () => {
    const file = path.join(dir, 'incoming.ndjson');
    const good = [...webforms(3, () => false, 99)] as Record<string, unknown>[];
    // Without an id the provider cannot key them: kept as import errors with their record.
    const bad = good.map(({ id: _id, ...p }, i) => ({ ...p, form_name: `no id ${i}` }));
    writeFileSync(file, `${[...good, ...bad].map((p) => JSON.stringify(p)).join('\n')}\n`);
    const first = await runCli([...target.args, '--json', 'import', file, '--provider', 'webform', '--user', USER_A], { env: NO_KEY });
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await errorsOf(target, 'import')).filter((e) => e.status === 'open').length, 3);
    // The same file again keeps one open error per record, its attempts counted.
    const again = await runCli([...target.args, 'import', file, '--provider', 'webform', '--user', USER_A], { env: NO_KEY });
    assert.equal(again.code, 0, again.stderr);
    const twice = await errorsOf(target, 'import');
    assert.deepEqual(
      twice.map((e) => [e.status, e.attempts]),
      [
        ['open', 2],
        ['open', 2],
        ['open', 2],
      ],
    );

    const out = path.join(dir, 'import-fix.ndjson');
    const exported = await runCli([...target.args, 'errors', 'export', '--stage', 'import', '--out', out], { env: NO_KEY });
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines.length, 3);
    const edited = lines.map((l, i) => {
      const p = JSON.parse(l) as Record<string, unknown>;
      return i < 2 ? JSON.stringify({ ...p, id: `fixed-by-hand-${i}` }) : l;
    });
    writeFileSync(out, `${edited.join('\n')}\n`);
    const imported = await runCli([...target.args, '--json', 'import', out, '--provider', 'webform', '--user', USER_A], { env: NO_KEY });
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.json<{ counts: { resolved: number } }>().counts.resolved, 2);
    const after = await errorsOf(target, 'import');
    assert.deepEqual(after.map((e) => e.status).sort(), ['open', 'resolved', 'resolved']);
  });

  it('an export over an earlier one to the same file: importing the file resolves only what the new file holds', async () => {
    // A fresh target: the open errors of the tests above would be in the selection.
    const own = await migratedTarget();
    try {
      const out = path.join(dir, 'reused.ndjson');
      const ids: string[] = [];
      for (const name of ['first', 'second']) {
        const file = path.join(dir, `${name}.ndjson`);
        const [good] = [...webforms(1, () => false, name === 'first' ? 7 : 8)] as Record<string, unknown>[];
        const { id: _id, ...noId } = good!;
        writeFileSync(file, `${JSON.stringify(good)}\n${JSON.stringify({ ...noId, form_name: name })}\n`);
        const imported = await runCli([...own.args, 'import', file, '--provider', 'webform', '--user', USER_A], { env: NO_KEY });
        assert.equal(imported.code, 0, imported.stderr);
        const open = (await errorsOf(own, 'import')).filter((e) => e.status === 'open' && !ids.includes(e.id));
        assert.equal(open.length, 1);
        ids.push(open[0]!.id);
        // Each export writes its one record to line 1 of the same file.
        const exported = await runCli([...own.args, 'errors', 'export', open[0]!.id, '--out', out], { env: NO_KEY });
        assert.equal(exported.code, 0, exported.stderr);
      }
      const line = JSON.parse(readFileSync(out, 'utf8').trim()) as Record<string, unknown>;
      assert.equal(line.form_name, 'second');
      writeFileSync(out, `${JSON.stringify({ ...line, id: 'fixed-second' })}\n`);
      const imported = await runCli([...own.args, '--json', 'import', out, '--provider', 'webform', '--user', USER_A], { env: NO_KEY });
      assert.equal(imported.code, 0, imported.stderr);
      assert.equal(imported.json<{ counts: { resolved: number } }>().counts.resolved, 1);
      const byId = new Map((await errorsOf(own, 'import')).map((e) => [e.id, e.status]));
      assert.deepEqual([byId.get(ids[0]!), byId.get(ids[1]!)], ['open', 'resolved']);
    } finally {
      await own.drop();
    }
  });

  it('discard closes with the reason and deletes nothing; purge deletes only old closed errors', async () => {
    const open = (await errorsOf(target, 'normalize')).filter((e) => e.status === 'open');
    assert.equal(open.length, 1);
    const discard = await runCli([...target.args, 'errors', 'discard', open[0]!.id, '--reason', 'a test submission'], { env: NO_KEY });
    assert.equal(discard.code, 0, discard.stderr);
    const [row] = (await errorsOf(target, 'normalize')).filter((e) => e.id === open[0]!.id);
    assert.deepEqual([row?.status, row?.close_reason], ['discarded', 'a test submission']);

    // An old open error (seen long ago) must survive any purge; closed ones go by their age.
    await query(
      target,
      `INSERT INTO public.raw_event_errors (user_id, provider, stage, error, context, first_seen, last_seen, error_at)
VALUES ($1, 'webform', 'normalize', 'still open', '{}'::jsonb, now() - interval '400 days', now() - interval '400 days', now() - interval '400 days')`,
      [USER_A],
    );
    await query(target, `UPDATE public.raw_event_errors SET closed_at = now() - interval '40 days' WHERE status = 'resolved'`);
    const purge = await runCli([...target.args, '--json', 'errors', 'purge', '--older-than', '30'], { env: NO_KEY });
    assert.equal(purge.code, 0, purge.stderr);
    const left = await query<{ status: string; n: number }>(
      target,
      `SELECT status, count(*)::int AS n FROM public.raw_event_errors GROUP BY status ORDER BY status`,
    );
    // Open: the old one and the import error whose line was left unfixed.
    assert.deepEqual(left, [
      { status: 'discarded', n: 1 },
      { status: 'open', n: 2 },
    ]);
  });
});

describe('errors retry of embed errors', { timeout: 300_000 }, () => {
  it('an input the provider rejects is dead-lettered; retried once it accepts, it is embedded and resolved', async () => {
    const fake = await startFakeOpenAI({ rejectMarker: 'Grüße' });
    const target = await seeded(12, () => false);
    try {
      await query(
        target,
        `UPDATE public.interactions SET body_text = body_text || ' Grüße aus dem Team!' WHERE id = (SELECT id FROM public.interactions ORDER BY id LIMIT 1)`,
      );
      const env = { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url };
      const embed = await runCli([...target.args, 'embed', '--embedder', 'openai'], { env });
      assert.equal(embed.code, 0, embed.stderr);
      const open = (await errorsOf(target, 'embed')).filter((e) => e.status === 'open');
      assert.ok(open.length >= 1, 'the rejected input is a dead letter');

      fake.options.rejectMarker = undefined;
      // A cron job without the key: the local embedder is not fallen into for errors openai made.
      const noKey = await runCli([...target.args, 'errors', 'retry', '--stage', 'embed'], { env: NO_KEY });
      assert.equal(noKey.code, 2, noKey.stdout + noKey.stderr);
      assert.match(noKey.stderr, /the selected embed errors were made by openai; without OPENAI_API_KEY this retry would use local/);
      assert.equal((await errorsOf(target, 'embed')).filter((e) => e.status === 'open').length, open.length, 'nothing retried');
      const retry = await runCli([...target.args, '--json', 'errors', 'retry', '--stage', 'embed', '--embedder', 'openai'], { env });
      assert.equal(retry.code, 0, retry.stderr);
      assert.equal(retry.json<RetryJson>().resolved, open.length);
      const left = await query<{ n: number }>(
        target,
        `SELECT count(*)::int AS n FROM public.interactions i
WHERE NOT EXISTS (SELECT 1 FROM public.embeddings e WHERE e.owner_id = i.id AND e.owner_type = 'interaction')`,
      );
      assert.equal(left[0]?.n, 0, 'every interaction has its embedding');
    } finally {
      await fake.close();
      await target.drop();
    }
  });
});
