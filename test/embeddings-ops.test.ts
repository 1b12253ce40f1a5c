// `embeddings index` and `search`, bad input to every embeddings command, and (on a server) the
// swap and the index build under contention: a table lock held by someone else, two swaps at
// once, a build killed mid-way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import pg from 'pg';
import { systemClock } from '../src/clock.js';
import type { Db } from '../src/db/connect.js';
import { createLocalEmbedder } from '../src/embed/local.js';
import { runEmbeddingsBackfill } from '../src/embeddings/backfill.js';
import { buildIndex } from '../src/embeddings/hnsw.js';
import { searchInteractions } from '../src/embeddings/search.js';
import { generateLegacyEmbeddings } from '../src/generate/legacy-embeddings.js';
import { createMemoryLogger } from '../src/logger.js';
import { makeRange } from '../src/stages/engine/range.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { freshTarget, migratedDb, onServer, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';
import { seedLegacy } from './support/legacy.js';

const logger = createMemoryLogger();
const VALID = { compact: 1, spaced: 1, exponents: 1, float64: 1 };

/** A database whose legacy rows (all valid) are copied: ready to swap and index. */
async function copied(rows: number): Promise<{ db: Db; target: TestTarget; close(): Promise<void> }> {
  const t = await migratedDb();
  await seedLegacy(t.db, generateLegacyEmbeddings(rows, { seed: 21, mix: VALID }));
  await runEmbeddingsBackfill({
    db: t.db,
    clock: systemClock,
    logger,
    range: makeRange({ batchSize: 500 }),
    lockTimeoutMs: 500,
    lockAttempts: 3,
  });
  return t;
}

interface IndexJson {
  action: string;
  concurrently: boolean;
  replaced: string | null;
  index: { name: string; valid: boolean; m: number; efConstruction: number };
}

