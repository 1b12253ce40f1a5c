// `search` over chunked interactions: --user shows an interaction only when both the chunk and
// the interaction are the user's, with or without other filters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pgvector from 'pgvector';
import type { Db } from '../src/db/connect.js';
import { createLocalEmbedder, localVector } from '../src/embed/local.js';
import { searchInteractions } from '../src/embeddings/search.js';
import { migratedDb } from './support/db.js';
import { USER_A, USER_B } from './support/events.js';

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
