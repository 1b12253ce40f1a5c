// insights: per contact, through the real openai SDK against a local fake server, and the
// offline heuristic. Fingerprints, no repeat calls, dead letters, retries, expiry, purge, CLI.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock, type Clock } from '../src/clock.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { createHeuristicInsightProvider } from '../src/insights/heuristic.js';
import { createOpenAIInsightProvider } from '../src/insights/openai.js';
import { InsightProviderError, type InsightProvider } from '../src/insights/provider.js';
import { insightFingerprint } from '../src/insights/schema.js';
import { createMemoryLogger } from '../src/logger.js';
import { enqueue } from '../src/stages/engine/queue.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { createInsightsStage } from '../src/stages/insights.js';
import { insertInsights } from '../src/stages/insights-sql.js';
import { runCli } from './support/cli.js';
import { migratedDb, type TestTarget } from './support/db.js';
import { USER_A, USER_B } from './support/events.js';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';

interface Item {
  type: string;
  at: string;
  subject?: string | null;
  body?: string | null;
}

async function addContact(db: Queryable, name: string, userId = USER_A): Promise<string> {
  const { rows } = await db.query<{ id: string }>(`INSERT INTO public.contacts (user_id, display_name) VALUES ($1, $2) RETURNING id`, [
    userId,
    name,
  ]);
  return rows[0]!.id;
}

/** Linked interactions: the insert trigger queues the contact for insights. */
async function addInteractions(db: Queryable, contactId: string, items: Item[], userId = USER_A): Promise<void> {
  await db.query(
    `
INSERT INTO public.interactions (user_id, contact_id, type, subject, body_text, occurred_at, source, source_id)
SELECT $1, $2, x.type, x.subject, x.body, x.at, 'gmail', x.source_id
FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) AS x(type, subject, body, at, source_id)`,
    [
      userId,
      contactId,
      items.map((i) => i.type),
      items.map((i) => i.subject ?? null),
      items.map((i) => i.body ?? null),
      items.map((i) => i.at),
      items.map(() => randomUUID()),
    ],
  );
}

async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

const openai = (fake: FakeOpenAI, extra: { sleep?: (ms: number) => Promise<void> } = {}) =>
  createOpenAIInsightProvider({ apiKey: 'test-key', baseURL: fake.url, ...extra });

function run(db: Db, provider: InsightProvider, flags: RangeFlags = {}, options: { concurrency?: number; clock?: Clock } = {}) {
  const logger = createMemoryLogger();
  const stage = createInsightsStage({ provider, concurrency: options.concurrency ?? 2, logger });
  return runStage(stage, { db, clock: options.clock ?? systemClock, logger, range: parseRange(flags, systemClock) });
}

const history: Item[] = [
  { type: 'sms_received', at: '2025-05-20T09:00:00Z', body: 'Hi, is this the sales line?' },
  { type: 'email_received', at: '2025-06-01T10:00:00Z', subject: 'Pricing question', body: 'What does the team plan cost?' },
  { type: 'email_sent', at: '2025-06-02T10:00:00Z', subject: 'Re: Pricing question', body: 'It is 20 EUR per seat.' },
  { type: 'email_received', at: '2025-06-03T10:00:00Z', subject: 'RE: Pricing question', body: 'Could you send   the contract?' },
];

