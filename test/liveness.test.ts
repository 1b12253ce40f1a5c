// The ledger and the leases tell the truth (SPEC §13): a run or a lease of a process that is gone
// is taken back at once; a run that leaves work it found waiting is not "succeeded"; a stop
// aborts provider requests at once; a signal's stop does not look finished to cron; retries are
// visible and bounded.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { migratedTarget, onServer, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';

/** A pid that certainly belonged to a process of this host that is gone. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** n interactions queued for embed, with text. */
async function seedInteractions(db: Db, n: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `
INSERT INTO public.interactions (user_id, source, source_id, type, body_text, occurred_at)
SELECT $1, 'webform', 'f' || g, 'form_submitted', 'hello number ' || g, now()
FROM generate_series(1, $2) AS g
RETURNING id`,
    [USER_A, n],
  );
  return rows.map((r) => r.id);
}

async function withDb<T>(target: TestTarget, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await target.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

interface RunJson {
  status: string;
  stopReason: string;
  left: number;
  runId: string;
  counts: { events?: number };
}

describe('runs and leases of processes that are gone', () => {
  let target: TestTarget;
  beforeEach(async () => {
    target = await migratedTarget();
  });
  // Each test has a database of its own: drop each, not only the last.
  afterEach(async () => target?.drop());

  it('a run of this host whose process is gone is abandoned at once, naming the run that resumed it', async () => {
    const pid = deadPid();
    const dead = await withDb(target, async (db) => {
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO omni_ingest.runs (command, host, pid) VALUES ('normalize', $1, $2) RETURNING id`,
        [os.hostname(), pid],
      );
      return rows[0]!.id;
    });
    const r = await runCli([...target.args, 'normalize', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1 earlier normalize run\(s\) died without a word/);
    const runId = r.json<RunJson>().runId;
    const list = await runCli([...target.args, 'runs', 'list', '--json']);
    const runs = list.json<{ runs: { id: string; status: string; resumed_by: string | null; stop_reason: string | null }[] }>().runs;
    const row = runs.find((x) => x.id === dead);
    assert.deepEqual([row?.status, row?.resumed_by, row?.stop_reason], ['abandoned', runId, 'its process is gone']);
  });

  it('items leased by a process of this host that is gone are taken back at once, not after the lease', async () => {
    const owner = `${os.hostname()}:${deadPid()}:embed:deadbeef`;
    await withDb(target, async (db) => {
      const ids = await seedInteractions(db, 12);
      await db.query(
        `UPDATE omni_ingest.work_queue SET claimed_by = $1, claimed_until = now() + interval '10 minutes' WHERE stage = 'embed' AND item_id = ANY($2::uuid[])`,
        [owner, ids],
      );
    });
    const r = await runCli([...target.args, 'embed', '--embedder', 'local', '--json'], { env: { OPENAI_API_KEY: '' } });
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<RunJson>();
    assert.deepEqual([body.status, body.counts.events, body.left], ['succeeded', 12, 0]);
    assert.match(r.stderr, /took back 12 item\(s\) leased by 1 process\(es\) of this host that are gone/);
  });

  it('work leased by a live run elsewhere is not "succeeded": the run says incomplete and how much is left', async () => {
    await withDb(target, async (db) => {
      const ids = await seedInteractions(db, 8);
      await db.query(
        `UPDATE omni_ingest.work_queue SET claimed_by = 'other-host:4242:embed:cafe', claimed_until = now() + interval '10 minutes' WHERE stage = 'embed' AND item_id = ANY($1::uuid[])`,
        [ids.slice(0, 3)],
      );
    });
    const r = await runCli([...target.args, 'embed', '--embedder', 'local', '--json'], { env: { OPENAI_API_KEY: '' } });
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<RunJson>();
    assert.deepEqual([body.status, body.counts.events, body.left], ['incomplete', 5, 3]);
    const list = await runCli([...target.args, 'runs', 'list', '--command', 'embed', '--json']);
    assert.equal(list.json<{ runs: { status: string }[] }>().runs[0]?.status, 'incomplete');
  });
});

describe('stopping is prompt and readable by cron', () => {
  let target: TestTarget;
  let fake: FakeOpenAI;
  before(async () => {
    target = await migratedTarget();
  });
  after(async () => target?.drop());
  beforeEach(async () => {
    await withDb(target, async (db) => {
      await db.query(`DELETE FROM omni_ingest.work_queue`);
      await db.query(`DELETE FROM public.interactions`);
      await seedInteractions(db, 6);
    });
  });

  const embed = (...extra: string[]) => [...target.args, 'embed', '--embedder', 'openai', '--json', ...extra];
  const env = () => ({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.url });

  it('SIGTERM while requests hang: the requests are aborted, the leases released, exit 143 at once', async () => {
    fake = await startFakeOpenAI({ hang: true });
    try {
      const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...embed('--verbose')], {
        env: { ...process.env, ...env(), NO_COLOR: '1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      while (fake.stats.requests === 0 && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      const sent = Date.now();
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 143, stderr);
      assert.ok(Date.now() - sent < 10_000, `took ${Date.now() - sent} ms to stop`);
      const body = JSON.parse(stdout) as RunJson;
      assert.deepEqual([body.status, body.stopReason, body.left], ['stopped', 'signal', 6]);
      const leased = await withDb(
        target,
        async (db) =>
          (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE claimed_by IS NOT NULL`)).rows[0]!.n,
      );
      assert.equal(leased, 0, 'leases given back');
    } finally {
      await fake.close();
    }
  });

  it('--time-budget while requests hang: a planned stop (exit 0) within the budget, saying how much is left', async () => {
    fake = await startFakeOpenAI({ hang: true });
    try {
      const started = Date.now();
      const r = await runCli(embed('--time-budget', '2s'), { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - started < 15_000);
      const body = r.json<RunJson>();
      assert.deepEqual([body.status, body.stopReason, body.left], ['stopped', 'time-budget', 6]);
    } finally {
      await fake.close();
    }
  });

  it('every retry is a warning with its attempt; a malformed answer is retried and named; the run then succeeds', async () => {
    fake = await startFakeOpenAI({ serverErrors: 1, malformedAnswers: 1 });
    try {
      const r = await runCli(embed('--concurrency', '1', '--workers', '1'), { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: .*malformed JSON.*retry \d+ of 9/);
      assert.match(r.stderr, /warning: .*500 .*retry \d+ of 9/);
      assert.equal(r.json<RunJson>().counts.events, 6);
    } finally {
      await fake.close();
    }
  });

  it('a provider that keeps failing gives up after --retry-for, and nothing stays leased', async () => {
    fake = await startFakeOpenAI({ serverErrors: 1_000_000 });
    try {
      const started = Date.now();
      const r = await runCli(embed('--retry-for', '2s'), { env: env() });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /still failing after \d+ s of retries \(limit 2 s\)/);
      assert.ok(Date.now() - started < 20_000);
      const leased = await withDb(
        target,
        async (db) =>
          (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM omni_ingest.work_queue WHERE claimed_by IS NOT NULL`)).rows[0]!.n,
      );
      assert.equal(leased, 0);
    } finally {
      await fake.close();
    }
  });
});

describe('a stopped run is not taken for finished', {
  skip: onServer ? false : 'signals need a run long enough to catch; the server run shows it',
}, () => {
  it('SIGINT during normalize exits 130 after its batch; the same command then finishes', async () => {
    const target = await migratedTarget();
    try {
      await withDb(target, async (db) => {
        await db.query(
          `INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at)
SELECT $1, 'webform', 'w' || g, jsonb_build_object('id', 'w' || g, 'form_id', 'f', 'submitted_at', '2025-01-01T00:00:00Z', 'fields', jsonb_build_object('message', 'hi')), now()
FROM generate_series(1, 20000) AS g`,
          [USER_A],
        );
      });
      const child = spawn(
        process.execPath,
        [...NODE_FLAGS, binary, ...target.args, '--verbose', 'normalize', '--batch-size', '50', '--json'],
        {
          env: { ...process.env, NO_COLOR: '1' },
        },
      );
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (/batch 3 took/.test(d)) child.kill('SIGINT');
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 130);
      const body = JSON.parse(stdout) as RunJson;
      assert.equal(body.status, 'stopped');
      assert.ok(body.left > 0);
      const again = await runCli([...target.args, 'normalize', '--json']);
      assert.equal(again.code, 0);
      assert.equal(again.json<RunJson>().left, 0);
    } finally {
      await target.drop();
    }
  });
});
