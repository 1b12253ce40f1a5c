// What embed stores and what it holds: the vectors written are exactly the float32s the provider
// sent (base64, as the SDK asks, or numbers from a server that ignores the format), and answered
// vectors waiting for their write are bounded — requests wait for the writes, nothing is lost,
// and the count goes back to zero whether the run ends well, fails or is stopped.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { parseRange, type RangeFlags } from '../src/commands/flags.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { EmbedProviderError, float32sOfBase64, float32sOfBytes, type Embedder } from '../src/embed/embedder.js';
import { createLocalEmbedder } from '../src/embed/local.js';
import { createOpenAIEmbedder } from '../src/embed/openai.js';
import { createMemoryLogger } from '../src/logger.js';
import { WriteBacklog } from '../src/stages/embed/backlog.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
import { runStage } from '../src/stages/engine/runner.js';
import { fakeVector, startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { migratedDb } from './support/db.js';
import { USER_A } from './support/events.js';

const logger = createMemoryLogger();

async function addInteractions(db: Queryable, bodies: string[]): Promise<void> {
  await db.query(
    `
INSERT INTO public.interactions (user_id, source, source_id, type, body_text, occurred_at)
SELECT $1, 'webform', x.source_id, 'form_submitted', x.body, timestamptz '2025-01-01' + make_interval(secs => x.n::int)
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(source_id, body, n)`,
    [USER_A, bodies.map(() => randomUUID()), bodies],
  );
}

const run = (
  db: Db,
  embedder: Embedder,
  o: { backlog?: WriteBacklog; concurrency?: number; flags?: RangeFlags; signal?: AbortSignal; workers?: number } = {},
) =>
  runStage(createEmbedStage({ embedder, concurrency: o.concurrency ?? 2, logger, ...(o.backlog ? { backlog: o.backlog } : {}) }), {
    db,
    clock: systemClock,
    logger,
    range: parseRange(o.flags ?? {}, systemClock),
    signal: o.signal,
    // On the server two workers, each with two batches in flight, share the backlog.
    workers: o.workers,
  });

/** The same database, each transaction started `ms` later: a database that writes slowly. */
function slowWrites(db: Db, ms: number): Db {
  return new Proxy(db, {
    get(target, key, receiver) {
      if (key === 'transaction') {
        return async <T>(fn: (tx: Queryable) => Promise<T>) => {
          await new Promise((r) => setTimeout(r, ms));
          return target.transaction(fn);
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * An embedder that answers after a few ms, as a provider across a network does, and notes, as
 * each request starts, how many answered vectors wait for their write.
 */
function watching(inner: Embedder, backlog: WriteBacklog, seen: number[], failAt?: number): Embedder {
  let calls = 0;
  return {
    ...inner,
    async embed(texts, signal) {
      seen.push(backlog.waiting);
      if (++calls === failAt) throw new EmbedProviderError('the provider went away');
      await new Promise((r) => setTimeout(r, 2));
      return inner.embed(texts, signal);
    },
  };
}

describe('embed: the vectors stored', () => {
  let db: Db;
  let close: () => Promise<void>;
  let fake: FakeOpenAI | undefined;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
    await close();
  });

  for (const floatsOnly of [false, true]) {
    it(`are the provider's float32s, value for value (${floatsOnly ? 'numbers from a server that ignores base64' : 'base64'})`, async () => {
      fake = await startFakeOpenAI({ floatsOnly });
      const bodies = Array.from({ length: 5 }, (_, i) => `Message ${i}: the renewal, the budget and a call on Tuesday.`);
      await addInteractions(db, bodies);
      const embedder = createOpenAIEmbedder({ apiKey: 'sk-test', baseURL: fake.url, retryBaseMs: 5 });
      // base64 asked for and kept as float32s; numbers, when that is what the server sends.
      const [probe] = (await embedder.embed(['probe'])).vectors;
      assert.equal(probe instanceof Float32Array, !floatsOnly);
      const summary = await run(db, embedder);
      assert.equal(summary.counts.embedded, 5);
      const { rows } = await db.query<{ body_text: string; v: string }>(
        `SELECT i.body_text, e.embedding_v::text AS v FROM public.embeddings e JOIN public.interactions i ON i.id = e.owner_id`,
      );
      assert.equal(rows.length, 5);
      for (const r of rows) {
        const stored = r.v.slice(1, -1).split(',').map(Number);
        const sent = fakeVector(r.body_text, 1536);
        assert.equal(stored.length, 1536);
        assert.deepEqual(
          stored.map((x) => Math.fround(x)),
          sent.map((x) => Math.fround(x)),
          `the vector of "${r.body_text}"`,
        );
      }
    });
  }

  it('decodes little-endian float32s at any offset and on either byte order; refuses a length that is not float32s', () => {
    const values = Float32Array.from([1.5, -2.25, 3.4028234663852886e38, 1e-45, 0]);
    const le = Buffer.from(values.buffer); // this machine's order: little-endian
    assert.deepEqual(Array.from(float32sOfBase64(le.toString('base64'))), Array.from(values));
    for (let offset = 0; offset < 4; offset++) {
      const at = Buffer.alloc(le.length + 4).subarray(offset, offset + le.length);
      le.copy(at);
      assert.deepEqual(Array.from(float32sOfBytes(at)), Array.from(values), `at byte offset ${at.byteOffset}`);
      // On a big-endian machine the bytes are swapped into its order.
      const big = float32sOfBytes(at, false);
      assert.deepEqual(Buffer.from(big.buffer, big.byteOffset, big.byteLength), Buffer.from(le).swap32());
    }
    assert.throws(() => float32sOfBase64(Buffer.from([1, 2, 3]).toString('base64')), EmbedProviderError);
  });
});

describe('embed: answered vectors waiting for their write are bounded', () => {
  let db: Db;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ db, close } = await migratedDb());
  });
  afterEach(async () => close());

  const bodies = Array.from({ length: 120 }, (_, i) => `Enquiry ${i} about the annual contract and its pricing.`);

  it('requests wait for the writes when the database is slower than the provider; every vector is written', async () => {
    await addInteractions(db, bodies);
    const backlog = new WriteBacklog(8);
    const seen: number[] = [];
    const embedder = watching(createLocalEmbedder({ maxInputsPerRequest: 4 }), backlog, seen);
    const summary = await run(slowWrites(db, 40), embedder, { backlog, flags: { batchSize: '30' }, workers: 2 });
    assert.equal(summary.counts.embedded, 120);
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM public.embeddings');
    assert.equal(rows[0]?.n, 120);
    // Each request starts with fewer than the limit waiting; one answer more (4) may have
    // arrived between the check and the send. Unbounded, the fast provider's answers pile up.
    assert.ok(Math.max(...seen) < 8 + 4, `at most ${Math.max(...seen)} waiting when a request started`);
    assert.ok(
      seen.some((n) => n > 0),
      'the writes were slow enough for answers to wait',
    );
    assert.equal(backlog.waiting, 0);
  });

  it('goes back to zero when the provider fails mid-run, and when the run is stopped', async () => {
    await addInteractions(db, bodies);
    const backlog = new WriteBacklog(8);
    const failing = watching(createLocalEmbedder({ maxInputsPerRequest: 4 }), backlog, [], 6);
    await assert.rejects(run(slowWrites(db, 40), failing, { backlog, flags: { batchSize: '60' } }), EmbedProviderError);
    assert.equal(backlog.waiting, 0, 'after a failure');

    // Stopped (as by a signal) while answers wait for their write.
    const stop = new AbortController();
    const stopping = watching(createLocalEmbedder({ maxInputsPerRequest: 4 }), backlog, []);
    const stopper: Embedder = {
      ...stopping,
      async embed(texts, signal) {
        if (backlog.waiting > 0) stop.abort();
        return stopping.embed(texts, signal);
      },
    };
    const stopped = await run(slowWrites(db, 40), stopper, { backlog, flags: { batchSize: '60' }, signal: stop.signal });
    assert.equal(stopped.status, 'stopped');
    assert.equal(backlog.waiting, 0, 'after a stop');
    // What the stop left is taken by the next run: nothing lost.
    const rest = await run(db, createLocalEmbedder(), { backlog });
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM public.embeddings');
    assert.equal(rows[0]?.n, 120, `${stopped.counts.embedded ?? 0} + ${rest.counts.embedded ?? 0} embedded after the failure`);
  });

  it('a request waits while the limit is reached, and wakes when writes make room or the run stops', async () => {
    const backlog = new WriteBacklog(2);
    const never = new AbortController();
    await backlog.room(never.signal); // under the limit: at once
    backlog.add(3);
    let woke = false;
    const waiting = backlog.room(never.signal).then(() => (woke = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    backlog.remove(1); // 2: still at the limit
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    backlog.remove(1);
    await waiting;
    assert.equal(woke, true);
    backlog.add(5);
    const stop = new AbortController();
    const stopped = backlog.room(stop.signal);
    stop.abort();
    await stopped;
    assert.equal(backlog.waiting, 6);
    assert.throws(() => backlog.remove(7), /7 vectors released, 6 held/);
  });
});
