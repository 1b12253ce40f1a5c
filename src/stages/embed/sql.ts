// The embed stage's SQL. Reads and writes are one set-based statement per batch (or per write
// of a batch); values travel as arrays or as one JSON document, so the parameter count stays
// constant whatever the batch size.
import os from 'node:os';
import type { Queryable } from '../../db/connect.js';
import type { VectorColumn } from '../../db/vector-column.js';
import type { Vector } from '../../embed/embedder.js';

/** The interaction's text as the stage read it, fingerprinted the same way in both transactions. */
const TEXT_DIGEST = `md5(coalesce(i.subject, '') || chr(1) || coalesce(i.body_text, ''))`;

export interface InteractionText {
  id: string;
  user_id: string;
  subject: string | null;
  body_text: string | null;
  source: string | null;
  raw_event_id: string | null;
  text_digest: string;
}

export async function readInteractions(db: Queryable, ids: string[]): Promise<InteractionText[]> {
  const { rows } = await db.query<InteractionText>(
    `
-- A note may name another user's raw event: its dead letters do not point there. A raw event
-- that is gone (archived) is still named: the dead letter keeps its trace.
SELECT i.id, i.user_id, i.subject, i.body_text, i.source,
       CASE WHEN EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = i.raw_event_id AND r.user_id <> i.user_id)
            THEN NULL ELSE i.raw_event_id END AS raw_event_id,
       ${TEXT_DIGEST} AS text_digest
FROM public.interactions i
WHERE i.id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

/**
 * Vectors as one binary `vector[]` parameter (PostgreSQL's array wire format around pgvector's
 * vector_recv format: int16 dim, int16 0, float4s, all big-endian). node-postgres sends a Buffer
 * parameter in binary. Text would be ~20 bytes per float to build, ship and parse; this is 4,
 * and the values stay exactly the float4s the provider sent.
 */
function vectorArrayParam(vectors: Vector[], typeOid: number): Buffer {
  const dims = vectors[0]?.length ?? 0;
  const element = 4 + dims * 4;
  const buf = Buffer.allocUnsafe(20 + vectors.length * (4 + element));
  let o = 0;
  o = buf.writeInt32BE(1, o); // one dimension
  o = buf.writeInt32BE(0, o); // no nulls
  o = buf.writeUInt32BE(typeOid, o);
  o = buf.writeInt32BE(vectors.length, o);
  o = buf.writeInt32BE(1, o); // lower bound
  for (const v of vectors) {
    if (v.length !== dims) throw new Error(`vectors of different widths in one write (${v.length} vs ${dims})`);
    o = buf.writeInt32BE(element, o);
    o = buf.writeInt16BE(dims, o);
    o = buf.writeInt16BE(0, o);
    // float4s in native order, copied in and swapped in place: no per-value JavaScript call.
    const floats = v instanceof Float32Array ? v : Float32Array.from(v);
    buf.set(new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength), o);
    if (os.endianness() === 'LE') buf.subarray(o, o + floats.byteLength).swap32();
    o += floats.byteLength;
  }
  return buf;
}

export interface ExistingChunk {
  owner_id: string;
  content_hash: string;
  chunk_index: number;
}

/**
 * The chunks already embedded by this provider and model for these interactions, by key. A chunk
 * of another model (or with no vector) is not reusable: it is embedded again and replaced.
 */
export async function existingChunks(
  db: Queryable,
  column: VectorColumn,
  ownerIds: string[],
  provider: string,
  model: string,
): Promise<ExistingChunk[]> {
  const { rows } = await db.query<ExistingChunk>(
    `
SELECT e.owner_id, e.content_hash, e.chunk_index
FROM public.embeddings e
JOIN public.interactions i ON i.id = e.owner_id AND i.user_id = e.user_id
WHERE e.owner_type = 'interaction'
  AND e.owner_id = ANY($1::uuid[])
  AND e.content_hash IS NOT NULL
  AND e.${column.name} IS NOT NULL
  AND e.meta ->> 'provider' = $2
  AND e.meta ->> 'model' = $3`,
    [ownerIds, provider, model],
  );
  return rows;
}

/**
 * Locks the interactions about to be completed (FOR SHARE: an update waits for our commit) and
 * returns their current text digests. An interaction whose text changed since it was read is
 * not completed: its queue row would otherwise go, and the new text never be embedded (the
 * update's trigger found that row still queued and added nothing).
 */
export async function lockTextDigests(tx: Queryable, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ id: string; text_digest: string }>(
    `
SELECT i.id, ${TEXT_DIGEST} AS text_digest
FROM public.interactions i
WHERE i.id = ANY($1::uuid[])
ORDER BY i.id
FOR SHARE`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.text_digest]));
}

/** New chunk rows, as parallel columns. */
export interface ChunkColumns {
  userId: string[];
  ownerId: string[];
  hash: string[];
  index: number[];
  tokens: number[];
  vectors: Vector[];
}

/**
 * Inserts new chunk rows with meta {provider, model, dimensions, tokens}. A row already there
 * with the same key is left alone when it holds this model's vector (another worker got there
 * first) and replaced when another model made it or it has no vector (re-embedding with a new
 * model after a --reprocess).
 */
export async function insertChunks(
  tx: Queryable,
  column: VectorColumn,
  c: ChunkColumns,
  meta: { provider: string; model: string; dimensions: number },
): Promise<number> {
  if (c.ownerId.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
INSERT INTO public.embeddings AS e (user_id, owner_type, owner_id, content_hash, chunk_index, ${column.name}, meta)
SELECT x.user_id, 'interaction', x.owner_id, x.content_hash, x.chunk_index, x.embedding,
       jsonb_build_object('provider', $7::text, 'model', $8::text, 'dimensions', $9::int, 'tokens', x.tokens)
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::integer[], $5::integer[], $6::${column.type}[])
  AS x(user_id, owner_id, content_hash, chunk_index, tokens, embedding)
ON CONFLICT (user_id, owner_type, owner_id, content_hash, chunk_index) DO UPDATE
SET ${column.name} = excluded.${column.name}, meta = excluded.meta, created_at = now()
WHERE e.${column.name} IS NULL
   OR (e.meta ->> 'provider', e.meta ->> 'model') IS DISTINCT FROM ($7::text, $8::text)`,
    [
      c.userId,
      c.ownerId,
      c.hash,
      c.index,
      c.tokens,
      vectorArrayParam(c.vectors, column.typeOid),
      meta.provider,
      meta.model,
      meta.dimensions,
    ],
  );
  return rowCount ?? 0;
}

