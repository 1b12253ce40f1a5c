// The batch engine with a stage of our own: limits, budgets, signals, failures and the ledger.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Clock } from '../src/clock.js';
import type { Db } from '../src/db/connect.js';
import { UsageError } from '../src/errors.js';
import { createMemoryLogger } from '../src/logger.js';
import { getRun, listRuns } from '../src/stages/engine/ledger.js';
import { parseInstant, parseRange } from '../src/commands/flags.js';
import { parseDuration } from '../src/duration.js';
import { runStage, type BatchInput, type BatchOutput, type Stage } from '../src/stages/engine/runner.js';
import { migratedDb } from './support/db.js';

const fixedClock = (iso: string): Clock & { advance(ms: number): void } => {
  let t = Date.parse(iso);
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
};

/** A stage over a counter: `total` events, each batch takes what it is given. */
function counterStage(total: number, opts: { onBatch?: (n: number) => void; failAt?: number } = {}): Stage<'things'> & { done: number } {
  const stage = {
    name: 'test_stage',
    done: 0,
    countPending: async () => total - stage.done,
    dryBatch: async () => ({ taken: 0, counts: {}, cursor: undefined }),
    batch: async (input: BatchInput): Promise<BatchOutput<'things'>> => {
      const take = Math.min(input.size, total - stage.done);
      if (take === 0) return { taken: 0, counts: {} };
      if (opts.failAt !== undefined && stage.done + take > opts.failAt) throw new Error('boom at batch');
      await input.db.transaction(async (tx) => input.record(tx, { events: take, things: take * 2 }, { at: stage.done + take }));
      stage.done += take;
      opts.onBatch?.(stage.done);
      return { taken: take, counts: { events: take, things: take * 2 } };
    },
  };
  return stage;
}

describe('range options', () => {
  const clock = fixedClock('2026-11-28T12:00:00Z');
  it('reads durations and ISO dates as UTC', () => {
    assert.equal(parseDuration('90d'), 90 * 86_400_000);
    assert.equal(parseDuration('1500ms'), 1500);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal((parseInstant('24h', clock) as Date).toISOString(), '2026-11-27T12:00:00.000Z');
    assert.equal((parseInstant('2025-06-01', clock) as Date).toISOString(), '2025-06-01T00:00:00.000Z');
    assert.equal((parseInstant('2025-06-01T10:00:00', clock) as Date).toISOString(), '2025-06-01T10:00:00.000Z');
    assert.equal((parseInstant('2025-06-01T10:00:00+02:00', clock) as Date).toISOString(), '2025-06-01T08:00:00.000Z');
    assert.equal((parseInstant('2024-02-29', clock) as Date).toISOString(), '2024-02-29T00:00:00.000Z');
  });

  it('refuses bad values naming the flag', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ since: 'yesterday' }, /--since "yesterday" is not an ISO 8601 date/],
      [{ since: '2025-13-45' }, /--since "2025-13-45" is not a valid date/],
      // Date.parse alone rolls these over into the next month.
      [{ since: '2026-02-31' }, /--since "2026-02-31" is not a valid date/],
      [{ until: '2023-02-29T10:00:00Z' }, /--until "2023-02-29T10:00:00Z" is not a valid date/],
      [{ since: '2025-04-31' }, /--since "2025-04-31" is not a valid date/],
      [{ since: '2025-06-02', until: '2025-06-01' }, /--since .* must be before --until/],
      [{ user: 'bob' }, /--user "bob" must be a UUID/],
      [{ batchSize: '0' }, /--batch-size "0" must be a whole number/],
      [{ limit: '-5' }, /--limit "-5"/],
      [{ timeBudget: 'forever' }, /--time-budget "forever"/],
      [{ provider: 'myspace' }, /--provider "myspace" is not one of gmail, twilio/],
    ];
    for (const [flags, message] of bad) {
      assert.throws(
        () => parseRange(flags, clock, ['gmail', 'twilio']),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
        JSON.stringify(flags),
      );
    }
  });
});

