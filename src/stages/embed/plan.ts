// Planning an embed batch: read the interactions, chunk their text, and find which chunks this
// provider and model already embedded (content-hash reuse: a re-run sends nothing, an edit
// re-sends only the chunks that changed). Each distinct chunk text still missing is sent once,
// whichever interactions wait on it. Used by real and dry runs alike; writes nothing.
import type { Queryable } from '../../db/connect.js';
import type { VectorColumn } from '../../db/vector-column.js';
import { chunkText, interactionText, type Chunk, type ChunkOptions } from '../../embed/chunk.js';
import type { EmbedInputRejected, Embedder, Vector } from '../../embed/embedder.js';
import * as sql from './sql.js';

/** A distinct chunk text still to embed, and the interactions waiting on it. */
export interface Pending {
  hash: string;
  text: string;
  tokens: number;
  waiting: Item[];
  /** Waiting items not yet written: at 0 the vector is let go (see letGo). */
  unwritten: number;
  vector?: Vector | undefined;
  rejected?: EmbedInputRejected | undefined;
}

/** One interaction of the batch and what it needs. */
export interface Item {
  id: string;
  /** Undefined when the interaction is gone. */
  row: sql.InteractionText | undefined;
  chunks: Chunk[];
  /** The chunks to store (not reusable), by index, with the text they wait on. */
  missing: Map<number, Pending>;
  /** Distinct hashes not yet answered; empty means the item can be written. */
  unresolved: Set<string>;
}

export interface Plan {
  items: Item[];
  pending: Map<string, Pending>;
}

export async function planBatch(
  db: Queryable,
  column: VectorColumn,
  embedder: Embedder,
  ids: string[],
  chunkOptions?: ChunkOptions,
): Promise<Plan> {
  const rows = await sql.readInteractions(db, ids);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const items: Item[] = ids.map((id) => {
    const row = byId.get(id);
    const chunks = row ? chunkText(interactionText(row.subject, row.body_text), chunkOptions) : [];
    return { id, row, chunks, missing: new Map<number, Pending>(), unresolved: new Set<string>() };
  });
  const withChunks = items.filter((i) => i.chunks.length > 0);
  const existing =
    withChunks.length === 0
      ? []
      : await sql.existingChunks(
          db,
          column,
          withChunks.map((i) => i.id),
          embedder.name,
          embedder.model,
        );
  const have = new Set(existing.map((e) => `${e.owner_id}|${e.content_hash}|${e.chunk_index}`));
  const pending = new Map<string, Pending>();
  for (const item of withChunks) {
    for (const c of item.chunks) {
      if (have.has(`${item.id}|${c.hash}|${c.index}`)) continue;
      let p = pending.get(c.hash);
      if (!p) {
        p = { hash: c.hash, text: c.text, tokens: c.tokens, waiting: [], unwritten: 0 };
        pending.set(c.hash, p);
      }
      item.missing.set(c.index, p);
      if (!item.unresolved.has(c.hash)) {
        item.unresolved.add(c.hash);
        p.waiting.push(item);
        p.unwritten++;
      }
    }
  }
  return { items, pending };
}

/**
 * Lets go of the vectors of these items, written or given back, that no other item still waits
 * to write. A batch's plan is held until its last request answers, and with it every vector
 * (~6 KB each, ~6 MB for a batch of 1,000 one-chunk interactions) unless let go as it is written.
 */
export function letGo(items: Item[]): void {
  for (const item of items) {
    for (const p of new Set(item.missing.values())) {
      if (--p.unwritten === 0) p.vector = undefined;
    }
  }
}

/** Whole micro-dollars for the ledger (counts are integers); the command shows dollars. */
export const costMicros = (embedder: Embedder, tokens: number): number => Math.round(tokens * (embedder.usdPerMillionTokens ?? 0));
