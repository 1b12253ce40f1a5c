// The embedding column swap (SPEC §10) on both backends: the generator's shapes as the database
// judges them, the backfill's report and dead letters, the sync trigger under an older
// application's writes, verify and --reembed through the OpenAI API, the swap's refusal, its
// round trip, and everything that follows the columns after it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Chalk } from 'chalk';
import { systemClock } from '../src/clock.js';
import { renderSwap } from '../src/commands/embeddings-render.js';
import type { Db, Queryable } from '../src/db/connect.js';
import { createLocalEmbedder } from '../src/embed/local.js';
import { diagnose } from '../src/doctor.js';
import { runEmbeddingsBackfill } from '../src/embeddings/backfill.js';
import { embeddingsStatus } from '../src/embeddings/status.js';
import { swapColumns } from '../src/embeddings/swap.js';
import { verifyEmbeddings } from '../src/embeddings/verify.js';
import { generateLegacyEmbeddings, LEGACY_SHAPES, legacyEmbedding, type LegacyShape } from '../src/generate/legacy-embeddings.js';
import { createMemoryLogger } from '../src/logger.js';
import { createEmbedStage } from '../src/stages/embed/index.js';
import { makeRange } from '../src/stages/engine/range.js';
import { runStage } from '../src/stages/engine/runner.js';
import { readStats } from '../src/stats/sql.js';
import { runChecks } from '../src/verify/run.js';
import { startFakeOpenAI } from '../tools/fake-openai.js';
import { runCli } from './support/cli.js';
import { migratedDb, onServer } from './support/db.js';
import { USER_A } from './support/events.js';
import { kindCounts, seedLegacy, tableChecksum } from './support/legacy.js';

const logger = createMemoryLogger();

const backfill = (db: Db, batchSize = 10) =>
  runEmbeddingsBackfill({ db, clock: systemClock, logger, range: makeRange({ batchSize }), lockTimeoutMs: 500, lockAttempts: 3 });

async function one<T extends object>(db: Queryable, sql: string, params: unknown[] = []): Promise<T> {
  return (await db.query<T>(sql, params)).rows[0]!;
}

/** The text as a float4 vector, the way pgvector reads it. */
const float4s = (text: string) => (JSON.parse(text) as number[]).map((x) => Math.fround(x));

/** A real[] as read back (its shortest decimals parsed as doubles), made float4 again to compare exactly. */
const asFloat4 = (v: number[] | null | undefined) => v?.map((x) => Math.fround(x)) ?? null;

describe('legacy embedding shapes', () => {
  it('each shape the generator makes is the kind the database finds', async () => {
    const { db, close } = await migratedDb();
    try {
      const shapes = Object.keys(LEGACY_SHAPES) as LegacyShape[];
      const values = shapes.flatMap((s) => [1, 2, 3].map((seed) => legacyEmbedding(s, seed)));
      const { rows } = await db.query<{ kind: string; copies: boolean }>(
        `SELECT omni_ingest.legacy_embedding_kind(t) AS kind, omni_ingest.legacy_vector(t) IS NOT NULL AS copies
         FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n`,
        [values.map((v) => v.text)],
      );
      assert.deepEqual(
        rows.map((r, i) => `${values[i]!.shape}:${r.kind}`),
        values.map((v) => `${v.shape}:${v.kind}`),
      );
      assert.deepEqual(
        rows.map((r) => r.copies),
        values.map((v) => v.kind === 'valid'),
      );
      // Not a blanket refusal: a value one component short or long is found out, a valid one is not.
      const short = legacyEmbedding('compact', 9).text!.replace(/,[^,]*\]$/, ']');
      assert.equal((await one<{ k: string }>(db, 'SELECT omni_ingest.legacy_embedding_kind($1) AS k', [short])).k, 'wrong_dimension');
    } finally {
      await close();
    }
  });
});

