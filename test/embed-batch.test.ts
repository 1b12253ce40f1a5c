// `embed --via batch` through the real `openai` SDK against the fake server's Batch API: submit,
// poll while in progress, complete, vectors identical to the direct path's; rejected lines
// dead-lettered; an expired batch submitted again with what it left; kill -9 between upload and
// recording, between creation and recording, and between download and write, with the next runs
// neither losing nor double-sending anything.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { chunkText, interactionText } from '../src/embed/chunk.js';
import { createOpenAIEmbedder } from '../src/embed/openai.js';
import { createBatchApi } from '../src/embed/openai-batch.js';
import { createMemoryLogger } from '../src/logger.js';
import { withBatches } from '../src/stages/embed/batch.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
import { enqueue } from '../src/stages/engine/queue.js';
import { runStage } from '../src/stages/engine/runner.js';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { killAtPause, runCli } from './support/cli.js';
import { migratedDb } from './support/db.js';
import { USER_A } from './support/events.js';

const logger = createMemoryLogger();
const REJECT = 'FORBIDDEN-WORD';
const FAIL = 'SERVER-HICCUP';

function prose(words: number, seed: number): string {
  const vocab = ['pricing', 'meeting', 'contract', 'renewal', 'quarterly', 'numbers', 'invoice', 'budget', 'approval', 'team', 'call'];
  let x = seed;
  return Array.from({ length: words }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return vocab[x % vocab.length]!;
  }).join(' ');
}

async function addInteractions(db: Queryable, items: { subject: string | null; body: string }[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `
INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at, raw_event_id)
SELECT $1, 'webform', gen_random_uuid()::text, 'form_submitted', x.subject, x.body, timestamptz '2025-01-01' + make_interval(secs => x.n::int), gen_random_uuid()
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(subject, body, n)
ORDER BY x.n
RETURNING id`,
    [USER_A, items.map((i) => i.subject), items.map((i) => i.body)],
  );
  return rows.map((r) => r.id);
}

const count = async (db: Queryable, sql: string): Promise<number> => (await db.query<{ n: number }>(sql)).rows[0]?.n ?? 0;

/** Every chunk row as the direct path would compare it: key, vector as text, meta. */
async function chunkRows(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ r: string }>(
    `SELECT concat_ws('|', owner_id, chunk_index, content_hash, embedding_v::text, meta::text) AS r FROM public.embeddings ORDER BY 1`,
  );
  return rows.map((r) => r.r);
}

const bodies = [
  ...Array.from({ length: 24 }, (_, i) => ({ subject: `Order ${i}`, body: `About order ${i}: ${prose(40, i + 1)}` })),
  { subject: 'Long', body: prose(1400, 77) },
  { subject: null, body: '' },
  { subject: 'Bad', body: `This one says ${REJECT} and is refused` },
  { subject: 'Flaky', body: `This one meets a ${FAIL} inside the batch` },
];
const expectedChunks = (list: typeof bodies) => list.reduce((n, b) => n + chunkText(interactionText(b.subject, b.body)).length, 0);