/**
 * Deletes the chunk rows of these interactions that are not in their current chunk set (given
 * as parallel arrays): what is left of an older text. Legacy rows (no content hash) are not ours
 * to delete; the column swap (SPEC §10) deals with them.
 */
export async function deleteStaleChunks(
  tx: Queryable,
  ownerIds: string[],
  keep: { ownerId: string[]; hash: string[]; index: number[] },
): Promise<number> {
  const { rowCount } = await tx.query(
    `
DELETE FROM public.embeddings e
WHERE e.owner_type = 'interaction'
  AND e.owner_id = ANY($1::uuid[])
  AND e.content_hash IS NOT NULL
  -- Only the interaction's own user's chunks: every write by id also matches user_id.
  AND EXISTS (SELECT 1 FROM public.interactions i WHERE i.id = e.owner_id AND i.user_id = e.user_id)
  AND NOT EXISTS (
    SELECT 1
    FROM unnest($2::uuid[], $3::text[], $4::integer[]) AS k(owner_id, content_hash, chunk_index)
    WHERE k.owner_id = e.owner_id AND k.content_hash = e.content_hash AND k.chunk_index = e.chunk_index)`,
    [ownerIds, keep.ownerId, keep.hash, keep.index],
  );
  return rowCount ?? 0;
}
