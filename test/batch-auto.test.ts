// Adaptive batches through the engine and the binary: sizes change, a pushback is retried smaller
// instead of failing the run, the result is the one a fixed size gives, and --max-rate finishes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { type Db, openDb } from '../src/db/connect.js';
import { mapPgError } from '../src/db/pg-errors.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { AUTO_MAX_BYTES } from '../src/stages/engine/batch-size.js';
import { makeRange, type RangeOptions } from '../src/stages/engine/range.js';
import { type BatchInput, type BatchOutput, runStage, type Stage } from '../src/stages/engine/runner.js';
import { runCli } from './support/cli.js';
import { cloneTarget, migratedDb, onServer } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';
import { snapshot } from './support/tables.js';

/** `total` events over a counter; `failOnce` throws that error the first time batch `failOnce.at` runs. */
function counterStage(total: number, failOnce?: { at: number; error: unknown }): Stage<'things'> & { sizes: number[]; done: number } {
  let failed = false;
  const stage = {
    name: 'test_stage',
    done: 0,
    sizes: [] as number[],
    countPending: async () => total - stage.done,
    dryBatch: async () => ({ taken: 0, counts: {}, cursor: undefined }),
    batch: async (input: BatchInput): Promise<BatchOutput<'things'>> => {
      const take = Math.min(input.size, total - stage.done);
      if (take === 0) return { taken: 0, counts: {} };
      stage.sizes.push(input.size);
      if (failOnce && !failed && stage.sizes.length === failOnce.at) {
        failed = true;
        throw failOnce.error;
      }
      await input.db.transaction(async (tx) => input.record(tx, { events: take, things: take }));
      stage.done += take;
      return { taken: take, counts: { events: take, things: take } };
    },
  };
  return stage;
}

const run = (db: Db, stage: Stage<'things'>, range: Partial<RangeOptions>) =>
  runStage(stage, { db, clock: systemClock, logger: createMemoryLogger(), range: makeRange(range) });

const deadlock = () => mapPgError(Object.assign(new Error('deadlock detected'), { code: '40P01' }), 'db');

describe('adaptive batches in the engine', () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());

  it('start at the fixed default and grow while batches are quicker than the target', async () => {
    const stage = counterStage(12_000);
    // A target no batch here comes near: each step grows by the most allowed.
    const s = await run(db, stage, { batchTargetMs: 60_000 });
    assert.equal(s.counts.events, 12_000);
    assert.deepEqual(stage.sizes.slice(0, 5), [1000, 1500, 2250, 3375, 5063]);
  });

  it('retry a batch the database pushed back, smaller, and finish; a fixed size fails as before', async () => {
    const auto = counterStage(3000, { at: 2, error: deadlock() });
    const s = await run(db, auto, { batchTargetMs: 60_000 });
    assert.equal(s.status, 'succeeded');
    assert.equal(s.counts.events, 3000);
    assert.equal(auto.done, 3000);
    assert.deepEqual(auto.sizes.slice(0, 3), [1000, 1500, 750], 'halved after the deadlock');

    const fixed = counterStage(3000, { at: 2, error: deadlock() });
    await assert.rejects(run(db, fixed, { batchSize: 1000 }), /deadlock detected/);
    assert.equal(fixed.done, 1000);

    // What is not a pushback fails the run, adaptive or not.
    const bug = counterStage(3000, { at: 2, error: new Error('a bug') });
    await assert.rejects(run(db, bug, { batchTargetMs: 1000 }), /a bug/);
  });
});