describe('embeddings backfill', () => {
  it('copies every valid value exactly, reports each bad kind, dead-letters each bad row once', async () => {
    const { db, close } = await migratedDb();
    try {
      const rows = await seedLegacy(db, generateLegacyEmbeddings(onServer ? 400 : 130, { seed: 11, everyShape: true }));
      const want = kindCounts(rows);
      const badRows = rows.filter((r) => r.kind !== 'valid' && r.kind !== 'null');
      const r = await backfill(db);
      assert.equal(r.trigger, 'installed');
      assert.equal(r.pass, 1);
      const c = r.summary!.counts;
      assert.deepEqual(
        {
          events: c.events,
          copied: c.copied,
          empty: c.empty,
          wd: c.wrong_dimension,
          mf: c.malformed,
          nf: c.non_finite,
          dead: c.dead_lettered,
        },
        {
          events: rows.length,
          copied: want.valid,
          empty: want.null,
          wd: want.wrong_dimension,
          mf: want.malformed,
          nf: want.non_finite,
          dead: badRows.length,
        },
      );
      assert.ok(r.summary!.batches > 10, 'many batches over several ranges');

      // Every copied vector is its text read as float4, component by component.
      const valid = rows.filter((x) => x.kind === 'valid');
      const { rows: got } = await db.query<{ id: string; v: number[] | null }>(
        'SELECT id::text AS id, embedding_v::real[] AS v FROM public.embeddings WHERE id = ANY($1::uuid[])',
        [rows.map((x) => x.id)],
      );
      const byId = new Map(got.map((g) => [g.id, g.v]));
      for (const x of valid) assert.deepEqual(asFloat4(byId.get(x.id)), float4s(x.text!), `${x.shape} ${x.id}`);
      for (const x of rows.filter((y) => y.kind !== 'valid')) assert.equal(byId.get(x.id), null, `${x.shape} left null`);

      // The dead letters name each bad row with its kind, its source and an excerpt.
      const { rows: letters } = await db.query<{ id: string; kind: string; provider: string; excerpt: string; error: string }>(
        `SELECT context ->> 'embedding_id' AS id, context ->> 'kind' AS kind, provider, context ->> 'excerpt' AS excerpt, error
         FROM public.raw_event_errors WHERE stage = 'swap'`,
      );
      assert.deepEqual(letters.map((l) => `${l.id}:${l.kind}`).sort(), badRows.map((x) => `${x.id}:${x.kind}`).sort());
      assert.ok(letters.every((l) => l.provider === 'webform' && l.excerpt.length > 0 && l.error.includes(l.id)));
      const dim768 = rows.find((x) => x.shape === 'dim768')!;
      assert.match(letters.find((l) => l.id === dim768.id)!.error, /768 dimensions/);

      // Status agrees, and the ledger has the counts and a checkpoint with the cursor.
      const s = await embeddingsStatus(db);
      assert.deepEqual(s.legacy, {
        valid: want.valid,
        wrong_dimension: want.wrong_dimension,
        malformed: want.malformed,
        non_finite: want.non_finite,
        null: want.null,
      });
      assert.equal(s.toCopy, 0);
      assert.equal(s.withoutVector, rows.length - want.valid);
      assert.equal(s.trigger.direction, 'legacy');
      assert.match(s.next, /--reembed/);
      const run = await one<{ counts: Record<string, number>; checkpoint: { pass: number; cursor: string } }>(
        db,
        'SELECT counts, checkpoint FROM omni_ingest.runs WHERE id = $1',
        [r.summary!.runId],
      );
      assert.deepEqual(run.counts, c);
      assert.equal(run.checkpoint.pass, 1);
      assert.match(run.checkpoint.cursor, /^[0-9a-f-]{36}$/);

      // Again: nothing left to look at, nothing reported twice.
      const again = await backfill(db);
      assert.equal(again.trigger, 'present');
      assert.equal(again.summary!.counts.events ?? 0, 0);
      assert.equal(
        (await one<{ n: number }>(db, `SELECT count(*)::int AS n FROM public.raw_event_errors WHERE stage = 'swap'`)).n,
        badRows.length,
      );
    } finally {
      await close();
    }
  });

  it('the sync trigger copies an older application’s writes as they happen; a value it cannot parse waits for the next pass', async () => {
    const { db, close } = await migratedDb();
    try {
      const [a, b] = await seedLegacy(db, [legacyEmbedding('compact', 1), legacyEmbedding('spaced', 2)]);
      await backfill(db);
      const vectorOf = async (id: string) =>
        asFloat4((await one<{ v: number[] | null }>(db, 'SELECT embedding_v::real[] AS v FROM public.embeddings WHERE id = $1', [id])).v);
      // Inserted by code that knows only the text column.
      const fresh = legacyEmbedding('exponents', 3).text!;
      const { id } = await one<{ id: string }>(
        db,
        `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding) VALUES ($1, 'interaction', $2, $3) RETURNING id::text AS id`,
        [USER_A, randomUUID(), fresh],
      );
      assert.deepEqual(await vectorOf(id), float4s(fresh));
      // Rewritten by it: the vector follows the text.
      const rewritten = legacyEmbedding('float64', 4).text!;
      await db.query('UPDATE public.embeddings SET embedding = $2 WHERE id = $1', [a!.id, rewritten]);
      assert.deepEqual(await vectorOf(a!.id), float4s(rewritten));
      // Writes that do not touch the text leave the vector alone (embed writes vectors only).
      await db.query(`UPDATE public.embeddings SET meta = '{"touched": true}' WHERE id = $1`, [a!.id]);
      assert.deepEqual(await vectorOf(a!.id), float4s(rewritten));
      // Garbage from it: the vector is left null, and the next backfill pass reports it, once.
      await db.query('UPDATE public.embeddings SET embedding = $2 WHERE id = $1', [b!.id, '[0.1, 0.2, oops']);
      assert.equal(await vectorOf(b!.id), null);
      const next = await backfill(db);
      assert.equal(next.newPass, true);
      assert.equal(next.pass, 2);
      assert.equal(next.summary!.counts.malformed, 1);
      assert.equal(next.summary!.counts.dead_lettered, 1);
      const last = await backfill(db);
      assert.equal(last.pass, null, 'nothing left: no third pass');
      assert.equal((await one<{ n: number }>(db, `SELECT count(*)::int AS n FROM public.raw_event_errors WHERE stage = 'swap'`)).n, 1);
    } finally {
      await close();
    }
  });
});