describe('insights', () => {
  let db: Db;
  let target: TestTarget;
  let close: () => Promise<void>;
  let fake: FakeOpenAI;
  beforeEach(async () => {
    ({ db, target, close } = await migratedDb());
    fake = await startFakeOpenAI();
  });
  afterEach(async () => {
    await fake.close();
    await close();
  });

  it('the heuristic provider: exact summary, next step and score for a known history', async () => {
    const sofia = await addContact(db, 'Sofia Rossi');
    await addInteractions(db, sofia, history);
    const clock: Clock = { now: () => new Date('2025-06-13T10:00:00Z') };
    const s = await run(db, createHeuristicInsightProvider({ clock }), {}, { clock });
    assert.equal(s.counts.events, 1);
    assert.equal(s.counts.inserted, 3);
    const { rows } = await db.query<{ kind: string; content: { title: string; body: string; score?: number }; model: string }>(
      `SELECT kind, content, model FROM public.ai_insights WHERE subject_id = $1 ORDER BY kind`,
      [sofia],
    );
    assert.deepEqual(rows, [
      {
        kind: 'next_step',
        model: 'heuristic-v1',
        content: {
          title: 'Reply to "Pricing question"',
          body: 'Sofia Rossi wrote by email on 2025-06-03 and has had no reply since. They wrote: "Could you send the contract?"',
        },
      },
      {
        kind: 'score',
        model: 'heuristic-v1',
        content: {
          title: 'Engagement 32/100',
          body: 'Last interaction 10 days ago (recency 0.79, halving every 30 days) and 4 interactions in the last 90 days (frequency 0.40, full at 10).',
          score: 32,
        },
      },
      {
        kind: 'summary',
        model: 'heuristic-v1',
        content: {
          title: '4 interactions (3 email, 1 SMS), last 2025-06-03',
          body: 'Sofia Rossi: 4 interactions from 2025-05-20 to 2025-06-03; the last was an inbound email on 2025-06-03. Topics: Pricing question.',
        },
      },
    ]);
  });

  it('a contact with an interaction stored at infinity gets insights, and its neighbours too', async () => {
    // An application may write 'infinity': no epoch or date holds it.
    const odd = await addContact(db, 'Odd Times');
    await addInteractions(db, odd, [
      ...history,
      { type: 'note_added', at: 'infinity', body: 'someday' },
      { type: 'note_added', at: '-infinity' },
    ]);
    const plain = await addContact(db, 'Plain Times');
    await addInteractions(db, plain, history);
    const clock: Clock = { now: () => new Date('2025-06-13T10:00:00Z') };
    const s = await run(db, createHeuristicInsightProvider({ clock }), {}, { clock });
    assert.equal(s.counts.events, 2);
    assert.equal(await count(db, `SELECT count(DISTINCT subject_id)::int AS n FROM public.ai_insights`), 2);
    const { rows } = await db.query<{ title: string }>(
      `SELECT content ->> 'title' AS title FROM public.ai_insights WHERE subject_id = $1 AND kind = 'summary'`,
      [odd],
    );
    assert.match(rows[0]!.title, /^6 interactions .*, last 2025-06-03$/);
  });

  it('stores an insight fingerprint once: the same content twice is one row, fingerprint = SHA-256 of kind|subject_type|subject_id|model|title', async () => {
    const c = await addContact(db, 'Ana Lima');
    await addInteractions(db, c, history.slice(0, 2));
    const first = await run(db, openai(fake));
    assert.equal(first.counts.inserted, 3);
    // New interaction → the model is asked again and answers the same three insights.
    await addInteractions(db, c, history.slice(2, 3));
    const second = await run(db, openai(fake));
    assert.equal(fake.stats.chatRequests, 2);
    assert.equal(second.counts.generated, 3);
    assert.equal(second.counts.inserted, 0);
    assert.equal(second.counts.duplicates, 3);
    const { rows } = await db.query<{
      kind: string;
      subject_type: string;
      subject_id: string;
      model: string;
      title: string;
      fingerprint: string;
    }>(`SELECT kind, subject_type, subject_id, model, content ->> 'title' AS title, fingerprint FROM public.ai_insights`);
    assert.equal(rows.length, 3);
    for (const r of rows) {
      const expected = createHash('sha256').update(`${r.kind}|contact|${c}|gpt-4o-mini|${r.title}`).digest('hex');
      assert.equal(r.fingerprint, expected);
      assert.equal(insightFingerprint(r.kind, r.subject_type, r.subject_id, r.model, r.title), expected);
    }
    // Within one statement too.
    const row = {
      user_id: USER_A,
      subject_id: c,
      kind: 'risk',
      content: { title: 'Churn risk', body: 'Quiet for weeks.' },
      model: 'm',
      source_digest: 'd',
    };
    assert.equal(await insertInsights(db, JSON.stringify([row, row])), 1);
    assert.equal(await insertInsights(db, JSON.stringify([row])), 0);
  });

  it('does not call the model again for an unchanged contact; one new interaction → exactly one new call', async () => {
    const a = await addContact(db, 'Unchanged Person');
    await addInteractions(db, a, history);
    const first = await run(db, openai(fake));
    assert.equal(first.counts.requests, 1);
    assert.equal(fake.stats.chatRequests, 1);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights'`), 0);

    assert.equal((await run(db, openai(fake))).counts.events ?? 0, 0, 'nothing queued, nothing taken');
    // Queued again without any change (a --reprocess, a retry): the digest matches, no call.
    await enqueue(db, 'insights', [{ itemId: a, userId: USER_A }]);
    const again = await run(db, openai(fake));
    assert.equal(again.counts.events, 1);
    assert.equal(again.counts.unchanged, 1);
    assert.equal(fake.stats.chatRequests, 1);

    await addInteractions(db, a, [{ type: 'email_received', at: '2025-06-05T08:00:00Z', subject: 'Signed contract', body: 'Attached.' }]);
    const changed = await run(db, openai(fake));
    assert.equal(changed.counts.requests, 1);
    assert.equal(fake.stats.chatRequests, 2);
  });

  it('dead-letters a contact whose structured output fails validation (or is not JSON); the others still get insights', async () => {
    fake.options.chatContent = (messages) => {
      const user = messages.find((m) => m.role === 'user')?.content ?? '';
      if (user.includes('Bad Schema')) return JSON.stringify({ insights: [{ kind: 'summary' }] });
      if (user.includes('Not Json')) return 'Sure! Here are the insights: …';
      return JSON.stringify({ insights: [{ kind: 'summary', title: 'Fine', body: 'All good.', score: null }] });
    };
    const good = await addContact(db, 'Good Contact');
    const bad = await addContact(db, 'Bad Schema');
    const notJson = await addContact(db, 'Not Json', USER_B);
    for (const [c, user] of [
      [good, USER_A],
      [bad, USER_A],
      [notJson, USER_B],
    ] as const)
      await addInteractions(db, c, history.slice(0, 2), user);
    const s = await run(db, openai(fake));
    assert.equal(s.counts.events, 3);
    assert.equal(s.counts.dead_lettered, 2);
    assert.equal(s.counts.inserted, 1);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.ai_insights WHERE subject_id = $1`, [good]), 1);
    const { rows } = await db.query<{
      raw_event_id: string | null;
      user_id: string;
      provider: string | null;
      stage: string;
      error: string;
      context: { contact_id: string; issues: { path: string; message: string }[]; raw_response_excerpt: string };
    }>(`SELECT raw_event_id, user_id, provider, stage, error, context FROM public.raw_event_errors ORDER BY user_id`);
    assert.equal(rows.length, 2);
    const [schemaError, jsonError] = rows;
    // provider is the data source (a contact has none); the model vendor is in the context.
    assert.deepEqual(
      [schemaError!.raw_event_id, schemaError!.user_id, schemaError!.provider, schemaError!.stage],
      [null, USER_A, null, 'insights'],
    );
    assert.equal((schemaError!.context as unknown as { insights_provider: string }).insights_provider, 'openai');
    assert.equal(schemaError!.context.contact_id, bad);
    assert.deepEqual(schemaError!.context.issues.map((i) => i.path).sort(), ['insights[0].body', 'insights[0].title']);
    assert.match(schemaError!.error, /insights\[0\]\.title/);
    assert.equal(schemaError!.context.raw_response_excerpt, '{"insights":[{"kind":"summary"}]}');
    assert.equal(jsonError!.context.contact_id, notJson);
    assert.match(jsonError!.error, /not JSON/);
    assert.equal(jsonError!.context.raw_response_excerpt, 'Sure! Here are the insights: …');
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights'`),
      0,
      'dead letters leave the queue',
    );
  });

  it('insights expire one year after creation', async () => {
    const c = await addContact(db, 'Expiring');
    await addInteractions(db, c, history.slice(0, 1));
    await run(db, openai(fake));
    const { rows } = await db.query<{ off_ms: number }>(
      `SELECT abs(extract(epoch FROM expires_at - (created_at + interval '1 year')) * 1000)::float8 AS off_ms FROM public.ai_insights`,
    );
    assert.equal(rows.length, 3);
    for (const r of rows) assert.ok(r.off_ms < 60_000, `expires_at is ${r.off_ms} ms off created_at + 1 year`);
  });

  it('survives 429s by waiting their Retry-After', async () => {
    fake.options.rateLimit = { count: 2, retryAfterSeconds: 0.3 };
    const c = await addContact(db, 'Patient');
    await addInteractions(db, c, history.slice(0, 1));
    const started = Date.now();
    const s = await run(db, openai(fake));
    assert.equal(fake.stats.rateLimited, 2);
    assert.equal(s.counts.inserted, 3);
    assert.ok(Date.now() - started >= 550, 'waited the two Retry-After delays');
  });

  it('stops at insufficient_quota without retrying, and the contacts stay queued', async () => {
    let requests = 0;
    const server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
      res.end(
        JSON.stringify({ error: { message: 'You exceeded your current quota.', type: 'insufficient_quota', code: 'insufficient_quota' } }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await addContact(db, 'No Quota');
      await addInteractions(db, c, history.slice(0, 1));
      const provider = createOpenAIInsightProvider({
        apiKey: 'k',
        baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      });
      await assert.rejects(
        run(db, provider),
        (err: unknown) => err instanceof InsightProviderError && !err.transient && /quota/.test(err.message),
      );
      assert.equal(requests, 1);
      assert.equal(
        await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights' AND claimed_by IS NULL`),
        1,
      );
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.raw_event_errors'), 0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('keeps a contact queued when it changes while the model answers, and answers again', async () => {
    const c = await addContact(db, 'Busy Bee');
    await addInteractions(db, c, history.slice(0, 1));
    const inner = createHeuristicInsightProvider();
    let calls = 0;
    const provider: InsightProvider = {
      name: inner.name,
      model: inner.model,
      async generate(ctx, signal) {
        if (++calls === 1) await addInteractions(db, c, history.slice(1, 2));
        return inner.generate(ctx, signal);
      },
    };
    const s = await run(db, provider);
    assert.equal(calls, 2);
    assert.equal(s.counts.requeued, 1);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights'`), 0);
    assert.equal(await count(db, `SELECT count(DISTINCT source_digest)::int AS n FROM public.ai_insights`), 2);
  });

  it('--dry-run lists the contacts it would send, calls nothing and writes nothing', async () => {
    const a = await addContact(db, 'Dry A');
    await addInteractions(db, a, history);
    const logger = createMemoryLogger();
    const listed: string[] = [];
    const stage = createInsightsStage({
      provider: openai(fake),
      concurrency: 2,
      logger,
      onWouldSend: (cs) => listed.push(...cs.map((x) => x.contactId)),
    });
    const s = await runStage(stage, { db, clock: systemClock, logger, range: parseRange({ dryRun: true }, systemClock) });
    assert.deepEqual(listed, [a]);
    assert.equal(s.counts.would_send, 1);
    assert.equal(fake.stats.chatRequests, 0);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.ai_insights'), 0);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'insights' AND claimed_by IS NULL`),
      1,
    );
  });

  it('the binary: insights --json through OPENAI_BASE_URL, exit 2 without a key, purge deletes only expired insights', async () => {
    const c = await addContact(db, 'Cli Contact');
    await addInteractions(db, c, history);
    await db.close(); // PGlite: one process at a time
    const env = { OPENAI_API_KEY: 'test-key', OPENAI_BASE_URL: fake.url };

    const noKey = await runCli([...target.args, 'insights', '--insights-provider', 'openai', '--json'], {
      env: { OPENAI_API_KEY: undefined },
    });
    assert.equal(noKey.code, 2, noKey.stderr);
    assert.match(noKey.stderr, /OPENAI_API_KEY/);
    assert.equal(noKey.json<{ ok: boolean }>().ok, false);

    const r = await runCli([...target.args, 'insights', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = r.json<{ status: string; runId: string; counts: Record<string, number>; provider: { name: string; model: string } }>();
    assert.equal(out.status, 'succeeded');
    assert.deepEqual(out.provider, { name: 'openai', model: 'gpt-4o-mini' });
    assert.equal(out.counts.events, 1);
    assert.equal(out.counts.inserted, 3);
    assert.equal(out.counts.tokens, 150);
    assert.equal(fake.stats.chatRequests, 1);

    db = await target.open();
    try {
      assert.equal(
        await count(db, `SELECT count(*)::int AS n FROM public.ai_insights WHERE subject_id = $1 AND model = 'gpt-4o-mini'`, [c]),
        3,
      );
      await db.query(`UPDATE public.ai_insights SET expires_at = now() - interval '1 day' WHERE kind <> 'summary'`);
    } finally {
      await db.close();
    }

    const timeline = await runCli([...target.args, 'timeline', '--json']);
    assert.equal(timeline.code, 0, timeline.stderr);
    const dry = await runCli([...target.args, 'purge', 'insights', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.json<{ expired: number }>().expired, 2);
    const purge = await runCli([...target.args, 'purge', 'insights', '--json', '--batch-size', '1']);
    assert.equal(purge.code, 0, purge.stderr);
    assert.equal(purge.json<{ deleted: number }>().deleted, 2);

    db = await target.open();
    try {
      const { rows } = await db.query<{ kind: string }>('SELECT kind FROM public.ai_insights');
      assert.deepEqual(
        rows.map((x) => x.kind),
        ['summary'],
      );
      const entries = await db.query<{ event_type: string }>(
        `SELECT event_type FROM public.contact_timeline WHERE source_type = 'insight'`,
      );
      assert.deepEqual(
        entries.rows.map((x) => x.event_type),
        ['insight_summary'],
        'purged insights leave the timeline too',
      );
    } finally {
      await db.close();
    }
  });
});
