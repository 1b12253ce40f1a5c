// Exactly once under SIGKILL and under parallel workers, through the real binary.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { cloneTarget, migratedTarget, onServer, poolerUrl, throughPooler, type TestTarget } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';

// The server proves it at full size; the embedded database (one process at a time, slower to
// start) proves the same property on fewer events and kills.
const EVENTS = onServer ? 20_000 : 6_000;
const KILLS = onServer ? 6 : 4;
const PROVIDERS = ['gmail', 'twilio', 'instagram', 'webform'] as const;

/** EVENTS events over four providers, one in 200 made invalid so dead letters are in play. */
function* events(provider: (typeof PROVIDERS)[number]): Generator<unknown> {
  let i = 0;
  for (const payload of generateEvents(provider, EVENTS / PROVIDERS.length, { seed: 1234, userId: USER_A })) {
    i++;
    if (i % 200 === 0 && typeof payload === 'object' && payload !== null) {
      yield {
        ...(payload as Record<string, unknown>),
        internalDate: 'soon',
        timestamp: 'later',
        submitted_at: 'never',
        sid: 42,
        date_sent: 'Thu, 99 Nop 2023',
      };
    } else {
      yield payload;
    }
  }
}

async function prepare(): Promise<TestTarget> {
  const target = await migratedTarget();
  const db = await target.open();
  try {
    for (const p of PROVIDERS) await loadEvents(db, p, events(p));
  } finally {
    await db.close();
  }
  return target;
}

/** The outcome, independent of generated ids: what a user would compare. */
async function outcome(
  target: TestTarget,
): Promise<{ interactions: string[]; errors: string[]; pending: number; runsRunning: number; abandoned: { resumed_by: string | null }[] }> {
  const db: Db = await target.open();
  try {
    const interactions = await db.query<{ k: string }>(`
SELECT concat_ws('|', i.user_id, i.source, i.source_id, i.type, i.subject, md5(i.body_text), md5(i.body_raw::text), i.occurred_at, md5(i.source_meta::text), r.source_id) AS k
FROM public.interactions i JOIN public.raw_events r ON r.id = i.raw_event_id
ORDER BY 1`);
    const errors = await db.query<{ k: string }>(`
SELECT concat_ws('|', e.stage, e.provider, r.source_id, e.error, (e.context - 'raw_event_id')::text) AS k
FROM public.raw_event_errors e JOIN public.raw_events r ON r.id = e.raw_event_id
ORDER BY 1`);
    const pending = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM omni_ingest.normalize_queue');
    const running = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM omni_ingest.runs WHERE status = 'running'`);
    const abandoned = await db.query<{ resumed_by: string | null }>(`SELECT resumed_by FROM omni_ingest.runs WHERE status = 'abandoned'`);
    return {
      interactions: interactions.rows.map((r) => r.k),
      errors: errors.rows.map((r) => r.k),
      pending: pending.rows[0]!.n,
      runsRunning: running.rows[0]!.n,
      abandoned: abandoned.rows,
    };
  } finally {
    await db.close();
  }
}

/** Starts normalize and SIGKILLs it a moment after its `batches`-th batch committed. */
function killAfterBatches(target: TestTarget, batches: number, delayMs: number): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...target.args, '--verbose', 'normalize', '--batch-size', '100'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let seen = 0;
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk.split('\n').filter((l) => /normalize: batch \d+ took/.test(l)).length;
      if (seen >= batches && !killed) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL' }));
  });
}

/** The database reached directly, and through PgBouncer in transaction pooling mode when the tests have one. */
const ROUTES: [string, (t: TestTarget) => TestTarget][] = [['', (t) => t]];
if (poolerUrl) ROUTES.push([' through PgBouncer', throughPooler]);

describe('normalize is exactly-once under kill -9', { timeout: 600_000 }, () => {
  let reference: TestTarget;
  let expected: Awaited<ReturnType<typeof outcome>>;
  const copies: TestTarget[] = [];
  before(async () => {
    reference = await prepare();
    for (let i = 0; i < ROUTES.length; i++) copies.push(await cloneTarget(reference));
    const once = await runCli([...reference.args, 'normalize', '--json']);
    assert.equal(once.code, 0, once.stderr);
    expected = await outcome(reference);
  });
  after(async () => {
    await reference?.drop();
    for (const c of copies) await c.drop();
  });

  for (const [i, [route, via]] of ROUTES.entries())
    it(`kills at random points${route}, re-runs, and the same tables as one uninterrupted run`, async () => {
      const crashed = via(copies[i]!);
      assert.equal(expected.pending, 0);
      assert.ok(expected.errors.length >= EVENTS / 400, `only ${expected.errors.length} dead letters`);

      let kills = 0;
      for (let attempt = 0; kills < KILLS && attempt < 3 * KILLS; attempt++) {
        const r = await killAfterBatches(crashed, 1 + Math.floor(Math.random() * 4), Math.floor(Math.random() * 40));
        if (r.killed) kills++;
      }
      assert.ok(kills >= KILLS, `only ${kills} kills landed`);
      const mid = await outcome(crashed);
      assert.ok(mid.pending > 0, 'the kills must leave work behind');

      const finish = await runCli([...crashed.args, 'normalize', '--json']);
      assert.equal(finish.code, 0, finish.stderr);
      const got = await outcome(crashed);
      assert.equal(got.pending, 0);
      assert.equal(got.interactions.length, expected.interactions.length, 'interactions lost or duplicated');
      assert.deepEqual(got.interactions, expected.interactions);
      assert.deepEqual(got.errors, expected.errors, 'dead letters lost or duplicated');
      // Each killed run's process is gone from this host: the next run marks it abandoned at once
      // and names itself as the run that resumed its work.
      assert.equal(got.runsRunning, 0, 'no killed run is left running');
      assert.equal(got.abandoned.length, kills);
      assert.ok(
        got.abandoned.every((a) => a.resumed_by !== null),
        'each abandoned run names the run that resumed it',
      );
    });
});

describe('normalize in parallel', { skip: onServer ? false : 'needs a real server', timeout: 300_000 }, () => {
  for (const [route, via] of ROUTES)
    it(`four processes${route} share 20,000 events, each event once, all four working`, async () => {
      const prepared = await prepare();
      const target = via(prepared);
      try {
        const runs = await Promise.all([1, 2, 3, 4].map(() => runCli([...target.args, 'normalize', '--batch-size', '100', '--json'])));
        for (const r of runs) assert.equal(r.code, 0, r.stderr);
        const taken = runs.map((r) => r.json<{ counts: { events?: number } }>().counts.events ?? 0);
        assert.equal(
          taken.reduce((a, b) => a + b, 0),
          EVENTS,
          `events taken: ${taken.join(' + ')}`,
        );
        assert.ok(
          taken.every((n) => n > 0),
          `a process did no work: ${taken.join(', ')}`,
        );
        const got = await outcome(target);
        assert.equal(got.pending, 0);
        const keys = got.interactions.map((k) => k.split('|').slice(0, 3).join('|'));
        assert.equal(new Set(keys).size, keys.length);
        const again = await runCli([...target.args, 'normalize', '--json']);
        assert.equal(again.json<{ counts: { events?: number } }>().counts.events ?? 0, 0);
      } finally {
        await prepared.drop();
      }
    });
});