describe('embeddings verify', () => {
  it('reads every row, across key ranges in parallel on a server, and names the three smallest failing ids', async () => {
    const { db, close } = await migratedDb();
    try {
      const rows = await seedLegacy(db, generateLegacyEmbeddings(60, { seed: 12, mix: { compact: 6, dim768: 1, nan: 1 } }));
      await backfill(db);
      // One copied vector nudged by more than the tolerance: the comparison finds it.
      const nudged = rows.find((r) => r.kind === 'valid')!;
      await db.query(
        `UPDATE public.embeddings SET embedding_v = (SELECT (array_agg(x + CASE WHEN n = 7 THEN 0.001 ELSE 0 END ORDER BY n))::vector
           FROM unnest(embedding_v::real[]) WITH ORDINALITY AS u(x, n)) WHERE id = $1`,
        [nudged.id],
      );
      const bad = rows
        .filter((r) => r.kind !== 'valid')
        .map((r) => r.id)
        .sort();
      const report = await verifyEmbeddings(db, { batchSize: 4, workers: 3 });
      assert.equal(report.rows, rows.length);
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.checks.map((c) => [c.count, c.examples]),
        [
          [bad.length, bad.slice(0, 3)],
          [1, [nudged.id]],
        ],
      );
    } finally {
      await close();
    }
  });
});

