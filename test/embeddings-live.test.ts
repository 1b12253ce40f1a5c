// The swap under a live application (server): while `embeddings backfill` and then
// `embeddings swap` run through the binary, an older application keeps writing legacy text to
// `embedding` and readers keep asking for nearest neighbours. Every write must end with the
// matching vector, and no reader or writer may wait a second for a lock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { generateLegacyEmbeddings, legacyEmbedding } from '../src/generate/legacy-embeddings.js';
import { runCli } from './support/cli.js';
import { migratedTarget, onServer } from './support/db.js';
import { USER_A } from './support/events.js';
import { seedLegacy } from './support/legacy.js';

const ROWS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface AppStats {
  /** The last text each row was given, by id. */
  written: Map<string, string>;
  writesAfter: (t: number) => number;
  reads: number;
  /** Reads that met the renamed column just after the swap and asked the catalog again. */
  renamed: number;
  errors: string[];
  /** The longest lock wait seen in pg_stat_activity, by role. */
  maxLockWaitMs: { reader: number; writer: number };
  maxStatementMs: { reader: number; writer: number };
}

/** Two writers of legacy text, two nearest-neighbour readers, and a sampler of their lock waits. */
async function startApp(url: string, ids: string[]) {
  const clients: pg.Client[] = [];
  const client = async (name: string) => {
    const c = new pg.Client({ connectionString: url, application_name: name });
    await c.connect();
    clients.push(c);
    return c;
  };
  let stopped = false;
  let seed = 1_000_000;
  const s: AppStats = {
    written: new Map(),
    writesAfter: () => 0,
    reads: 0,
    renamed: 0,
    errors: [],
    maxLockWaitMs: { reader: 0, writer: 0 },
    maxStatementMs: { reader: 0, writer: 0 },
  };
  const writeTimes: number[] = [];
  s.writesAfter = (t) => writeTimes.filter((w) => w > t).length;
  const timed = async <T>(role: 'reader' | 'writer', fn: () => Promise<T>) => {
    const t = performance.now();
    const out = await fn();
    s.maxStatementMs[role] = Math.max(s.maxStatementMs[role], performance.now() - t);
    return out;
  };

  const writer = async (k: number) => {
    const c = await client(`live-writer-${k}`);
    const mine = ids.filter((_, i) => i % 2 === k); // each writer its own rows: the last write is known
    while (!stopped) {
      const text = legacyEmbedding('compact', seed++).text!;
      try {
        // Exactly what an application that knows only the text column sends (an untyped parameter).
        if (Math.random() < 0.5) {
          const { rows } = await timed('writer', () =>
            c.query<{ id: string }>(
              `INSERT INTO public.embeddings (user_id, owner_type, owner_id, embedding) VALUES ($1, 'interaction', gen_random_uuid(), $2) RETURNING id::text AS id`,
              [USER_A, text],
            ),
          );
          s.written.set(rows[0]!.id, text);
        } else {
          const id = mine[Math.floor(Math.random() * mine.length)]!;
          await timed('writer', () => c.query('UPDATE public.embeddings SET embedding = $2 WHERE id = $1', [id, text]));
          s.written.set(id, text);
        }
        writeTimes.push(Date.now());
      } catch (err) {
        s.errors.push(`writer: ${String(err)}`);
      }
    }
  };

  const reader = async (k: number) => {
    const c = await client(`live-reader-${k}`);
    const query = legacyEmbedding('spaced', k).text!;
    while (!stopped) {
      // What this tool's readers do: ask the catalog which column holds the vectors.
      const { rows } = await c.query<{ col: string }>(
        `SELECT attname AS col FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE attrelid = 'public.embeddings'::regclass AND t.typname = 'vector' AND NOT attisdropped`,
      );
      try {
        await timed('reader', () => c.query(`SELECT id FROM public.embeddings ORDER BY ${rows[0]!.col} <=> $1::vector LIMIT 5`, [query]));
        s.reads++;
      } catch (err) {
        if ((err as { code?: string }).code === '42703') s.renamed++;
        else s.errors.push(`reader: ${String(err)}`);
      }
    }
  };

  const sampler = async () => {
    const c = await client('live-sampler');
    while (!stopped) {
      const { rows } = await c.query<{ name: string; ms: number }>(
        `SELECT application_name AS name, extract(epoch FROM clock_timestamp() - query_start) * 1000 AS ms
         FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'live-%' AND wait_event_type = 'Lock'`,
      );
      for (const r of rows) {
        const role = r.name.startsWith('live-reader') ? 'reader' : 'writer';
        s.maxLockWaitMs[role] = Math.max(s.maxLockWaitMs[role], r.ms);
      }
      await sleep(10);
    }
  };

  const loops = [writer(0), writer(1), reader(0), reader(1), sampler()];
  return {
    stats: s,
    async stop(): Promise<AppStats> {
      stopped = true;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end()));
      return s;
    },
  };
}