describe('adaptive batches of several pipelined workers', {
  skip: onServer ? false : 'needs a real server (one connection on the embedded database)',
}, () => {
  /** A pipelined stage whose events weigh 1 KB each and whose batches write through their turn. */
  function heavyStage(total: number, batchBytes?: number): Stage<'things'> & { sizes: number[] } {
    let done = 0;
    const stage = {
      name: 'test_stage',
      pipelined: true,
      ...(batchBytes === undefined ? {} : { batchBytes }),
      sizes: [] as number[],
      countPending: async () => total - done,
      dryBatch: async () => ({ taken: 0, counts: {}, cursor: undefined }),
      batch: async (input: BatchInput): Promise<BatchOutput<'things'>> => {
        const take = Math.min(input.size, total - done);
        if (take === 0) return { taken: 0, counts: {} };
        done += take;
        stage.sizes.push(take);
        await input.db.transaction((tx) => input.writeTurn(() => input.record(tx, { events: take, things: take })));
        return { taken: take, counts: { events: take, things: take }, bytes: take * 1024 };
      },
    };
    return stage;
  }

  it('share one byte budget: two workers hold what one does, in smaller batches', async () => {
    const { target, close } = await migratedDb();
    // A connection for each batch in flight and one for the ledger: two batches per worker.
    const db = await openDb(target.config, { poolSize: 5 });
    try {
      const runWith = async (workers: number, batchBytes?: number) => {
        const stage = heavyStage(40_000, batchBytes);
        const s = await runStage(stage, {
          db,
          clock: systemClock,
          logger: createMemoryLogger(),
          range: makeRange({ batchTargetMs: 60_000 }),
          workers,
        });
        assert.equal(s.counts.events, 40_000);
        // After the batches that start at once (two per worker), at the fixed default (1,000)
        // before any is measured.
        return Math.max(...stage.sizes.slice(2 * workers));
      };
      // The pace alone would grow them to 20,000; the bytes hold them at 2 MB, then 1 MB, a batch.
      assert.equal(await runWith(1), AUTO_MAX_BYTES / 1024);
      assert.equal(await runWith(2), AUTO_MAX_BYTES / 2 / 1024);
      // A stage that sets its own bound (normalize does) gets it, shared the same way.
      assert.equal(await runWith(1, 1600 * 1024), 1600);
      assert.equal(await runWith(2, 1600 * 1024), 800);
    } finally {
      await db.close();
      await close();
    }
  });
});

describe('omni-ingest with --batch-size auto and --max-rate', () => {
  it('auto (the default) ends with the same tables as a fixed size', async () => {
    const { db, target } = await migratedDb();
    const fixed = await (async () => {
      await loadEvents(db, 'twilio', generateEvents('twilio', 100, { seed: 13, userId: USER_A }));
      await loadEvents(db, 'webform', generateEvents('webform', 60, { seed: 14, userId: USER_A }));
      await db.close();
      return cloneTarget(target);
    })();
    try {
      const stages = ['backfill', '--stages', 'normalize,resolve,timeline', '--create-contacts', '--json'];
      const a = await runCli([...target.args, ...stages]);
      assert.equal(a.code, 0, a.stderr);
      const f = await runCli([...fixed.args, ...stages, '--batch-size', '40']);
      assert.equal(f.code, 0, f.stderr);
      // The tables; not the queues of the stages not run, whose rows follow the batches' boundaries.
      const tables = async (t: typeof target) => {
        const { queues: _, ...rest } = await snapshot(t);
        return rest;
      };
      assert.deepEqual(await tables(target), await tables(fixed));
      const check = await target.open();
      try {
        const { rows } = await check.query<{ size: string }>(`SELECT DISTINCT args ->> 'batchSize' AS size FROM omni_ingest.runs`);
        assert.deepEqual(
          rows.map((r) => r.size),
          ['auto'],
        );
      } finally {
        await check.close();
      }
    } finally {
      await target.drop();
      await fixed.drop();
    }
  });

  it('--max-rate with a tiny rate takes small batches, waits between them, and finishes', async () => {
    const { db, target } = await migratedDb();
    try {
      await loadEvents(db, 'webform', generateEvents('webform', 6, { seed: 15, userId: USER_A }));
      await db.close();
      // 20 events/s with batches aimed at 100 ms: 2 events a batch, 100 ms apart at least.
      const r = await runCli([...target.args, 'normalize', '--json', '--max-rate', '20', '--batch-target', '100ms']);
      assert.equal(r.code, 0, r.stderr);
      const out = r.json<{ status: string; batches: number; elapsedMs: number; counts: Record<string, number> }>();
      assert.equal(out.status, 'succeeded');
      assert.equal(out.counts.events, 6);
      assert.equal(out.batches, 3);
      assert.ok(out.elapsedMs >= 200, `3 batches of 2 at 20/s take 200 ms at least, took ${out.elapsedMs}`);
    } finally {
      await target.drop();
    }
  });

  it('refuses --batch-target with a fixed size, and bad values', async () => {
    const bad: [string[], RegExp][] = [
      [['--batch-size', '100', '--batch-target', '2s'], /--batch-target applies only to --batch-size auto/],
      [['--batch-size', 'automatic'], /--batch-size "automatic" must be a whole number between 1 and 50000, or auto/],
      [['--batch-target', '10m'], /--batch-target "10m" must be a duration between 50ms and 60s/],
      [['--max-rate', '0'], /--max-rate "0" must be a number of events per second above 0/],
    ];
    for (const [args, message] of bad) {
      const r = await runCli(['normalize', ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});