describe('embed --via batch', () => {
  let db: Db;
  let close: () => Promise<void>;
  let fake: FakeOpenAI;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => {
    await fake?.close();
    await close();
  });

  const embedder = () => createOpenAIEmbedder({ apiKey: 'sk-test', baseURL: fake.url, retryBaseMs: 5 });
  const run = (submit: boolean, flags: RangeFlags = {}, limits?: { maxLines: number; maxBytes: number }) => {
    const e = embedder();
    const api = createBatchApi({ apiKey: 'sk-test', baseURL: fake.url, retryBaseMs: 5 });
    const stage = withBatches(createEmbedStage({ embedder: e, concurrency: 2, logger }), { embedder: e, api, logger, submit, limits });
    return runStage(stage, { db, clock: systemClock, logger, range: parseRange(flags, systemClock) });
  };

  it('a result line whose embedding is not float32s is skipped: its chunk is sent again, its neighbours are written', async () => {
    fake = await startFakeOpenAI({ batch: { garbleMarker: 'GARBLE' } });
    const few = [
      { subject: 'One', body: 'The first enquiry about pricing.' },
      { subject: 'Two', body: 'The second enquiry, GARBLE inside.' },
      { subject: 'Three', body: 'The third enquiry about a renewal.' },
    ];
    await addInteractions(db, few);
    await run(true);
    const collected = await run(false);
    assert.equal(collected.counts.batches_collected, 1);
    assert.equal(collected.counts.released, 1, 'the garbled one goes back to the queue');
    // …and this run, a direct one, sends it again at once: all three are stored.
    assert.equal(collected.counts.events, 3);
    assert.equal(fake.stats.embeddingRequests, 1, 'only the garbled chunk sent again, directly');
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.embeddings`), 3);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.raw_event_errors`), 0, 'not the input: not dead-lettered');
  });

  it('submits, polls while in progress, completes: vectors identical to direct; rejected lines dead-lettered', async () => {
    fake = await startFakeOpenAI({ rejectMarker: REJECT, batch: { completeAfterPolls: 2, failMarker: FAIL } });
    const ids = await addInteractions(db, bodies);
    const submitted = await run(true, { batchSize: '16' });
    assert.equal(submitted.counts.batches_submitted, 2);
    assert.equal(submitted.status, 'succeeded', 'what is at the provider is not left behind');
    assert.equal(submitted.counts.submitted, 27, 'the interaction without text is written at once');
    assert.equal(submitted.counts.events, 1);
    assert.equal(fake.stats.embeddingRequests, 0, 'nothing sent directly');
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.embeddings`), 0);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by LIKE 'batch:%'`),
      27,
    );
    const lines = await count(db, `SELECT sum(cardinality(custom_ids))::int AS n FROM omni_ingest.embed_batches`);
    assert.equal(lines, expectedChunks(bodies));

    const waiting = await run(true);
    assert.equal(waiting.counts.events ?? 0, 0, 'still in progress: nothing written');
    assert.equal(fake.batchApi.stats.batchRetrieves, 2);

    const done = await run(true);
    assert.equal(done.counts.batches_collected, 2);
    assert.equal(done.counts.events, 26, 'the interaction with a failed line goes back to the queue');
    assert.equal(done.counts.released, 1);
    assert.equal(done.counts.dead_lettered, 1);
    assert.ok((done.counts.cost_usd_micros ?? -1) >= 0);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM omni_ingest.embed_batches WHERE state = 'done'`), 2);
    const { rows: letters } = await db.query<{ stage: string; context: { interaction_id: string } }>(
      `SELECT stage, context FROM public.raw_event_errors`,
    );
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.stage, 'embed');
    assert.equal(letters[0]!.context.interaction_id, ids[26]);
    // Back in the queue, and the same run submitted it again in a batch of its own.
    assert.equal(done.counts.batches_submitted, 1);
    assert.equal(
      await count(db, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed' AND claimed_by LIKE 'batch:%'`),
      1,
    );

    // The same interactions embedded directly store exactly the same rows.
    const viaBatch = await chunkRows(db);
    assert.equal(viaBatch.length, expectedChunks(bodies) - 2);
    await db.query(`DELETE FROM public.embeddings`);
    await enqueue(
      db,
      'embed',
      ids.map((itemId) => ({ itemId, userId: USER_A })),
    );
    const direct = await run(false);
    assert.equal(direct.counts.events, 27, 'all but the one its batch holds');
    const viaDirect = (await chunkRows(db)).filter((r) => !r.includes(ids[27]!));
    assert.deepEqual(viaDirect, viaBatch);
  });

  it('a file holds at most its limits: the interactions that do not fit go to the next batch', async () => {
    fake = await startFakeOpenAI();
    const list = bodies.slice(0, 10);
    await addInteractions(db, list);
    const submitted = await run(true, {}, { maxLines: 4, maxBytes: 10_000_000 });
    assert.equal(submitted.counts.batches_submitted, 3);
    assert.equal(submitted.counts.submitted, 10);
    assert.equal(submitted.counts.released, 6 + 2, 'given back twice, then submitted');
    const { rows } = await db.query<{ lines: number }>(
      `SELECT cardinality(custom_ids) AS lines FROM omni_ingest.embed_batches ORDER BY created_at`,
    );
    assert.deepEqual(
      rows.map((r) => r.lines),
      [4, 4, 2],
    );
    const collected = await run(true);
    assert.equal(collected.counts.events, 10);
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.embeddings`), 10);
  });

  it('an expired batch keeps what it finished and is submitted again with the rest', async () => {
    fake = await startFakeOpenAI({ batch: { expire: 1 } });
    const list = bodies.slice(0, 20);
    await addInteractions(db, list);
    const first = await run(true);
    assert.equal(first.counts.batches_submitted, 1);
    const second = await run(true);
    assert.equal(second.counts.batches_resubmitted, 1);
    assert.ok((second.counts.events ?? 0) > 0 && (second.counts.events ?? 0) < 20, 'half the lines came back');
    assert.equal(fake.batchApi.stats.batchesCreated, 2);
    const third = await run(true);
    assert.equal((second.counts.events ?? 0) + (third.counts.events ?? 0), 20);
    assert.equal(
      fake.batchApi.stats.batchLines,
      Math.floor(expectedChunks(list) / 2) + Math.ceil(expectedChunks(list) / 2),
      'no line sent twice',
    );
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.embeddings`), expectedChunks(list));
    const { rows } = await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM omni_ingest.embed_batches`);
    assert.deepEqual(rows, [{ state: 'done', attempts: 2 }]);
  });

  it('vectors of the wrong width in the results close the batch and send its interactions back: no run is stuck on it', async () => {
    fake = await startFakeOpenAI({ dimensions: 512 });
    await addInteractions(db, bodies.slice(0, 5));
    const submitted = await run(true);
    assert.equal(submitted.counts.batches_submitted, 1);
    const collected = await run(true);
    assert.equal(collected.status, 'succeeded');
    assert.equal(collected.counts.batches_collected, 1);
    assert.equal(collected.counts.released, 5);
    assert.equal(collected.counts.events ?? 0, 0, 'nothing written');
    assert.equal(await count(db, `SELECT count(*)::int AS n FROM public.embeddings`), 0);
    const { rows } = await db.query<{ state: string; error: string }>(
      `SELECT state, error FROM omni_ingest.embed_batches ORDER BY created_at LIMIT 1`,
    );
    assert.equal(rows[0]?.state, 'done');
    assert.match(rows[0]?.error ?? '', /512-dimensional/);
    assert.ok(logger.lines.some((l) => /512-dimensional.*back to the queue/.test(l)));
    // Back in the queue: the same run submitted them again, in a batch of their own.
    assert.equal(collected.counts.batches_submitted, 1);
  });
});

describe('embed --via batch command', () => {
  it('killed after the upload, after the creation and after the download: the next runs lose and repeat nothing', async () => {
    const fake = await startFakeOpenAI({ batch: { completeAfterPolls: 1 } });
    const { db, target, close } = await migratedDb();
    try {
      const list = bodies.slice(0, 12);
      await addInteractions(db, list);
      await db.close(); // PGlite: one process at a time
      const env = { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url };
      const cli = (args: string[], more: Record<string, string> = {}) => runCli([...target.args, ...args], { env: { ...env, ...more } });
      const pause = (point: string) =>
        killAtPause([...target.args, 'embed', '--via', 'batch'], { ...env, OMNI_INGEST_EMBED_PAUSE_AT: point });

      const dry = await cli(['embed', '--embedder', 'openai', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /≈ \$[\d.]+ direct, ≈ \$[\d.]+ with --via batch/);
      const local = await cli(['embed', '--via', 'batch', '--embedder', 'local']);
      assert.equal(local.code, 2);

      assert.ok((await pause('uploaded')).paused, 'killed between upload and recording');
      assert.ok((await pause('created')).paused, 'killed between creation and recording');
      const resumed = await cli(['--json', 'embed', '--via', 'batch']);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(fake.batchApi.stats.batchesCreated, 1, 'the batch created before the kill was found again, not created twice');
      assert.equal(fake.batchApi.stats.filesUploaded, 2, 'the file uploaded before the first kill was not recorded');
      assert.ok((await pause('downloaded')).paused, 'killed between download and write');
      // A backfill collects it too (embedding directly whatever is left, here nothing).
      const finished = await cli(['--json', 'backfill', '--stages', 'embed', '--embedder', 'openai']);
      assert.equal(finished.code, 0, finished.stderr);
      const embedStage = finished.json<{ stages: { stage: string; counts: Record<string, number> }[] }>().stages[0]!;
      assert.equal(embedStage.counts.batches_collected, 1);
      assert.equal(embedStage.counts.events, list.length);
      assert.ok(!finished.stdout.includes('sk-test-key') && !finished.stderr.includes('sk-test-key'));
      const summary = await cli(['embed', '--via', 'batch']);
      assert.equal(summary.code, 0, summary.stderr);
      assert.match(summary.stdout, /embed via batch in [\d.]+ s: nothing new to submit/);
      assert.equal(fake.stats.embeddingRequests, 0, 'nothing was sent directly');
      assert.equal(fake.batchApi.stats.batchLines, expectedChunks(list), 'every chunk answered once');

      const check = await target.open();
      try {
        assert.equal(await count(check, `SELECT count(*)::int AS n FROM public.embeddings`), expectedChunks(list));
        assert.equal(await count(check, `SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE stage = 'embed'`), 0);
        assert.equal(await count(check, `SELECT count(*)::int AS n FROM omni_ingest.embed_batches WHERE state = 'done'`), 1);
      } finally {
        await check.close();
      }
    } finally {
      await fake.close();
      await close().catch(() => {});
    }
  });
});
