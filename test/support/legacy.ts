// Legacy embedding rows for the column swap's tests: interactions with text, and embeddings rows
// whose `embedding` text has the shapes production has (src/generate/legacy-embeddings.ts), the
// way an older application wrote them: no content hash, chunk 0, the vector column empty.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../src/db/connect.js';
import type { LegacyValue } from '../../src/generate/legacy-embeddings.js';
import { USER_A } from './events.js';

export interface SeededRow extends LegacyValue {
  id: string;
  ownerId: string;
}

/** One interaction per value (with text, so --reembed has something to send), then its legacy row. */
export async function seedLegacy(db: Queryable, values: Iterable<LegacyValue>, userId = USER_A, chunk = 500): Promise<SeededRow[]> {
  const out: SeededRow[] = [];
  let batch: LegacyValue[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const ids = batch.map(() => randomUUID());
    const owners = batch.map(() => randomUUID());
    await db.query(
      `
INSERT INTO public.interactions (id, user_id, source, source_id, type, subject, body_text, occurred_at, raw_event_id)
SELECT x.id, $1, 'webform', x.id::text, 'form_submitted', 'Legacy ' || x.n, 'About the renewal of contract ' || x.n || ': pricing, budget and next steps.',
       timestamptz '2024-01-01' + make_interval(mins => x.n::int), gen_random_uuid()
FROM unnest($2::uuid[]) WITH ORDINALITY AS x(id, n)`,
      [userId, owners],
    );
    await db.query(
      `
INSERT INTO public.embeddings (id, user_id, owner_type, owner_id, embedding, meta)
SELECT x.id, $1, 'interaction', x.owner_id, x.embedding, '{"model": "text-embedding-ada-002"}'
FROM unnest($2::uuid[], $3::uuid[], $4::text[]) AS x(id, owner_id, embedding)`,
      [userId, ids, owners, batch.map((v) => v.text)],
    );
    for (const [i, v] of batch.entries()) out.push({ ...v, id: ids[i]!, ownerId: owners[i]! });
    batch = [];
  };
  for (const v of values) {
    batch.push(v);
    if (batch.length >= chunk) await flush();
  }
  await flush();
  return out;
}

/** Rows by kind, as the generator made them. */
export function kindCounts(rows: LegacyValue[]): Record<LegacyValue['kind'], number> {
  const counts: Record<LegacyValue['kind'], number> = { valid: 0, wrong_dimension: 0, malformed: 0, non_finite: 0, null: 0 };
  for (const r of rows) counts[r.kind]++;
  return counts;
}

/**
 * The whole table as one digest, by column role rather than name, so it compares across the
 * swap: ids, owners, the legacy text and the vector of every row.
 */
export async function tableChecksum(db: Queryable): Promise<string> {
  const { rows: cols } = await db.query<{ attname: string; typname: string }>(`
SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = 'public.embeddings'::regclass AND a.attname IN ('embedding', 'embedding_v', 'embedding_legacy')`);
  const vector = cols.find((c) => c.typname === 'vector')!.attname;
  const legacy = cols.find((c) => c.typname === 'text')!.attname;
  const { rows } = await db.query<{ digest: string; n: number }>(`
SELECT md5(string_agg(concat_ws('|', id, user_id, owner_type, owner_id, content_hash, chunk_index, md5(${legacy}), md5(${vector}::text), meta::text), E'\\n' ORDER BY id)) AS digest,
       count(*)::int AS n
FROM public.embeddings`);
  return `${rows[0]!.n}:${rows[0]!.digest}`;
}