describe('embeddings index and search', { timeout: 300_000 }, () => {
  it('builds the HNSW cosine index, keeps it, rebuilds it on new parameters; search sees it', async () => {
    const { db, target, close } = await copied(30);
    try {
      await db.close();
      const cli = (...args: string[]) => runCli([...target.args, ...args], { env: { OPENAI_API_KEY: undefined } });
      const built = await cli('--json', 'embeddings', 'index', '--maintenance-work-mem', '96MB');
      assert.equal(built.code, 0, built.stderr);
      const b = built.json<IndexJson & { maintenanceWorkMem: string }>();
      assert.deepEqual(
        [b.action, b.index.name, b.index.valid, b.index.m, b.index.efConstruction, b.concurrently, b.maintenanceWorkMem],
        ['built', 'embeddings_vector_hnsw_idx', true, 16, 64, onServer, '96MB'],
      );
      if (!onServer) assert.match(built.stderr, /without CONCURRENTLY/);
      const again = await cli('embeddings', 'index');
      assert.match(
        again.stdout,
        /embeddings_vector_hnsw_idx \(hnsw vector_cosine_ops, m 16, ef_construction 64, .*valid\) is there; nothing to do/,
      );
      const rebuilt = await cli('--json', 'embeddings', 'index', '--m', '8', '--ef-construction', '40');
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      const r = rebuilt.json<IndexJson>();
      assert.deepEqual(
        [r.action, r.index.name, r.index.m, r.index.efConstruction, r.replaced],
        ['rebuilt', 'embeddings_vector_hnsw_idx', 8, 40, 'embeddings_vector_hnsw_idx'],
      );
      const status = await cli('--json', 'embeddings', 'status');
      const s = status.json<{ index: { name: string; m: number } | null; indexes: unknown[] }>();
      assert.deepEqual([s.index?.name, s.index?.m, s.indexes.length], ['embeddings_vector_hnsw_idx', 8, 1]);
      const found = await cli('--json', 'search', 'renewal', 'of', 'contract 7', '--explain', '--limit', '2');
      assert.equal(found.code, 0, found.stderr);
      const f = found.json<{ query: string; index: string; hits: unknown[]; plan: string[] }>();
      assert.deepEqual([f.query, f.index, f.hits.length], ['renewal of contract 7', 'embeddings_vector_hnsw_idx', 2]);
      assert.ok(f.plan.some((l) => /Execution Time/.test(l)) && !f.plan.some((l) => l.length > 2000), 'a plan, the query vector elided');
    } finally {
      await close();
    }
  });

  it('a rebuild killed once its build was done leaves …_new valid: the next run takes it over or drops it, one index left', async () => {
    const t = await copied(20);
    let db = t.db;
    // What a killed rebuild leaves: PostgreSQL finishes the build of …_new although its client died.
    const leave = (m: number, ef: number) =>
      db.query(
        `CREATE INDEX embeddings_vector_hnsw_idx_new ON public.embeddings USING hnsw (embedding_v vector_cosine_ops) WITH (m = ${m}, ef_construction = ${ef})`,
      );
    const hnsw = async () =>
      (
        await db.query<{ name: string; options: string[] }>(
          `SELECT c.relname AS name, c.reloptions AS options FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
           WHERE x.indrelid = 'public.embeddings'::regclass AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'hnsw') ORDER BY 1`,
        )
      ).rows.map((r) => `${r.name} ${r.options.join(' ')}`);
    const build = (m: number, efConstruction: number, rebuild = false) =>
      buildIndex(db, { m, efConstruction, maintenanceWorkMem: null, rebuild, logger });
    try {
      await build(16, 64);
      await leave(24, 100);
      await db.close();
      // Asked again for the parameters it was built with: taken over, the old index dropped.
      const again = await runCli([...t.target.args, '--json', 'embeddings', 'index', '--m', '24', '--ef-construction', '100']);
      assert.equal(again.code, 0, again.stderr);
      const a = again.json<IndexJson & { adopted: string | null; repaired: string[] }>();
      assert.deepEqual(
        [a.action, a.adopted, a.replaced, a.repaired, a.index.name, a.index.m, a.index.efConstruction],
        ['rebuilt', 'embeddings_vector_hnsw_idx_new', 'embeddings_vector_hnsw_idx', [], 'embeddings_vector_hnsw_idx', 24, 100],
      );
      db = await t.target.open();
      assert.deepEqual(await hnsw(), ['embeddings_vector_hnsw_idx m=24 ef_construction=100']);

      // Other parameters than it was built with (here --rebuild with the defaults): dropped, built again.
      await leave(24, 100);
      const rebuilt = await build(16, 64, true);
      assert.deepEqual(
        [rebuilt.action, rebuilt.adopted, rebuilt.repaired, rebuilt.replaced, rebuilt.index?.m],
        ['rebuilt', null, ['embeddings_vector_hnsw_idx_new'], 'embeddings_vector_hnsw_idx', 16],
      );
      assert.deepEqual(await hnsw(), ['embeddings_vector_hnsw_idx m=16 ef_construction=64']);

      // Killed between dropping the old index and the rename: …_new is alone.
      await db.query('DROP INDEX public.embeddings_vector_hnsw_idx');
      await leave(24, 100);
      const alone = await build(24, 100);
      assert.deepEqual([alone.action, alone.adopted, alone.replaced], ['built', 'embeddings_vector_hnsw_idx_new', null]);
      assert.deepEqual(await hnsw(), ['embeddings_vector_hnsw_idx m=24 ef_construction=100']);
      // …_new alone with other parameters: it serves search until the new index is built.
      await db.query('ALTER INDEX public.embeddings_vector_hnsw_idx RENAME TO embeddings_vector_hnsw_idx_new');
      const replaced = await build(16, 64);
      assert.deepEqual(
        [replaced.action, replaced.adopted, replaced.repaired, replaced.replaced],
        ['rebuilt', null, [], 'embeddings_vector_hnsw_idx_new'],
      );
      assert.deepEqual(await hnsw(), ['embeddings_vector_hnsw_idx m=16 ef_construction=64']);
    } finally {
      await db.close();
      await t.close();
    }
  });

  it('search goes through the index on a table of some size; filters narrow the hits', {
    skip: onServer ? false : 'needs a real server',
  }, async () => {
    const { db, close } = await migratedDb();
    try {
      // Vectors straight into the column (the legacy text plays no part here): enough rows that
      // the planner prefers the index to reading them all.
      await db.query(
        `INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at)
         SELECT $1, CASE WHEN g % 2 = 0 THEN 'webform' ELSE 'gmail' END, 'bulk-' || g, 'form_submitted', 'Bulk ' || g, 'Text ' || g,
                timestamptz '2024-01-01' + make_interval(mins => g)
         FROM generate_series(1, 4000) g`,
        [USER_A],
      );
      await db.query(
        `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding_v)
         SELECT i.user_id, 'interaction', i.id, (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 1536) WHERE i.id IS NOT NULL)::vector
         FROM public.interactions i`,
      );
      await db.query('ANALYZE public.interactions'); // what autovacuum does for a live table
      await buildIndex(db, { m: 8, efConstruction: 32, maintenanceWorkMem: '256MB', rebuild: false, logger });
      const search = (filters: Parameters<typeof searchInteractions>[1]['filters']) =>
        searchInteractions(db, { text: 'bulk text', limit: 5, filters, embedder: createLocalEmbedder(), explain: true });
      const plain = await search({ since: undefined, until: undefined, userId: USER_A, provider: undefined });
      assert.equal(plain.usesIndex, true, plain.plan?.join('\n'));
      assert.equal(plain.hits.length, 5);
      assert.ok(plain.hits.every((h, i, all) => i === 0 || all[i - 1]!.distance <= h.distance));
      const since = new Date('2024-01-02T00:00:00Z');
      // With filters on the interaction the planner weighs the index against filtering first; either
      // way the hits are the nearest that pass the filters, and enough of them (iterative scans).
      const filtered = await search({ since, until: undefined, userId: undefined, provider: 'webform' });
      assert.equal(filtered.hits.length, 5);
      assert.ok(filtered.hits.every((h) => h.source === 'webform' && h.occurred_at !== null && h.occurred_at >= since));
    } finally {
      await close();
    }
  });
});

