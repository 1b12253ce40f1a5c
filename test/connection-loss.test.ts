// A dropped connection is survived (SPEC §13): backends terminated every 2 s during a backfill of
// 8,000 events (about 25 s here: a dozen cuts) — the way a failover, a server restart or an
// operator's pg_terminate_backend cuts them — and the backfill still finishes with exactly the
// tables of a run nobody disturbed. The same through PgBouncer in transaction pooling mode, which
// is what production puts in front.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { generateEvents } from '../src/generate/generator.js';
import { runCli } from './support/cli.js';
import { cloneTarget, migratedTarget, onServer, poolerUrl, serverUrl, throughPooler, type TestTarget } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';
import { snapshot } from './support/tables.js';

const EVENTS = 8_000;
const PROVIDERS = ['gmail', 'twilio', 'instagram', 'webform'] as const;
const BACKFILL = [
  'backfill',
  '--since',
  '2000-01-01',
  '--create-contacts',
  '--embedder',
  'local',
  '--insights-provider',
  'heuristic',
  '--json',
];
const env = { OPENAI_API_KEY: '' };

/** Terminates every omni-ingest backend of `database` every `everyMs` until stopped; counts them. */
function terminator(database: string, everyMs: number): { stop(): Promise<number> } {
  const admin = new pg.Client({ connectionString: serverUrl });
  let killed = 0;
  let running = true;
  const loop = (async () => {
    await admin.connect();
    while (running) {
      await new Promise((r) => setTimeout(r, everyMs));
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        [database],
      );
      killed += rows[0]?.n ?? 0;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await admin.end();
      return killed;
    },
  };
}

const dbName = (t: TestTarget) => new URL(t.url!).pathname.slice(1);

describe('a backfill survives its connections being cut', { skip: onServer ? false : 'needs a real server', timeout: 900_000 }, () => {
  let reference: TestTarget;
  let expected: Record<string, string[]>;
  const extra: TestTarget[] = [];
  before(async () => {
    const base = await migratedTarget();
    const db = await base.open();
    try {
      for (const p of PROVIDERS) await loadEvents(db, p, generateEvents(p, EVENTS / PROVIDERS.length, { seed: 4242, userId: USER_A }));
    } finally {
      await db.close();
    }
    reference = base;
    for (let i = 0; i < (poolerUrl ? 2 : 1); i++) extra.push(await cloneTarget(base));
    const clean = await runCli([...reference.args, ...BACKFILL], { env, timeoutMs: 600_000 });
    assert.equal(clean.code, 0, clean.stderr);
    expected = await snapshot(reference);
  });
  after(async () => {
    await reference?.drop();
    for (const t of extra) await t.drop();
  });

  const routes: [string, (t: TestTarget) => TestTarget][] = [['directly', (t) => t]];
  if (poolerUrl) routes.push(['through PgBouncer (transaction pooling)', throughPooler]);
  routes.forEach(([route, via], i) => {
    it(`backends terminated every 2 s, ${route}: completes, and the tables are those of an undisturbed run`, async () => {
      const target = via(extra[i]!);
      const cut = terminator(dbName(extra[i]!), 2_000);
      const r = await runCli([...target.args, ...BACKFILL], { env, timeoutMs: 600_000 });
      const killed = await cut.stop();
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.ok(killed >= 3, `only ${killed} backends terminated: the run was not disturbed enough to prove anything`);
      assert.match(r.stderr, /reconnecting in/);
      // Read back directly: the pooler may still hold a server connection the terminator killed,
      // and hand it to the first client that comes, which is the test's reader, not the tool.
      const got = await snapshot(extra[i]!);
      for (const table of Object.keys(expected)) {
        const want = new Set(expected[table]);
        const have = new Set(got[table]);
        const missing = [...want].filter((k) => !have.has(k)).slice(0, 10);
        const extra = [...have].filter((k) => !want.has(k)).slice(0, 10);
        assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${table} differs from the undisturbed run`);
        assert.equal(got[table]!.length, expected[table]!.length, `${table}: rows repeated`);
      }
    });
  });
});
