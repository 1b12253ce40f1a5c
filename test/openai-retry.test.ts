import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryAfterMs, sleep } from '../src/openai/retry.js';

describe('waiting as the provider asks', () => {
  it('reads retry-after-ms, Retry-After seconds and HTTP dates', () => {
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' })), 250);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '1.5' })), 1500);
    const now = Date.parse('2026-11-28T12:00:00Z');
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Sat, 28 Nov 2026 12:00:30 GMT' }), now), 30_000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Sat, 28 Nov 2026 11:00:00 GMT' }), now), 0);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });

  it('sleeps, and stops sleeping when aborted', async () => {
    const started = Date.now();
    await sleep(20);
    assert.ok(Date.now() - started >= 15);
    const controller = new AbortController();
    const pending = sleep(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await assert.rejects(pending, /stop/);
    await assert.rejects(sleep(10, controller.signal), /stop/);
  });
});