describe('the swap under a live application', { skip: onServer ? false : 'needs a real server', timeout: 300_000 }, () => {
  it('legacy writes and nearest-neighbour reads through backfill and swap: no write lost, every lock wait under 1 s', async (t) => {
    const target = await migratedTarget();
    try {
      const db = await target.open();
      let ids: string[];
      try {
        ids = (await seedLegacy(db, generateLegacyEmbeddings(ROWS, { seed: 41, mix: { compact: 1, spaced: 1, float64: 1 } }))).map(
          (r) => r.id,
        );
      } finally {
        await db.close();
      }
      const app = await startApp(target.url!, ids);
      let swappedAt = 0;
      let backfillStartedAt = 0;
      try {
        await sleep(300);
        backfillStartedAt = Date.now();
        const b = await runCli([...target.args, '--json', 'embeddings', 'backfill', '--batch-size', '100', '--workers', '2']);
        assert.equal(b.code, 0, b.stderr);
        assert.ok(app.stats.writesAfter(backfillStartedAt) > 0, 'the application wrote during the backfill');
        const s = await runCli([...target.args, '--json', 'embeddings', 'swap']);
        assert.equal(s.code, 0, s.stdout + s.stderr);
        assert.equal(s.json<{ action: string }>().action, 'swapped');
        swappedAt = Date.now();
        await sleep(500);
      } finally {
        await app.stop();
      }
      const st = app.stats;
      t.diagnostic(
        `${st.written.size} rows written, ${st.reads} reads (${st.renamed} re-asked the column after the swap); longest lock wait: readers ${Math.round(st.maxLockWaitMs.reader)} ms, writers ${Math.round(st.maxLockWaitMs.writer)} ms; longest statement: readers ${Math.round(st.maxStatementMs.reader)} ms, writers ${Math.round(st.maxStatementMs.writer)} ms`,
      );
      assert.deepEqual(st.errors, []);
      assert.ok(st.writesAfter(swappedAt) > 0, 'the application wrote after the swap');
      assert.ok(st.reads > 20);
      assert.ok(st.maxLockWaitMs.reader < 1000 && st.maxLockWaitMs.writer < 1000, JSON.stringify(st.maxLockWaitMs));

      const check = await target.open();
      try {
        // Every row the application wrote holds, in the vector column, the last text it wrote.
        const { rows } = await check.query<{ missing: number; differ: number }>(
          `SELECT count(*) FILTER (WHERE e.id IS NULL)::int AS missing,
                  count(*) FILTER (WHERE e.id IS NOT NULL AND e.embedding IS DISTINCT FROM omni_ingest.legacy_vector(x.t))::int AS differ
           FROM unnest($1::uuid[], $2::text[]) AS x(id, t)
           LEFT JOIN public.embeddings e ON e.id = x.id`,
          [[...st.written.keys()], [...st.written.values()]],
        );
        assert.deepEqual(rows[0], { missing: 0, differ: 0 });
      } finally {
        await check.close();
      }
      const v = await runCli([...target.args, 'embeddings', 'verify']);
      assert.equal(v.code, 0, v.stdout);
    } finally {
      await target.drop();
    }
  });
});
