// `embeddings backfill` under kill -9, through the real binary: killed at random points, run
// again, every row examined exactly once across all the runs, every invalid value reported
// once, and after --reembed, embeddings verify passes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKFILL_COMMAND } from '../src/embeddings/backfill.js';
import { generateLegacyEmbeddings } from '../src/generate/legacy-embeddings.js';
import { killAfterBatches, runCli } from './support/cli.js';
import { migratedTarget, onServer, type TestTarget } from './support/db.js';
import { kindCounts, seedLegacy } from './support/legacy.js';

// The server proves it at full size with two workers; the embedded database (one process at a
// time, slower to start) proves the same on fewer rows.
const ROWS = onServer ? 2000 : 400;
const KILLS = onServer ? 5 : 3;
const BATCH = onServer ? '40' : '15';
const WORKERS = onServer ? ['--workers', '2'] : [];

/** Starts the backfill and SIGKILLs it a moment after its `batches`-th batch committed. */
describe('embeddings backfill under kill -9', { timeout: 600_000 }, () => {
  let target: TestTarget;
  let want: ReturnType<typeof kindCounts>;
  before(async () => {
    target = await migratedTarget();
    const db = await target.open();
    try {
      want = kindCounts(await seedLegacy(db, generateLegacyEmbeddings(ROWS, { seed: 31, everyShape: true })));
    } finally {
      await db.close();
    }
  });
  after(async () => {
    await target?.drop();
  });

  it('killed at random points and run again: each row examined once, each bad value reported once, verify passes', async () => {
    let kills = 0;
    for (let attempt = 0; kills < KILLS && attempt < 3 * KILLS; attempt++) {
      const r = await killAfterBatches(
        [...target.args, 'embeddings', 'backfill', '--batch-size', BATCH, ...WORKERS],
        1 + Math.floor(Math.random() * 4),
        Math.floor(Math.random() * 30),
      );
      if (r.killed) kills++;
    }
    assert.ok(kills >= KILLS, `only ${kills} kills landed`);

    const mid = await target.open();
    try {
      const { rows } = await mid.query<{ open: number }>(
        `SELECT count(*) FILTER (WHERE done_at IS NULL)::int AS open FROM omni_ingest.embedding_backfill_ranges`,
      );
      assert.ok(rows[0]!.open > 0, 'the kills must leave work behind');
    } finally {
      await mid.close();
    }

    const finish = await runCli([...target.args, '--json', 'embeddings', 'backfill', '--batch-size', BATCH, ...WORKERS]);
    assert.equal(finish.code, 0, finish.stderr);
    const reembed = await runCli([...target.args, 'embeddings', 'backfill', '--reembed', '--embedder', 'local']);
    assert.equal(reembed.code, 0, reembed.stderr);
    const verify = await runCli([...target.args, 'embeddings', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);

    const db = await target.open();
    try {
      // Every run's committed batches are in the ledger, the killed ones' too: together they
      // examined each row exactly once and copied each valid value once. The next run found each
      // killed one's process gone and marked it abandoned; none is left 'running'.
      const { rows: ledger } = await db.query<{
        events: number;
        copied: number;
        dead: number;
        running: number;
        abandoned: number;
        runs: number;
      }>(
        `SELECT coalesce(sum((counts ->> 'events')::int), 0)::int AS events, coalesce(sum((counts ->> 'copied')::int), 0)::int AS copied,
                coalesce(sum((counts ->> 'dead_lettered')::int), 0)::int AS dead,
                count(*) FILTER (WHERE status = 'running')::int AS running,
                count(*) FILTER (WHERE status = 'abandoned')::int AS abandoned, count(*)::int AS runs
         FROM omni_ingest.runs WHERE command = $1`,
        [BACKFILL_COMMAND],
      );
      const bad = want.wrong_dimension + want.malformed + want.non_finite;
      assert.deepEqual(
        {
          events: ledger[0]!.events,
          copied: ledger[0]!.copied,
          dead: ledger[0]!.dead,
          running: ledger[0]!.running,
          abandoned: ledger[0]!.abandoned,
        },
        { events: ROWS, copied: want.valid, dead: bad, running: 0, abandoned: kills },
        `${ledger[0]!.runs} runs`,
      );
      const { rows: letters } = await db.query<{ n: number; ids: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT context ->> 'embedding_id')::int AS ids FROM public.raw_event_errors WHERE stage = 'swap'`,
      );
      assert.deepEqual(letters[0], { n: bad, ids: bad });
      const { rows: ranges } = await db.query<{ examined: number; open: number; passes: number }>(
        `SELECT sum(rows_examined)::int AS examined, count(*) FILTER (WHERE done_at IS NULL)::int AS open, count(DISTINCT pass)::int AS passes
         FROM omni_ingest.embedding_backfill_ranges`,
      );
      assert.deepEqual(ranges[0], { examined: ROWS, open: 0, passes: 1 });
    } finally {
      await db.close();
    }
  });
});
