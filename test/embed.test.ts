// embed against the real `openai` SDK talking to a local fake server: reuse, edits, limits,
// the dimension guard, retries, isolation of rejected inputs, concurrency, dry runs, the CLI.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { chunkText, interactionText } from '../src/embed/chunk.js';
import { EmbeddingDimensionError, EmbedProviderError, type Embedder } from '../src/embed/embedder.js';
import { createLocalEmbedder, localVector } from '../src/embed/local.js';
import { createOpenAIEmbedder } from '../src/embed/openai.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
import { enqueue } from '../src/stages/engine/queue.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { runCli } from './support/cli.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from '../tools/fake-openai.js';

const logger = createMemoryLogger();

/** Deterministic prose of about `words` words. */
function prose(words: number, seed = 1): string {
  const vocab = [
    'pricing',
    'meeting',
    'the',
    'contract',
    'renewal',
    'we',
    'discussed',
    'quarterly',
    'numbers',
    'and',
    'a',
    'follow-up',
    'call',
    'on',
    'Tuesday,',
    'invoice',
    'budget',
    'approval',
    'next',
    'steps:',
    'team',
  ];
  let x = seed;
  return Array.from({ length: words }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return vocab[x % vocab.length]!;
  }).join(' ');
}

async function addInteractions(db: Queryable, items: { subject?: string | null; body: string | null }[]): Promise<string[]> {
  const sourceIds = items.map(() => randomUUID());
  const { rows } = await db.query<{ id: string; source_id: string }>(
    `
INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at, raw_event_id)
SELECT $1, 'webform', x.source_id, 'form_submitted', x.subject, x.body, timestamptz '2025-01-01' + make_interval(secs => x.n::int), gen_random_uuid()
FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(source_id, subject, body, n)
RETURNING id, source_id`,
    [USER_A, sourceIds, items.map((i) => i.subject ?? null), items.map((i) => i.body)],
  );
  const byId = new Map(rows.map((r) => [r.source_id, r.id]));
  return sourceIds.map((s) => byId.get(s)!);
}

async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

const openai = (fake: FakeOpenAI, o: Partial<Parameters<typeof createOpenAIEmbedder>[0]> = {}) =>
  createOpenAIEmbedder({ apiKey: 'sk-test', baseURL: fake.url, retryBaseMs: 5, ...o });

const embed = (db: Db, embedder: Embedder, flags: RangeFlags = {}, concurrency = 4, workers = 1) =>
  runStage(createEmbedStage({ embedder, concurrency, logger }), {
    db,
    clock: systemClock,
    logger,
    workers,
    range: parseRange(flags, systemClock),
  });

