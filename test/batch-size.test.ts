// The batch size controller alone: a fake clock, batches reported by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapPgError, type Pushback, pushbackOf } from '../src/db/pg-errors.js';
import { AUTO_MAX, AUTO_MAX_BYTES, AUTO_MIN, BatchSize, type BatchSizeOptions, MAX_PUSHBACKS } from '../src/stages/engine/batch-size.js';

function controller(o: Partial<BatchSizeOptions> = {}) {
  let t = 0;
  const size = new BatchSize({ mode: 'auto', start: 1000, targetMs: 1000, now: () => t, ...o });
  return {
    size,
    advance: (ms: number) => (t += ms),
    /** Runs one batch of the current size at `msPerEvent`, the clock moving by its duration. */
    batch(msPerEvent: number, commitMs?: number) {
      const n = size.next();
      t += n * msPerEvent;
      return { n, backedOff: size.report({ taken: n, durationMs: n * msPerEvent, commitMs }) };
    },
  };
}

const sizes = (c: ReturnType<typeof controller>, batches: number, msPerEvent: number) =>
  Array.from({ length: batches }, () => c.batch(msPerEvent).n);

describe('adaptive batch size', () => {
  it('grows toward the target by at most 1.5× a step, then holds within the dead band', () => {
    const c = controller();
    // 0.1 ms an event: 10,000 events take the 1 s target.
    const seen = sizes(c, 12, 0.1);
    assert.deepEqual(seen.slice(0, 4), [1000, 1500, 2250, 3375]);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! <= seen[i - 1]! * 1.5 + 1);
    const settled = seen.at(-1)!;
    assert.ok(settled >= 9000 && settled <= 11_000, `settled at ${settled}`);
    assert.equal(c.batch(0.1).n, settled, 'no change inside the dead band');
  });

  it('keeps a batch under the byte bound whatever its pace, at once when heavy events arrive', () => {
    let t = 0;
    const size = new BatchSize({ mode: 'auto', start: 1000, targetMs: 1000, now: () => t });
    const batch = (msPerEvent: number, bytesPerEvent: number) => {
      const n = size.next();
      t += n * msPerEvent;
      size.report({ taken: n, durationMs: n * msPerEvent, bytes: n * bytesPerEvent });
      return n;
    };
    // Fast 1 KB events: the pace alone would take 10,000; the bytes allow 4,096.
    for (let i = 0; i < 12; i++) batch(0.1, 1024);
    assert.equal(size.next(), AUTO_MAX_BYTES / 1024);
    // 50 KB emails arrive: the next batch is within the bound at once, not by halvings.
    batch(0.1, 50 * 1024);
    assert.equal(size.next(), Math.floor(AUTO_MAX_BYTES / (50 * 1024)));
    // Light again: the bound relaxes slowly (smoothed), never jumping back.
    batch(0.1, 1024);
    assert.ok(size.next() <= Math.floor(AUTO_MAX_BYTES / (50 * 1024)) * 1.5 + 1, `grew to ${size.next()}`);
  });

  it('shares the byte bound among the batches in flight: more workers, not more memory', () => {
    const settle = (inFlight: number | undefined, maxBytes?: number) => {
      let t = 0;
      const size = new BatchSize({ mode: 'auto', start: 1000, targetMs: 1000, now: () => t, inFlight, maxBytes });
      for (let i = 0; i < 12; i++) {
        const n = size.next();
        t += n * 0.1;
        size.report({ taken: n, durationMs: n * 0.1, bytes: n * 1024 });
      }
      return size.next();
    };
    // One or two batches at once (one worker, pipelined or not): each may hold AUTO_MAX_BYTES.
    assert.equal(settle(undefined), AUTO_MAX_BYTES / 1024);
    assert.equal(settle(2), AUTO_MAX_BYTES / 1024);
    // Two pipelined workers: four batches hold together what two did.
    assert.equal(settle(4), AUTO_MAX_BYTES / 2 / 1024);
    assert.equal(settle(8), AUTO_MAX_BYTES / 4 / 1024);
    // A stage's own bound (normalize's), shared the same way.
    assert.equal(settle(2, 1600 * 1024), 1600);
    assert.equal(settle(4, 1600 * 1024), 800);
  });

  it('applies no byte bound to a fixed size (the operator chose it)', () => {
    const size = new BatchSize({ mode: 'fixed', start: 20_000, targetMs: 1000, now: () => 0 });
    size.report({ taken: 20_000, durationMs: 100, bytes: 20_000 * 50 * 1024 });
    assert.equal(size.next(), 20_000);
  });

  it('shrinks when batches run long, at most halving a step', () => {
    const c = controller();
    // 4 ms an event: 250 events take 1 s.
    assert.deepEqual(sizes(c, 4, 4), [1000, 500, 250, 250]);
  });

  it('takes the first batch as a warm-up: it sizes the second, then the measure starts afresh', () => {
    const c = controller();
    c.batch(4); // a cold start: 4 ms an event
    assert.equal(c.size.next(), 500);
    // Warm, 1 ms an event: sized by this batch alone (1000), not by an average with the cold one.
    c.batch(1);
    assert.equal(c.size.next(), 750);
    c.batch(1);
    assert.equal(c.size.next(), 1000);
  });

  it('smooths over several batches: one slow outlier does not undo the size', () => {
    const c = controller({ start: 1000 });
    sizes(c, 3, 1); // 1 ms an event: on target
    c.batch(3); // one batch three times slower
    const after = c.size.next();
    assert.ok(after > 500 && after < 1000, `one outlier moved the size to ${after}`);
  });

  it('stays within its bounds', () => {
    const fast = controller();
    sizes(fast, 30, 0.0001);
    assert.equal(fast.size.next(), AUTO_MAX);
    const slow = controller();
    sizes(slow, 30, 500);
    assert.equal(slow.size.next(), AUTO_MIN);
  });

  for (const kind of ['lock-timeout', 'statement-timeout', 'serialization', 'deadlock'] satisfies Pushback[]) {
    it(`backs off on ${kind}: half the size, a pause doubling each time in a row, no growth for a while`, () => {
      const c = controller({ start: 4000 });
      const first = c.size.report({ taken: 0, durationMs: 30, pushback: kind });
      assert.deepEqual(first, { reason: kind, pauseMs: 500, size: 2000 });
      assert.equal(c.size.waitMs(), 500);
      c.advance(200);
      assert.equal(c.size.waitMs(), 300, 'the pause counts down on the clock');
      const second = c.size.report({ taken: 0, durationMs: 30, pushback: kind });
      assert.deepEqual(second, { reason: kind, pauseMs: 1000, size: 1000 });
      c.advance(1000);
      assert.equal(c.size.waitMs(), 0);
      // Fast batches again: the size holds for the cooldown, then grows.
      assert.deepEqual(sizes(c, 7, 0.01), [1000, 1000, 1000, 1000, 1000, 1500, 2250]);
      // A success reset the count: the next pushback pauses briefly again.
      assert.equal(c.size.report({ taken: 0, durationMs: 1, pushback: kind })?.pauseMs, 500);
    });
  }

  it('gives up after MAX_PUSHBACKS in a row, pauses capped at 30 s', () => {
    const c = controller();
    const pauses: number[] = [];
    while (!c.size.exhausted) pauses.push(c.size.report({ taken: 0, durationMs: 1, pushback: 'deadlock' })!.pauseMs);
    assert.equal(pauses.length, MAX_PUSHBACKS);
    assert.deepEqual(pauses, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    assert.equal(c.size.next(), AUTO_MIN);
  });

  it('backs off when commits take several times their usual time twice in a row, not on wobbles', () => {
    const c = controller();
    for (let i = 0; i < 3; i++) assert.equal(c.batch(1, 2).backedOff, undefined);
    assert.equal(c.batch(1, 30).backedOff, undefined, 'under the floor: not a signal');
    assert.equal(c.batch(1, 400).backedOff, undefined, 'one late answer alone: not a signal');
    assert.equal(c.batch(1, 2).backedOff, undefined);
    assert.equal(c.batch(1, 400).backedOff, undefined);
    const slow = c.batch(1, 400).backedOff;
    assert.equal(slow?.reason, 'commit-latency');
    assert.equal(slow?.size, 500);
    assert.ok(c.size.waitMs() > 0);
  });

  it('a fixed size stays what it is, whatever the batches take, and ignores pushbacks', () => {
    const c = controller({ mode: 'fixed', start: 37 });
    assert.deepEqual(sizes(c, 3, 50), [37, 37, 37]);
    assert.deepEqual(sizes(c, 3, 0.001), [37, 37, 37]);
    assert.equal(c.size.report({ taken: 0, durationMs: 1, pushback: 'deadlock' }), undefined);
    assert.equal(c.size.next(), 37);
    assert.equal(c.size.waitMs(), 0);
  });

  it('--max-rate spaces the batches to hold the rate, idle time earning no credit', () => {
    const c = controller({ mode: 'fixed', start: 100, maxRate: 50 });
    assert.equal(c.size.waitMs(), 0, 'the first batch starts at once');
    c.batch(2); // 100 events in 200 ms: the next may start 2 s after this one started
    assert.equal(c.size.waitMs(), 1800);
    c.advance(1800);
    c.batch(2);
    assert.equal(c.size.waitMs(), 1800);
    c.advance(60_000); // a long quiet spell
    c.batch(2);
    assert.equal(c.size.waitMs(), 1800, 'no burst after the quiet spell');
  });

  it('--max-rate caps an adaptive batch at about the target’s worth of the rate', () => {
    const c = controller({ maxRate: 5, targetMs: 1000 });
    assert.equal(c.size.next(), 5);
    sizes(c, 10, 0.0001);
    assert.equal(c.size.next(), 5, 'fast batches do not grow past the cap');
    const tiny = controller({ maxRate: 0.5, targetMs: 1000 });
    assert.equal(tiny.size.next(), 1);
    tiny.batch(1);
    assert.equal(tiny.size.waitMs(), 2000 - 1);
  });
});

describe('pushback by SQLSTATE', () => {
  const pg = (code: string) => mapPgError(Object.assign(new Error(`error ${code}`), { code }), 'db');
  it('names lock and statement timeouts, serialization failures and deadlocks, and nothing else', () => {
    assert.equal(pushbackOf(pg('55P03')), 'lock-timeout');
    assert.equal(pushbackOf(pg('57014')), 'statement-timeout');
    assert.equal(pushbackOf(pg('40001')), 'serialization');
    assert.equal(pushbackOf(pg('40P01')), 'deadlock');
    for (const other of ['23505', '22P02', '57P01', '42P01']) assert.equal(pushbackOf(pg(other)), undefined, other);
    assert.equal(pushbackOf(new Error('plain')), undefined);
  });
});
