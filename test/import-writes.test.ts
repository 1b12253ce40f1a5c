// The import's batches in flight: up to `writers` written at once, never two that share an id
// (the later waits, so the file's order decides which record of an id is stored), and a failed
// write stops the import once every write in flight has ended.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writes } from '../src/stages/import/writes.js';

/** A write that ends when told to, and says when it started. */
function gate(log: string[], name: string) {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const ended = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return {
    write: async () => {
      log.push(`start ${name}`);
      await ended;
      log.push(`end ${name}`);
    },
    open: () => open(),
    fail: (err: Error) => fail(err),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('import writes', () => {
  it('writes two batches at once, and hands on a third only when one has ended', async () => {
    const log: string[] = [];
    const writes = new Writes(2);
    const [a, b, c] = [gate(log, 'a'), gate(log, 'b'), gate(log, 'c')];
    await writes.start(new Set(['1']), a.write);
    await writes.start(new Set(['2']), b.write);
    const third = writes.start(new Set(['3']), c.write);
    await tick();
    assert.deepEqual(log, ['start a', 'start b']);
    a.open();
    await third;
    assert.deepEqual(log, ['start a', 'start b', 'end a', 'start c']);
    b.open();
    c.open();
    await writes.drain();
    assert.deepEqual(log.slice(-2), ['end b', 'end c']);
  });

  it('holds a batch that shares an id with one in flight until that one has ended, even with a writer free', async () => {
    const log: string[] = [];
    const writes = new Writes(2);
    const [a, b] = [gate(log, 'a'), gate(log, 'b')];
    await writes.start(new Set(['x', 'y']), a.write);
    const second = writes.start(new Set(['z', 'y']), b.write);
    await tick();
    assert.deepEqual(log, ['start a']);
    a.open();
    await second;
    assert.deepEqual(log, ['start a', 'end a', 'start b']);
    b.open();
    await writes.drain();
  });

  it('tells the first failure once every write in flight has ended', async () => {
    const log: string[] = [];
    const writes = new Writes(2);
    const [a, b, c] = [gate(log, 'a'), gate(log, 'b'), gate(log, 'c')];
    await writes.start(new Set(['1']), a.write);
    await writes.start(new Set(['2']), b.write);
    const third = writes.start(new Set(['3']), c.write);
    a.fail(new Error('connection lost for good'));
    await tick();
    assert.deepEqual(log, ['start a', 'start b']); // b still in flight: its transaction ends whole first
    b.open();
    await assert.rejects(third, /connection lost for good/);
    assert.deepEqual(log, ['start a', 'start b', 'end b']); // c was never started
  });
});