describe('embed', () => {
  let db: Db;
  let close: () => Promise<void>;
  let fake: FakeOpenAI;
  const start = async (o: FakeOpenAIOptions = {}) => (fake = await startFakeOpenAI(o));
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => {
    await fake?.close();
    await close();
  });

  it('embeds every queued interaction once, with meta; a second run sends nothing', async () => {
    await start();
    const bodies = [
      ...Array.from({ length: 20 }, (_, i) => ({ subject: `Order ${i}`, body: `Hello, about order ${i}: ${prose(30, i)}` })),
      { subject: null, body: '' },
      { subject: 'Long', body: prose(1500, 99) },
    ];
    const ids = await addInteractions(db, bodies);
    const expected = bodies.reduce((n, b) => n + chunkText(interactionText(b.subject, b.body)).length, 0);
    const first = await embed(db, openai(fake), { batchSize: '8' });
    assert.equal(first.counts.events, 22);
    assert.equal(first.counts.empty, 1);
    assert.equal(first.counts.chunks, expected);
    assert.equal(first.counts.embedded, expected);
    assert.equal(fake.stats.embeddingInputs, expected);
    assert.equal(
      await count(
        db,
        `SELECT count(*)::int AS n FROM public.embeddings WHERE vector_dims(embedding_v) = 1536 AND owner_type = 'interaction'`,
      ),
      expected,
    );
    const { rows } = await db.query<{ meta: Record<string, unknown>; chunk_index: number; content_hash: string }>(
      `SELECT meta, chunk_index, content_hash FROM public.embeddings WHERE owner_id = $1 ORDER BY chunk_index`,
      [ids[21]],
    );
    assert.ok(rows.length >= 3);
    assert.deepEqual(
      rows.map((r) => r.chunk_index),
      rows.map((_, i) => i),
    );
    assert.equal(rows[0]!.meta.provider, 'openai');
    assert.equal(rows[0]!.meta.model, 'text-embedding-3-small');
    assert.equal(rows[0]!.meta.dimensions, 1536);
    assert.ok(Number(rows[0]!.meta.tokens) > 400 && Number(rows[0]!.meta.tokens) <= 512);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed'`), 0);
    const { rows: run } = await db.query<{ counts: Record<string, number> }>('SELECT counts FROM omni_ingest.runs WHERE id = $1', [
      first.runId,
    ]);
    assert.deepEqual(run[0]?.counts, first.counts, 'the ledger has the same counts');
    assert.ok((first.counts.cost_usd_micros ?? 0) > 0);

    const second = await embed(db, openai(fake));
    assert.equal(second.counts.events ?? 0, 0);
    // Queued again (a --reprocess): every chunk is reused, nothing is sent.
    await enqueue(
      db,
      'embed',
      ids.map((itemId) => ({ itemId, userId: USER_A })),
    );
    const third = await embed(db, openai(fake));
    assert.equal(third.counts.events, 22);
    assert.equal(third.counts.reused, expected);
    assert.equal(third.counts.embedded, 0);
    assert.equal(fake.stats.embeddingInputs, expected, 'nothing sent again');
  });

  it('an edited interaction sends only its changed chunks and loses its stale ones', async () => {
    await start();
    const long = prose(2000, 5);
    const [id, other] = await addInteractions(db, [
      { subject: 'Contract', body: long },
      { subject: 'Other', body: 'untouched' },
    ]);
    await embed(db, openai(fake));
    const before = chunkText(interactionText('Contract', long));
    const sent = fake.stats.embeddingInputs;
    const edited = `${long.slice(0, long.length - 300)} a changed ending`;
    await db.query('UPDATE public.interactions SET body_text = $2 WHERE id = $1', [id, edited]);
    const after = chunkText(interactionText('Contract', edited));
    const changed = after.filter((c, i) => before[i]?.hash !== c.hash).length;
    assert.ok(changed >= 1 && changed < after.length, `${changed} of ${after.length} chunks changed`);
    const s = await embed(db, openai(fake));
    assert.equal(s.counts.events, 1, 'only the edited interaction was queued');
    assert.equal(fake.stats.embeddingInputs - sent, changed, 'only the changed chunks were sent');
    assert.equal(s.counts.reused, after.length - changed);
    const { rows } = await db.query<{ content_hash: string; chunk_index: number }>(
      'SELECT content_hash, chunk_index FROM public.embeddings WHERE owner_id = $1 ORDER BY chunk_index',
      [id],
    );
    assert.deepEqual(
      rows.map((r) => [r.chunk_index, r.content_hash]),
      after.map((c) => [c.index, c.hash]),
      'exactly the current chunks',
    );
    assert.equal(s.counts.deleted, before.filter((c, i) => after[i]?.hash !== c.hash).length);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings WHERE owner_id = $1', [other]), 1);
    // Emptied: its chunks go.
    await db.query(`UPDATE public.interactions SET subject = NULL, body_text = '' WHERE id = $1`, [id]);
    await embed(db, openai(fake));
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings WHERE owner_id = $1', [id]), 0);
  });

  it('a 20,000-token body is chunked within limits and embedded', async () => {
    await start();
    const body = prose(20_000, 3);
    const [id] = await addInteractions(db, [{ subject: 'Huge thread', body }]);
    const chunks = chunkText(interactionText('Huge thread', body));
    assert.ok(chunks.reduce((n, c) => n + c.tokens, 0) >= 20_000);
    const s = await embed(db, openai(fake, { maxInputsPerRequest: 16 }));
    assert.equal(s.counts.embedded, chunks.length);
    assert.ok(fake.stats.batchSizes.every((n) => n <= 16));
    const { rows } = await db.query<{ tokens: number }>(
      `SELECT (meta ->> 'tokens')::int AS tokens FROM public.embeddings WHERE owner_id = $1`,
      [id],
    );
    assert.equal(rows.length, chunks.length);
    assert.ok(rows.every((r) => r.tokens <= 512));
  });

  it('refuses a model that answers 768 dimensions, writing nothing; and wrong widths up front', async () => {
    await start({ dimensions: 768 });
    await addInteractions(
      db,
      Array.from({ length: 12 }, (_, i) => ({ body: `message ${i}` })),
    );
    await assert.rejects(embed(db, openai(fake, { model: 'nomic-embed-text', maxInputsPerRequest: 4 })), (err: unknown) => {
      assert.ok(err instanceof EmbeddingDimensionError);
      assert.match(err.message, /nomic-embed-text.*768/);
      return true;
    });
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings'), 0);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by IS NULL`),
      12,
      'leases released',
    );
    assert.throws(() => openai(fake, { dimensions: 768 }), EmbeddingDimensionError);
    assert.throws(() => openai(fake, { model: 'text-embedding-3-large' }), /3072/);
    assert.doesNotThrow(() => openai(fake, { model: 'text-embedding-3-large', dimensions: 1536 }));
  });

  it('survives a 429 storm (Retry-After) and 500s', async () => {
    await start({ rateLimit: { count: 5, retryAfterSeconds: 0.05 }, serverErrors: 3 });
    await addInteractions(
      db,
      Array.from({ length: 10 }, (_, i) => ({ body: `note ${i}` })),
    );
    const t = Date.now();
    const s = await embed(db, openai(fake), {}, 1);
    assert.equal(s.counts.embedded, 10);
    assert.equal(fake.stats.rateLimited, 5);
    assert.equal(fake.stats.serverErrors, 3);
    assert.ok(Date.now() - t >= 5 * 50, 'Retry-After was honoured');
  });

  it('insufficient_quota stops at once, without retrying', async () => {
    let hits = 0;
    const server = http.createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
      res.end(
        JSON.stringify({
          error: {
            message: 'You exceeded your current quota, please check your plan and billing details.',
            type: 'insufficient_quota',
            code: 'insufficient_quota',
          },
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await addInteractions(db, [{ body: 'hello' }]);
      const embedder = createOpenAIEmbedder({
        apiKey: 'sk-test',
        baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      });
      await assert.rejects(
        embed(db, embedder),
        (err: unknown) => err instanceof EmbedProviderError && /insufficient_quota/.test(err.message),
      );
      assert.equal(hits, 1);
      assert.equal(
        await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by IS NULL`),
        1,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('dead-letters a rejected input; its neighbours in the same request are stored', async () => {
    await start({ rejectMarker: 'POISON' });
    const ids = await addInteractions(
      db,
      Array.from({ length: 9 }, (_, i) => ({ subject: `msg ${i}`, body: i === 4 ? 'this one is POISON' : `fine text ${i}` })),
    );
    const s = await embed(db, openai(fake), {}, 1);
    assert.equal(fake.stats.batchSizes[0], 9, 'all in one request at first');
    assert.equal(s.counts.dead_lettered, 1);
    assert.equal(s.counts.embedded, 8);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings'), 8);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings WHERE owner_id = $1', [ids[4]]), 0);
    const { rows } = await db.query<{
      stage: string;
      provider: string;
      error: string;
      raw_event_id: string;
      expected: string;
      context: Record<string, unknown>;
    }>(`
SELECT e.stage, e.provider, e.error, e.raw_event_id, i.raw_event_id AS expected, e.context
FROM public.raw_event_errors e JOIN public.interactions i ON i.id = (e.context ->> 'interaction_id')::uuid`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.stage, 'embed');
    assert.equal(rows[0]!.provider, 'webform');
    assert.equal(rows[0]!.raw_event_id, rows[0]!.expected);
    assert.equal(rows[0]!.context.chunk_index, 0);
    assert.match(String(rows[0]!.context.content_hash), /^[0-9a-f]{64}$/);
    assert.match(rows[0]!.error, /rejected/);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed'`), 0);
    // Every input of a request refused is the setup, not the data: the run stops, nothing is dead-lettered.
    await addInteractions(
      db,
      Array.from({ length: 5 }, (_, i) => ({ body: `POISON ${i}` })),
    );
    await assert.rejects(
      embed(db, openai(fake), {}, 1),
      (err: unknown) => err instanceof EmbedProviderError && /rejected all 5 inputs/.test(err.message),
    );
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.raw_event_errors'), 1);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by IS NULL`), 5);
  });

  it('bounds concurrency and packs requests', async () => {
    await start({ latencyMs: 30 });
    await addInteractions(
      db,
      Array.from({ length: 200 }, (_, i) => ({ body: `short note number ${i}` })),
    );
    const s = await embed(db, openai(fake, { maxInputsPerRequest: 8 }), {}, 3);
    assert.equal(s.counts.embedded, 200);
    assert.equal(fake.stats.maxConcurrent, 3);
    // How the 200 split into batches depends on when the provider first answers (until then a
    // batch leases only what fills the slots) and, on a server, on the second batch in flight:
    // requests are full (8) but for the last of each batch.
    const packed = fake.stats.batchSizes;
    assert.equal(
      packed.reduce((a, b) => a + b, 0),
      200,
    );
    assert.ok(packed.every((n) => n <= 8) && packed.filter((n) => n < 8).length <= 3, `packed: ${packed.join(', ')}`);
    assert.equal(s.counts.requests, packed.length);
    // A small batch is spread over the concurrent slots rather than sent as one request.
    const before = fake.stats.batchSizes.length;
    await addInteractions(
      db,
      Array.from({ length: 40 }, (_, i) => ({ subject: 'again', body: `another note ${i}` })),
    );
    const small = await embed(db, openai(fake), {}, 4);
    assert.equal(small.counts.embedded, 40);
    // On a server two batches are in flight, and now and then the second leases some of the 40
    // (39 + 1 gave [10, 10, 10, 9] and [1]): what is checked is the spread, not the partition.
    const sizes = fake.stats.batchSizes.slice(before);
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      40,
    );
    assert.ok(sizes.length >= 4 && sizes.every((n) => n <= 10), `40 inputs spread over the 4 slots: ${sizes.join(', ')}`);
    // Several batches at once (a real server runs 3 workers here) share one limit.
    fake.stats.maxConcurrent = 0;
    await addInteractions(
      db,
      Array.from({ length: 120 }, (_, i) => ({ subject: 'parallel', body: `note ${i}` })),
    );
    const parallel = await embed(db, openai(fake, { maxInputsPerRequest: 4 }), { batchSize: '20' }, 2, 3);
    assert.equal(parallel.counts.embedded, 120);
    assert.ok(fake.stats.maxConcurrent <= 2, `${fake.stats.maxConcurrent} requests in flight`);
  });

  it('requeues an interaction whose text changes while it is being embedded', async () => {
    await start({ latencyMs: 300 });
    const [id] = await addInteractions(db, [{ body: 'first version' }]);
    const running = embed(db, openai(fake));
    await new Promise((r) => setTimeout(r, 100));
    await db.query(`UPDATE public.interactions SET body_text = 'second version' WHERE id = $1`, [id]);
    const s = await running;
    // Not completed with the old text: released, and taken again by the same run's next batch.
    assert.equal(s.counts.requeued, 1);
    assert.equal(s.counts.embedded, 1);
    assert.equal(fake.stats.embeddingInputs, 2);
    const { rows } = await db.query<{ content_hash: string }>('SELECT content_hash FROM public.embeddings WHERE owner_id = $1', [id]);
    assert.deepEqual(
      rows.map((r) => r.content_hash),
      [chunkText('second version')[0]!.hash],
    );
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed'`), 0);
  });

  it('--dry-run reports chunks, reuse, tokens and cost, and sends and writes nothing', async () => {
    await start();
    const ids = await addInteractions(
      db,
      Array.from({ length: 6 }, (_, i) => ({ subject: `s${i}`, body: prose(200, i) })),
    );
    await embed(db, openai(fake), { limit: '3' });
    await enqueue(
      db,
      'embed',
      ids.map((itemId) => ({ itemId, userId: USER_A })),
    );
    const requests = fake.stats.requests;
    const rowsBefore = await count(db, 'SELECT count(*)::int AS n FROM public.embeddings');
    const runsBefore = await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.runs');
    const s = await embed(db, openai(fake), { dryRun: true, batchSize: '4' });
    assert.equal(s.runId, null);
    assert.equal(s.counts.events, 6);
    assert.equal(s.counts.reused, 3);
    assert.equal(s.counts.to_embed, 3);
    assert.ok((s.counts.tokens ?? 0) > 3 * 150);
    assert.equal(s.counts.cost_usd_micros, Math.round((s.counts.tokens ?? 0) * 0.02));
    assert.equal(fake.stats.requests, requests, 'nothing sent');
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM public.embeddings'), rowsBefore);
    assert.equal(await count(db, 'SELECT count(*)::int AS n FROM omni_ingest.runs'), runsBefore);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by IS NULL`), 6);
  });

  it('the local embedder: offline, deterministic, 1536 dimensions, unit norm, lexical', async () => {
    const a = localVector('Can we talk about the pricing of the renewal?');
    assert.equal(a.length, 1536);
    assert.deepEqual(localVector('Can we talk about the pricing of the renewal?'), a);
    assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-9);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    assert.ok(dot(a, localVector('pricing for the renewal')) > dot(a, localVector('Lunch in Milan on Friday')));
    assert.ok(Math.abs(Math.hypot(...localVector('!!! ???')) - 1) < 1e-9, 'punctuation only is still a unit vector');
    await addInteractions(db, [{ subject: 'hi', body: 'local embedding' }]);
    const s = await embed(db, createLocalEmbedder());
    assert.equal(s.counts.embedded, 1);
    assert.equal(
      await count(
        db,
        `SELECT count(*)::int AS n FROM public.embeddings WHERE meta ->> 'provider' = 'local' AND vector_dims(embedding_v) = 1536`,
      ),
      1,
    );
  });
});

describe('embed command', () => {
  it('embeds through the CLI with --embedder openai, prints a --json summary; exit 2 without a key', async () => {
    const fake = await startFakeOpenAI();
    const { db, target, close } = await migratedDb();
    try {
      await loadEvents(db, 'webform', generateEvents('webform', 15, { seed: 21, userId: USER_A }));
      await runStage(normalizeStage, { db, clock: systemClock, logger, range: parseRange({}, systemClock) });
      await db.close(); // PGlite: one process at a time
      const env = { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url };
      const r = await runCli([...target.args, '--json', 'embed', '--embedder', 'openai', '--concurrency', '2'], { env });
      assert.equal(r.code, 0, r.stderr);
      const doc = r.json<{ counts: Record<string, number>; embedder: { name: string; model: string }; costUsd: number; status: string }>();
      assert.equal(doc.status, 'succeeded');
      assert.equal(doc.counts.events, 15);
      assert.ok((doc.counts.embedded ?? 0) >= 15);
      assert.equal(doc.embedder.name, 'openai');
      assert.ok(doc.costUsd > 0);
      assert.ok(!r.stdout.includes('sk-test-key') && !r.stderr.includes('sk-test-key'));
      const noKey = await runCli([...target.args, 'embed', '--embedder', 'openai'], { env: { OPENAI_API_KEY: undefined } });
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, /OPENAI_API_KEY/);
      const help = await runCli(['embed', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /lexical/i);
      const reopened = await target.open();
      try {
        assert.equal(await count(reopened, `SELECT count(*)::int AS n FROM public.embeddings`), doc.counts.embedded ?? -1);
      } finally {
        await reopened.close();
      }
    } finally {
      await fake.close();
      await close();
    }
  });
});
