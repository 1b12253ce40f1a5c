// Pipelined stages: two batches in flight per worker, one writing at a time per worker.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange } from '../src/commands/flags.js';
import { systemClock } from '../src/clock.js';
import { runStage, type BatchInput, type BatchOutput, type Stage } from '../src/stages/engine/runner.js';
import { writeTurns } from '../src/stages/engine/turns.js';
import { migratedDb } from './support/db.js';

describe('write turns', () => {
  it('lets n writers in at once, in the order they asked, and frees a turn whose writer threw', async () => {
    const turns = writeTurns(1);
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const writer = (i: number, fail = false) =>
      turns.take(async () => {
        inside++;
        most = Math.max(most, inside);
        await sleep(5);
        order.push(i);
        inside--;
        if (fail) throw new Error(`writer ${i} failed`);
        return i;
      });
    const results = await Promise.allSettled([writer(1), writer(2, true), writer(3), writer(4)]);
    assert.equal(most, 1);
    assert.deepEqual(order, [1, 2, 3, 4]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );

    const two = writeTurns(2);
    inside = 0;
    most = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        two.take(async () => {
          inside++;
          most = Math.max(most, inside);
          await sleep(5);
          inside--;
        }),
      ),
    );
    assert.equal(most, 2);
  });
});

/** A stage that counts batches in flight and batches writing, over `total` events. */
function pipelinedStage(total: number) {
  const seen = { inFlight: 0, mostInFlight: 0, writing: 0, mostWriting: 0, done: 0 };
  const stage: Stage<'things'> = {
    name: 'test_pipelined',
    pipelined: true,
    countPending: async () => total - seen.done,
    dryBatch: async () => ({ taken: 0, counts: {}, cursor: undefined }),
    async batch(input: BatchInput): Promise<BatchOutput<'things'>> {
      const take = Math.min(input.size, total - seen.done);
      if (take === 0) return { taken: 0, counts: {} };
      seen.done += take; // claimed
      seen.inFlight++;
      seen.mostInFlight = Math.max(seen.mostInFlight, seen.inFlight);
      await sleep(10); // mapping
      await input.writeTurn(async () => {
        seen.writing++;
        seen.mostWriting = Math.max(seen.mostWriting, seen.writing);
        await sleep(10);
        seen.writing--;
      });
      await input.db.transaction((tx) => input.record(tx, { events: take, things: take }));
      seen.inFlight--;
      return { taken: take, counts: { events: take, things: take } };
    },
  };
  return { stage, seen };
}

describe('a pipelined stage', () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());

  const range = parseRange({ batchSize: '10' }, systemClock);
  /** The same database, claiming the pool size of a server's (what decides the pipeline). */
  const withConnections = (n: number): Db => Object.assign(Object.create(db) as Db, { maxConnections: n });

  it('keeps two batches in flight per worker and lets one of them write at a time', async () => {
    const { stage, seen } = pipelinedStage(200);
    const summary = await runStage(stage, { db: withConnections(4), clock: systemClock, logger: createMemoryLogger(), range, workers: 1 });
    assert.equal(summary.counts.events, 200);
    assert.equal(summary.status, 'succeeded');
    assert.equal(seen.mostInFlight, 2);
    assert.equal(seen.mostWriting, 1);
  });

  it('with two workers: four batches in flight, two writing', async () => {
    const { stage, seen } = pipelinedStage(400);
    const summary = await runStage(stage, { db: withConnections(8), clock: systemClock, logger: createMemoryLogger(), range, workers: 2 });
    assert.equal(summary.counts.events, 400);
    assert.equal(seen.mostInFlight, 4);
    assert.equal(seen.mostWriting, 2);
  });

  it('runs one batch at a time where there are not enough connections (the embedded database)', async () => {
    const { stage, seen } = pipelinedStage(100);
    const summary = await runStage(stage, { db: withConnections(1), clock: systemClock, logger: createMemoryLogger(), range, workers: 1 });
    assert.equal(summary.counts.events, 100);
    assert.equal(seen.mostInFlight, 1);
  });
});