describe('embeddings swap under its lock', () => {
  it('refuses when a row has no vector by the time it holds the lock (an older application wrote what the trigger cannot parse after verify)', async () => {
    const { db, close } = await migratedDb();
    try {
      await seedLegacy(db, [legacyEmbedding('compact', 1), legacyEmbedding('spaced', 2)]);
      await backfill(db);
      let late = '';
      const swap = (between: () => Promise<void> = async () => {}) =>
        swapColumns(db, {
          rollback: false,
          lockTimeoutMs: 500,
          lockAttempts: 3,
          logger,
          verify: async () => {
            const report = await verifyEmbeddings(db, { batchSize: 10 });
            await between();
            return report;
          },
        });
      const refused = await swap(async () => {
        ({ id: late } = await one<{ id: string }>(
          db,
          `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding) VALUES ($1, 'interaction', $2, '[0.1, 0.2, oops') RETURNING id::text AS id`,
          [USER_A, randomUUID()],
        ));
      });
      assert.deepEqual(
        [refused.action, refused.verify?.ok, refused.withoutVector, refused.phase],
        ['refused', true, { count: 1, examples: [late] }, 'before-swap'],
      );
      assert.match(
        renderSwap(refused, new Chalk({ level: 0 })).join('\n'),
        /refused: 1 row\(s\) of embedding_v have no vector, written after verify passed/,
      );
      assert.equal((await embeddingsStatus(db)).phase, 'before-swap');
      // The application writes a valid value again: the trigger copies it, and the swap goes through.
      await db.query('UPDATE public.embeddings SET embedding = $2 WHERE id = $1', [late, legacyEmbedding('compact', 3).text]);
      const swapped = await swap();
      assert.deepEqual([swapped.action, swapped.withoutVector, swapped.phase], ['swapped', null, 'swapped']);
    } finally {
      await close();
    }
  });
});