describe('embeddings commands refuse bad input', () => {
  const usage = async (args: string[], message: RegExp) => {
    const r = await runCli(['--json', ...args], { env: { OPENAI_API_KEY: undefined } });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const doc = r.json<{ ok: boolean; error: { code: string; message: string } }>();
    assert.equal(doc.ok, false);
    assert.match(doc.error.message, message, args.join(' '));
  };

  it('names the flag and the value, exit 2, one JSON document', async () => {
    await usage(['embeddings', 'index', '--m', '1'], /--m "1" must be a whole number between 2 and 100/);
    await usage(['embeddings', 'index', '--ef-construction', '20'], /--ef-construction \(20\) must be at least twice --m \(16\)/);
    await usage(['embeddings', 'index', '--maintenance-work-mem', 'lots'], /--maintenance-work-mem "lots" must be a memory size/);
    await usage(['embeddings', 'swap', '--lock-timeout', '0s'], /--lock-timeout "0s" must be a duration between/);
    await usage(['embeddings', 'swap', '--lock-timeout', '2h'], /--lock-timeout "2h"/);
    await usage(['embeddings', 'swap', '--lock-attempts', 'many'], /--lock-attempts "many"/);
    await usage(['embeddings', 'backfill', '--batch-size', '0x10'], /--batch-size "0x10"/);
    await usage(['embeddings', 'backfill', '--embedder', 'openai'], /apply only with --reembed/);
    await usage(['embeddings', 'backfill', '--reembed', '--embedder', 'openai'], /OPENAI_API_KEY is not set/);
    await usage(['embeddings', 'backfill', '--since', '90d'], /unknown option '--since'/);
    await usage(['embeddings', 'verify', '--tolerance', '1'], /unknown option/);
    await usage(['embeddings', 'verify', '--workers', '0'], /--workers "0" must be a whole number between 1 and 32/);
    await usage(['embeddings', 'frobnicate'], /unknown command 'frobnicate'/);
    await usage(['search'], /missing required argument 'text'/);
    await usage(['search', 'x', '--limit', '0'], /--limit "0" must be a whole number between 1 and 1000/);
    await usage(['search', 'x', '--user', 'me'], /--user "me" must be a UUID/);
    await usage(['search', 'x', '--provider', 'fax'], /--provider "fax" is not one of/);
    await usage(['search', ' '], /^search " ": the text to look for must not be empty$/);
  });

  it('an un-migrated database is a configuration error that says to migrate', async () => {
    const target = await freshTarget();
    try {
      const r = await runCli([...target.args, 'embeddings', 'status']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /the database is not migrated \(0 of \d+ applied\): run `omni-ingest migrate`/);
    } finally {
      await target.drop();
    }
  });
});

