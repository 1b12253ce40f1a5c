// `omni-ingest demo` (the README's main job): the whole pipeline from an empty database.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './support/cli.js';
import { freshTarget } from './support/db.js';

interface DemoJson {
  imported: { inserted: number; duplicates: number; invalid: number }[];
  backfill: { status: string; stages: { stage: string; counts: Record<string, number> }[] };
  stats: { tables: { table: string; rows: number }[]; queue: { stage: string; pending: number }[] };
  search: { query: string; hits: { distance: number; type: string }[] };
}

describe('omni-ingest demo', { timeout: 300_000 }, () => {
  it('runs the pipeline end to end, searches, and a second run adds nothing', async () => {
    const target = await freshTarget();
    try {
      const env = { OPENAI_API_KEY: 'sk-should-not-be-used', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' };
      const r = await runCli([...target.args, 'demo', '--events', '40', '--query', 'invoice overdue', '--json'], { env });
      assert.equal(r.code, 0, r.stderr);
      const d = r.json<DemoJson>();
      assert.equal(d.backfill.status, 'succeeded');
      assert.ok(d.imported.every((i) => i.invalid === 0));
      const rows = Object.fromEntries(d.stats.tables.map((t) => [t.table, t.rows]));
      for (const table of ['raw_events', 'interactions', 'contacts', 'embeddings', 'ai_insights', 'contact_timeline'])
        assert.ok((rows[table] ?? 0) > 0, `${table} is empty`);
      assert.ok(
        d.stats.queue.every((q) => q.pending === 0),
        'nothing left pending',
      );
      assert.equal(d.search.query, 'invoice overdue');
      assert.ok(d.search.hits.length > 0);
      assert.ok(
        d.search.hits.every((h, i, all) => h.distance >= 0 && h.distance <= 2 && (i === 0 || all[i - 1]!.distance <= h.distance)),
        'hits are nearest first',
      );

      const again = await runCli([...target.args, 'demo', '--events', '40', '--json'], { env });
      assert.equal(again.code, 0, again.stderr);
      const d2 = again.json<DemoJson>();
      assert.equal(
        d2.imported.reduce((n, i) => n + i.inserted, 0),
        0,
      );
      assert.ok(d2.backfill.stages.every((s) => (s.counts.events ?? 0) === 0));
      assert.deepEqual(d2.stats.tables, d.stats.tables);
    } finally {
      await target.drop();
    }
  });
});