describe('embeddings verify, backfill --reembed and swap through the binary', { timeout: 300_000 }, () => {
  it('verify fails on one bad row and names it; swap refuses; --reembed through the OpenAI API fixes it; verify passes', async () => {
    const fake = await startFakeOpenAI();
    const { db, target, close } = await migratedDb();
    try {
      const rows = await seedLegacy(db, [
        ...generateLegacyEmbeddings(12, { seed: 5, mix: { compact: 1, float64: 1 } }),
        legacyEmbedding('truncated', 6),
      ]);
      const bad = rows.at(-1)!;
      await db.close(); // PGlite: one process at a time
      const env = { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url };
      const cli = (...args: string[]) => runCli([...target.args, ...args], { env });

      const b = await cli('--json', 'embeddings', 'backfill', '--batch-size', '5');
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.json<{ backfill: { summary: { counts: Record<string, number> } } }>().backfill.summary.counts.malformed, 1);

      const v = await cli('embeddings', 'verify');
      assert.equal(v.code, 3, v.stdout + v.stderr);
      assert.match(v.stdout, new RegExp(`✗ rows without a 1536-d vector in embedding_v: 1 \\(e\\.g\\. ${bad.id}\\)`));
      assert.match(v.stdout, /✓ rows whose vector differs/);

      const refused = await cli('--json', 'embeddings', 'swap');
      assert.equal(refused.code, 3, refused.stderr);
      const doc = refused.json<{ action: string; phase: string; verify: { checks: { count: number; examples: string[] }[] } }>();
      assert.deepEqual([doc.action, doc.phase, doc.verify.checks[0]!.examples], ['refused', 'before-swap', [bad.id]]);

      // Its dead letter is the swap stage's: listed and selected by it; errors retry says where it is handled.
      const listed = await cli('--json', 'errors', 'list', '--stage', 'swap');
      assert.equal(listed.code, 0, listed.stderr);
      const letters = listed.json<{ errors: { id: string; status: string }[] }>().errors;
      assert.deepEqual(
        letters.map((e) => e.status),
        ['open'],
      );
      const plan = await cli('errors', 'retry', '--stage', 'swap', '--dry-run');
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /1 open errors selected \(1 swap\): 0 would be retried, 1 cannot be/);
      assert.match(plan.stdout, /not retried by errors retry: fix the legacy value and run `embeddings backfill`/);
      const retried = await cli('errors', 'retry', '--stage', 'swap');
      assert.equal(retried.code, 0, retried.stderr);
      assert.match(retried.stdout, /swap +1 selected: not retried here/);

      const dry = await cli('embeddings', 'backfill', '--reembed', '--embedder', 'openai', '--dry-run');
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /reembed \(dry run\): 1 rows without a vector, from 1 interactions/);
      assert.match(
        dry.stdout,
        /would send 1 chunks \(0 already embedded\): \d+ tokens in ~1 requests, ≈ \$0\.\d{6} \(openai text-embedding-3-small\); nothing sent/,
      );
      assert.equal(fake.stats.requests, 0, 'a dry run sends nothing');

      const re = await cli('--json', 'embeddings', 'backfill', '--reembed', '--embedder', 'openai');
      assert.equal(re.code, 0, re.stderr);
      const rd = re.json<{ embedder: { name: string }; reembed: { summary: { counts: Record<string, number> } } }>();
      const rc = rd.reembed.summary.counts;
      assert.deepEqual([rd.embedder.name, rc.events, rc.reembedded, rc.chunks_embedded, rc.requests], ['openai', 1, 1, 1, 1]);
      assert.ok((rc.tokens ?? 0) > 5, JSON.stringify(rc));
      assert.equal(fake.stats.embeddingInputs, 1);
      assert.ok(!re.stdout.includes('sk-test-key') && !re.stderr.includes('sk-test-key'));
      assert.equal(re.json<{ lettersResolved: number }>().lettersResolved, 1, 'the row has a vector: its swap letter is closed');
      const closed = await cli('--json', 'errors', 'list', '--stage', 'swap', '--status', 'resolved');
      assert.deepEqual(
        closed.json<{ errors: { id: string }[] }>().errors.map((e) => e.id),
        letters.map((e) => e.id),
      );

      const ok = await cli('--json', 'embeddings', 'verify');
      assert.equal(ok.code, 0, ok.stdout);
      assert.equal(ok.json<{ rows: number }>().rows, rows.length + 1, 'the interaction’s chunk row too');

      const reopened = await target.open();
      try {
        const row = await one<{ provider: string; same: boolean }>(
          reopened,
          `SELECT e.meta -> 'reembedded' ->> 'provider' AS provider, e.embedding_v = c.embedding_v AS same
           FROM public.embeddings e JOIN public.embeddings c ON c.id = (e.meta -> 'reembedded' ->> 'chunk_id')::uuid
           WHERE e.id = $1`,
          [bad.id],
        );
        assert.deepEqual(row, { provider: 'openai', same: true });
      } finally {
        await reopened.close();
      }
    } finally {
      await fake.close();
      await close();
    }
  });

  it('swap, rollback, swap keep every row as it was; verify, doctor, embed, stats and search follow the columns', async () => {
    const { db, target, close } = await migratedDb();
    try {
      await seedLegacy(db, generateLegacyEmbeddings(20, { seed: 8, mix: { compact: 1, spaced: 1, integers: 1 } }));
      await backfill(db);
      const before = await tableChecksum(db);
      await db.close();
      const cli = (...args: string[]) => runCli([...target.args, ...args], { env: { OPENAI_API_KEY: undefined } });

      const swapped = await cli('--json', 'embeddings', 'swap');
      assert.equal(swapped.code, 0, swapped.stderr);
      assert.deepEqual(
        (({ action, phase, vectorColumn, legacyColumn }) => ({ action, phase, vectorColumn, legacyColumn }))(
          swapped.json<Record<string, unknown>>(),
        ),
        { action: 'swapped', phase: 'swapped', vectorColumn: 'embedding', legacyColumn: 'embedding_legacy' },
      );
      const d0 = await target.open();
      try {
        assert.equal(await tableChecksum(d0), before);
        const swap = (rollback: boolean) =>
          swapColumns(d0, { rollback, lockTimeoutMs: 500, lockAttempts: 3, logger, verify: () => verifyEmbeddings(d0, { batchSize: 7 }) });
        assert.equal((await swap(true)).action, 'rolled-back');
        assert.equal(await tableChecksum(d0), before);
        assert.equal((await swap(false)).action, 'swapped');
        assert.equal(await tableChecksum(d0), before);
        assert.equal((await swap(false)).action, 'already');
        // Everything else that reads the columns takes the swapped layout as it is.
        const checks = await runChecks(d0);
        assert.deepEqual(
          checks.filter((c) => !c.ok),
          [],
        );
        const findings = await diagnose(d0, { apiKey: undefined, baseUrl: undefined });
        assert.ok(findings.find((f) => f.name === 'embedding dimensions')?.ok);
        assert.equal((await verifyEmbeddings(d0, { batchSize: 7 })).ok, true);
        assert.equal((await embeddingsStatus(d0)).trigger.direction, 'vector');
      } finally {
        await d0.close();
      }

      const d = await target.open();
      let interaction: string;
      try {
        // A new interaction embedded after the swap: its vector lands in `embedding`, mirrored as text.
        ({ id: interaction } = await one<{ id: string }>(
          d,
          `INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at)
           VALUES ($1, 'webform', 'after-swap', 'form_submitted', 'Quarterly invoice', 'The quarterly invoice is overdue by two weeks.', now())
           RETURNING id::text AS id`,
          [USER_A],
        ));
        const s = await runStage(createEmbedStage({ embedder: createLocalEmbedder(), concurrency: 1, logger }), {
          db: d,
          clock: systemClock,
          logger,
          range: makeRange({ userId: USER_A }),
        });
        assert.ok((s.counts.embedded ?? 0) >= 1);
        const row = await one<{ mirrored: boolean; n: number }>(
          d,
          `SELECT bool_and(embedding_legacy = embedding::text) AS mirrored, count(*)::int AS n FROM public.embeddings WHERE owner_id = $1`,
          [interaction],
        );
        assert.deepEqual(row, { mirrored: true, n: 1 });
        // An older application still writing text after the swap: the value lands in the vector column.
        const text = legacyEmbedding('spaced', 77).text!;
        const late = await one<{ id: string }>(
          d,
          `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding) VALUES ($1, 'interaction', $2, $3) RETURNING id::text AS id`,
          [USER_A, randomUUID(), text],
        );
        assert.deepEqual(
          asFloat4((await one<{ v: number[] }>(d, 'SELECT embedding::real[] AS v FROM public.embeddings WHERE id = $1', [late.id])).v),
          float4s(text),
        );
        assert.equal((await readStats(d)).vectorColumn, 'embedding');
      } finally {
        await d.close();
      }

      const found = await cli('--json', 'search', 'quarterly invoice overdue', '--limit', '3', '--embedder', 'local');
      assert.equal(found.code, 0, found.stderr);
      const hits = found.json<{ vectorColumn: string; hits: { interaction_id: string; distance: number; snippet: string }[] }>();
      assert.equal(hits.vectorColumn, 'embedding');
      assert.equal(hits.hits[0]?.interaction_id, interaction);
      assert.ok(hits.hits[0]!.distance < 0.3 && hits.hits[0]!.snippet.startsWith('The quarterly invoice'));

      // Rolled back now, what was written after the swap is all there in the old layout.
      const rb = await cli('embeddings', 'swap', '--rollback');
      assert.match(rb.stdout, /embeddings swap --rollback: done/);
      const d2 = await target.open();
      try {
        assert.equal((await verifyEmbeddings(d2, { batchSize: 50 })).ok, true);
        const kept = await one<{ ok: boolean }>(
          d2,
          `SELECT bool_and(embedding_v = omni_ingest.legacy_vector(embedding)) AS ok FROM public.embeddings WHERE owner_id = $1`,
          [interaction],
        );
        assert.equal(kept.ok, true);
      } finally {
        await d2.close();
      }
    } finally {
      await close();
    }
  });
});