describe('the swap and the index under contention', { skip: onServer ? false : 'needs a real server', timeout: 300_000 }, () => {
  const session = async (url: string) => {
    const c = new pg.Client({ connectionString: url, application_name: 'test-blocker' });
    await c.connect();
    return c;
  };

  it('a table lock held elsewhere: the swap retries at --lock-timeout, then exits 75 having changed nothing', async () => {
    const { db, target, close } = await copied(10);
    const blocker = await session(target.url!);
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT count(*) FROM public.embeddings');
      const started = Date.now();
      const r = await runCli([...target.args, '--json', 'embeddings', 'swap', '--lock-timeout', '100ms', '--lock-attempts', '3']);
      assert.equal(r.code, 75, r.stdout + r.stderr);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'busy');
      assert.match(r.stderr, /attempt 3 in \d+ ms/);
      assert.ok(Date.now() - started < 10_000);
      await blocker.query('ROLLBACK');
      const { rows } = await db.query<{ attname: string }>(
        `SELECT attname FROM pg_attribute WHERE attrelid = 'public.embeddings'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped ORDER BY 1`,
      );
      assert.deepEqual(
        rows.map((x) => x.attname),
        ['embedding', 'embedding_v'],
      );
      // Free again: it goes through.
      assert.equal((await runCli([...target.args, 'embeddings', 'swap'])).code, 0);
    } finally {
      await blocker.end();
      await close();
    }
  });

  it('two swaps at once: one swaps, the other finds it done (or is told to retry); never half-applied', async () => {
    const { db, target, close } = await copied(10);
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runCli([...target.args, '--json', 'embeddings', 'swap'])));
      assert.ok(
        runs.every((r) => r.code === 0 || r.code === 75),
        runs.map((r) => r.stderr).join('\n'),
      );
      const actions = runs.filter((r) => r.code === 0).map((r) => r.json<{ action: string }>().action);
      assert.deepEqual(
        actions.filter((a) => a === 'swapped'),
        ['swapped'],
      );
      assert.ok(actions.every((a) => a === 'swapped' || a === 'already'));
      const { rows } = await db.query<{ cols: string; triggers: string }>(`
SELECT (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) FROM pg_attribute
        WHERE attrelid = 'public.embeddings'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped) AS cols,
       (SELECT string_agg(p.proname, ', ') FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = 'public.embeddings'::regclass AND NOT t.tgisinternal) AS triggers`);
      assert.deepEqual(rows[0], { cols: 'embedding vector(1536), embedding_legacy text', triggers: 'embeddings_sync_vector' });
    } finally {
      await close();
    }
  });

  it('a build killed mid-way leaves an INVALID index; the next run drops it and builds again', async () => {
    const { db, target, close } = await copied(20);
    const writer = await session(target.url!);
    try {
      // An open write makes CREATE INDEX CONCURRENTLY wait after it has registered the index.
      await writer.query('BEGIN');
      await writer.query(`UPDATE public.embeddings SET meta = meta WHERE id = (SELECT id FROM public.embeddings LIMIT 1)`);
      const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...target.args, 'embeddings', 'index'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const { rows } = await db.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        );
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(pid, 'the build started and waits');
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
      assert.equal(await exited, 1, stderr);
      assert.match(stderr, /an INVALID index may be left/);
      await writer.query('ROLLBACK');

      const status = await runCli([...target.args, '--json', 'embeddings', 'status']);
      const s = status.json<{ index: unknown; indexes: { name: string; valid: boolean }[] }>();
      assert.deepEqual([s.index, s.indexes], [null, [{ ...s.indexes[0], name: 'embeddings_vector_hnsw_idx', valid: false }]]);
      const repaired = await runCli([...target.args, '--json', 'embeddings', 'index']);
      assert.equal(repaired.code, 0, repaired.stderr);
      const r = repaired.json<IndexJson & { repaired: string[] }>();
      assert.deepEqual([r.action, r.repaired, r.index.valid], ['built', ['embeddings_vector_hnsw_idx'], true]);
    } finally {
      await writer.end().catch(() => {});
      await close();
    }
  });
});
