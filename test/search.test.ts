// `search` over chunked interactions: --limit counts interactions however many chunks a long one
// has (without and through the HNSW index, past hnsw.ef_search), and --user shows an interaction
// only when both the chunk and the interaction are the user's, with or without other filters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pgvector from 'pgvector';
import type { Db } from '../src/db/connect.js';
import { createLocalEmbedder, localVector } from '../src/embed/local.js';
import { buildIndex } from '../src/embeddings/hnsw.js';
import { searchInteractions } from '../src/embeddings/search.js';
import { createMemoryLogger } from '../src/logger.js';
import { runCli } from './support/cli.js';
import { migratedDb } from './support/db.js';
import { USER_A, USER_B } from './support/events.js';

const logger = createMemoryLogger();
const WORDS = 'zebra quagga okapi';
type Filters = Parameters<typeof searchInteractions>[1]['filters'];
const NONE: Filters = { since: undefined, until: undefined, userId: undefined, provider: undefined };

async function interaction(db: Db, user: string, sourceId: string, body: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, occurred_at)
     VALUES ($1, 'webform', $2, 'form_submitted', $2, $3, timestamptz '2024-06-01') RETURNING id::text AS id`,
    [user, sourceId, body],
  );
  return rows[0]!.id;
}

/**
 * `chunks` rows for one interaction, each the vector of `text` moved a little (as the chunks of
 * one long document are: near one another, not equal).
 */
async function chunks(db: Db, user: string, owner: string, text: string, count: number, jitter = 0.002): Promise<void> {
  await db.query(
    `INSERT INTO public.embeddings (user_id, owner_type, owner_id, chunk_index, embedding_v)
     SELECT $1, 'interaction', $2, g - 1, (SELECT array_agg(x + (random()::real - 0.5) * $5 ORDER BY n) FROM unnest($3::vector::real[]) WITH ORDINALITY u(x, n) WHERE g > 0)::vector
     FROM generate_series(1, $4::int) g`,
    [user, owner, pgvector.toSql(localVector(text)), count, jitter],
  );
}

describe('search --limit counts interactions', { timeout: 300_000 }, () => {
  it('a long interaction whose chunks fill the first candidate pool does not hide the next one', async () => {
    const { db, target, close } = await migratedDb();
    try {
      const long = await interaction(db, USER_A, 'long', `${WORDS} `.repeat(3000));
      const short = await interaction(db, USER_A, 'short', `${WORDS} giraffe`);
      await chunks(db, USER_A, long, WORDS, 32);
      await chunks(db, USER_A, short, `${WORDS} giraffe`, 1, 0);
      await db.close();
      const r = await runCli([...target.args, '--json', 'search', 'zebra', 'quagga', 'okapi', '--limit', '2'], {
        env: { OPENAI_API_KEY: undefined },
      });
      assert.equal(r.code, 0, r.stderr);
      const hits = r.json<{ hits: { interaction_id: string }[] }>().hits;
      assert.deepEqual(
        hits.map((h) => h.interaction_id),
        [long, short],
      );
    } finally {
      await close();
    }
  });

  it('through the HNSW index, past hnsw.ef_search (1000 at most): as many interactions as asked for', async () => {
    const t = await migratedDb();
    let db = t.db;
    try {
      const long = await interaction(db, USER_A, 'long', `${WORDS} `.repeat(3000));
      const short = await interaction(db, USER_A, 'short', `${WORDS} giraffe`);
      const other = await interaction(db, USER_A, 'other', 'nothing alike at all');
      await chunks(db, USER_A, long, WORDS, 1200);
      await chunks(db, USER_A, short, `${WORDS} giraffe`, 1, 0);
      await chunks(db, USER_A, other, 'nothing alike at all', 1, 0);
      await buildIndex(db, { m: 8, efConstruction: 32, maintenanceWorkMem: null, rebuild: false, logger });
      // The index even where the planner would rather read and sort the 1202 rows: for the
      // server's new connections, and for the embedded database's one (which reads no
      // per-database settings).
      const planner = ['enable_seqscan', 'enable_bitmapscan', 'enable_sort'];
      for (const setting of planner)
        await db.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET ${setting} = off', current_database()); END $$`);
      await db.close();
      db = await t.target.open();
      for (const setting of planner) await db.query(`SET ${setting} = off`);
      const found = await searchInteractions(db, { text: WORDS, limit: 3, filters: NONE, embedder: createLocalEmbedder(), explain: true });
      assert.equal(found.usesIndex, true, found.plan?.join('\n'));
      assert.deepEqual(
        found.hits.map((h) => h.interaction_id),
        [long, short, other],
      );
      const two = await searchInteractions(db, {
        text: WORDS,
        limit: 2,
        filters: { ...NONE, userId: USER_A, since: new Date('2024-01-01') },
        embedder: createLocalEmbedder(),
        explain: false,
      });
      assert.deepEqual(
        two.hits.map((h) => h.interaction_id),
        [long, short],
      );
    } finally {
      await db.close();
      await t.close();
    }
  });
});

describe('search --user', () => {
  it('shows an interaction only when both the chunk and the interaction are the user’s, with or without other filters', async () => {
    const { db, close } = await migratedDb();
    try {
      const mine = await interaction(db, USER_A, 'a-1', WORDS);
      // A chunk of user B that names user A's interaction.
      await chunks(db, USER_B, mine, WORDS, 1, 0);
      const theirs = await interaction(db, USER_B, 'b-1', `${WORDS} giraffe`);
      await chunks(db, USER_B, theirs, `${WORDS} giraffe`, 1, 0);
      const search = async (filters: Partial<Filters>) =>
        (
          await searchInteractions(db, {
            text: WORDS,
            limit: 5,
            filters: { ...NONE, ...filters },
            embedder: createLocalEmbedder(),
            explain: false,
          })
        ).hits.map((h) => h.interaction_id);
      const since = new Date('2024-01-01');
      for (const filters of [{}, { since }, { provider: 'webform' }] as Partial<Filters>[]) {
        assert.deepEqual(await search({ ...filters, userId: USER_B }), [theirs], JSON.stringify(filters));
        assert.deepEqual(await search({ ...filters, userId: USER_A }), [], JSON.stringify(filters));
        assert.deepEqual(await search(filters), [theirs], JSON.stringify(filters));
      }
    } finally {
      await close();
    }
  });
});

describe('search output', () => {
  it('shows a hit whose interaction was stored at infinity or without a time', async () => {
    const { renderHits } = await import('../src/commands/search.js');
    const hit = { interaction_id: 'i', type: 'note_added', source: null, who: null, subject: 's', snippet: 'x', distance: 0.1 };
    const lines = renderHits([
      { ...hit, occurred_at: Number.POSITIVE_INFINITY },
      { ...hit, occurred_at: Number.NEGATIVE_INFINITY },
      { ...hit, occurred_at: null },
      { ...hit, occurred_at: new Date('2024-06-01T10:00:00Z') },
    ]);
    assert.deepEqual(
      lines.map((l) => l.split(/\s{2,}/)[2]),
      ['infinity', '-infinity', '-', '2024-06-01 10:00'],
    );
  });
});