describe('runStage', () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());

  const range = (over: Partial<ReturnType<typeof parseRange>> = {}) => ({ ...parseRange({}, fixedClock('2026-01-01T00:00:00Z')), ...over });

  it('runs batches until the stage is done and records counts and checkpoint in the ledger', async () => {
    const stage = counterStage(2_500);
    const s = await runStage(stage, {
      db,
      clock: fixedClock('2026-01-01T00:00:00Z'),
      logger: createMemoryLogger(),
      range: range({ batchSize: 1_000 }),
    });
    assert.equal(s.status, 'succeeded');
    assert.equal(s.stopReason, 'done');
    assert.equal(s.batches, 3);
    assert.deepEqual(s.counts, { events: 2_500, things: 5_000 });
    assert.equal(s.pendingAtStart, 2_500);
    const run = await getRun(db, s.runId!);
    assert.equal(run?.status, 'succeeded');
    assert.deepEqual(run?.counts, { events: 2_500, things: 5_000 });
    assert.deepEqual(run?.checkpoint, { at: 2_500 });
  });

  it('stops at --limit, taking partial batches', async () => {
    const stage = counterStage(10_000);
    const s = await runStage(stage, {
      db,
      clock: fixedClock('2026-01-01T00:00:00Z'),
      logger: createMemoryLogger(),
      range: range({ batchSize: 400, limit: 1_000 }),
    });
    assert.equal(stage.done, 1_000);
    assert.equal(s.stopReason, 'limit');
    assert.equal(s.status, 'succeeded');
  });

  it('stops cleanly between batches when the time budget is spent', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const stage = counterStage(10_000, { onBatch: () => clock.advance(30_000) });
    const s = await runStage(stage, { db, clock, logger: createMemoryLogger(), range: range({ batchSize: 100, timeBudgetMs: 60_000 }) });
    assert.equal(stage.done, 200);
    assert.equal(s.status, 'stopped');
    assert.equal(s.stopReason, 'time-budget');
    assert.equal((await getRun(db, s.runId!))?.stop_reason, 'time-budget');
  });

  it('stops after the current batch on a signal', async () => {
    const controller = new AbortController();
    const stage = counterStage(10_000, { onBatch: (done) => done >= 300 && controller.abort() });
    const s = await runStage(stage, {
      db,
      clock: fixedClock('2026-01-01T00:00:00Z'),
      logger: createMemoryLogger(),
      range: range({ batchSize: 100 }),
      signal: controller.signal,
    });
    assert.equal(stage.done, 300);
    assert.equal(s.stopReason, 'signal');
    assert.equal((await getRun(db, s.runId!))?.status, 'stopped');
  });

  it('marks the run failed with the error, keeping the counts of the committed batches', async () => {
    const stage = counterStage(10_000, { failAt: 250 });
    await assert.rejects(
      runStage(stage, { db, clock: fixedClock('2026-01-01T00:00:00Z'), logger: createMemoryLogger(), range: range({ batchSize: 100 }) }),
      /boom at batch/,
    );
    const [run] = await listRuns(db, { command: 'test_stage', limit: 1 });
    assert.equal(run?.status, 'failed');
    assert.equal(run?.error, 'boom at batch');
    assert.deepEqual(run?.counts, { events: 200, things: 400 });
  });

  it('a dry run records no run', async () => {
    const before_ = (await listRuns(db, { command: 'test_stage', limit: 1000 })).length;
    const stage = counterStage(50);
    const s = await runStage(stage, {
      db,
      clock: fixedClock('2026-01-01T00:00:00Z'),
      logger: createMemoryLogger(),
      range: range({ dryRun: true }),
    });
    assert.equal(s.runId, null);
    assert.equal((await listRuns(db, { command: 'test_stage', limit: 1000 })).length, before_);
  });

  it('marks runs without a heartbeat as abandoned and says so', async () => {
    await db.query(`
INSERT INTO omni_ingest.runs (command, status, heartbeat_at, started_at)
VALUES ('test_stage', 'running', now() - interval '2 hours', now() - interval '2 hours')`);
    const logger = createMemoryLogger();
    await runStage(counterStage(10), { db, clock: fixedClock('2026-01-01T00:00:00Z'), logger, range: range() });
    assert.ok(
      logger.lines.some((l) => /1 earlier test_stage run\(s\) died without a word/.test(l)),
      logger.lines.join('\n'),
    );
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM omni_ingest.runs WHERE command = 'test_stage' AND status = 'running'`,
    );
    assert.equal(rows[0]?.n, 0);
  });
});
