// Writing what a batch's answers completed, in one short transaction: new chunk rows, stale
// chunks deleted, rejected inputs dead-lettered, the queue rows completed, the ledger moved.
// An interaction whose text changed while its chunks were out is not completed but given back,
// to be embedded again with its new text.
import type { Db, Queryable } from '../../db/connect.js';
import { relaxCommitDurability } from '../../db/session.js';
import type { VectorColumn } from '../../db/vector-column.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import { resolveDeadLetters, writeDeadLetters } from '../../dead-letters/sql.js';
import { EXPECTED_DIMENSIONS, type Embedder } from '../../embed/embedder.js';
import { retryOnClash } from '../../db/retry.js';
import type { Counts } from '../engine/ledger.js';
import type { Lease } from '../engine/lease.js';
import { costMicros, type Item } from './plan.js';
import type { SendTally } from './send.js';
import * as sql from './sql.js';

export type EmbedCount =
  | 'chunks'
  | 'reused'
  | 'embedded'
  | 'deleted'
  | 'dead_lettered'
  | 'recurring'
  | 'resolved'
  | 'empty'
  | 'missing'
  | 'requeued'
  | 'tokens'
  | 'requests'
  | 'cost_usd_micros'
  | 'to_embed'
  // embed --via batch
  | 'submitted'
  | 'batches_submitted'
  | 'lines'
  | 'batches_collected'
  | 'batches_resubmitted'
  | 'batches_failed'
  | 'released';

interface Assembled {
  rows: sql.ChunkColumns;
  dead: DeadLetterOf<'embed'>[];
  /** Every current chunk key of the items: what is not in it is stale. */
  keep: { ownerId: string[]; hash: string[]; index: number[] };
}

/** The rows a write stores: new vectors, dead letters, and every current chunk key (kept). */
export function assemble(embedder: Embedder, complete: Item[]): Assembled {
  const rows: sql.ChunkColumns = { userId: [], ownerId: [], hash: [], index: [], tokens: [], vectors: [] };
  const dead: DeadLetterOf<'embed'>[] = [];
  const keep = { ownerId: [] as string[], hash: [] as string[], index: [] as number[] };
  for (const item of complete) {
    for (const c of item.chunks) {
      keep.ownerId.push(item.id);
      keep.hash.push(c.hash);
      keep.index.push(c.index);
      const p = item.missing.get(c.index);
      if (!p || !item.row) continue;
      if (p.vector) {
        rows.userId.push(item.row.user_id);
        rows.ownerId.push(item.id);
        rows.hash.push(c.hash);
        rows.index.push(c.index);
        rows.tokens.push(c.tokens);
        rows.vectors.push(p.vector);
      } else if (p.rejected) {
        const e = p.rejected;
        dead.push({
          stage: 'embed',
          rawEventId: item.row.raw_event_id,
          userId: item.row.user_id,
          provider: item.row.source,
          error: `${embedder.name} ${embedder.model} rejected chunk ${c.index} of interaction ${item.id}: ${e.message}`,
          context: {
            interaction_id: item.id,
            chunk_index: c.index,
            content_hash: c.hash,
            tokens: c.tokens,
            embedder: embedder.name,
            model: embedder.model,
            provider_error: { message: e.message, ...e.providerError },
          },
        });
      }
    }
  }
  return { rows, dead, keep };
}

export interface WriteInput {
  db: Db;
  column: VectorColumn;
  embedder: Embedder;
  lease: Lease;
  record(tx: Queryable, counts: Counts): Promise<void>;
  runId: string | null;
  /** What the tokens cost relative to the direct price (the Batch API bills half). */
  priceFactor?: number | undefined;
  /** More of the caller's work in the same transaction (a batch marked done with its vectors). */
  within?: ((tx: Queryable) => Promise<void>) | undefined;
  /** Counts of the caller's, recorded with these. */
  extra?: Counts<EmbedCount> | undefined;
}

/** Stores the items whose vectors are all in. Returns the counts it recorded. */
export async function writeItems(w: WriteInput, items: Item[], tally: SendTally): Promise<Counts<EmbedCount>> {
  return retryOnClash(() =>
    w.db.transaction(async (tx) => {
      await relaxCommitDurability(tx);
      const digests = await sql.lockTextDigests(
        tx,
        items.filter((i) => i.row).map((i) => i.id),
      );
      const complete: Item[] = [];
      const changed: Item[] = [];
      for (const item of items) {
        const now = digests.get(item.id);
        if (item.row && now !== undefined && now !== item.row.text_digest) changed.push(item);
        else complete.push(item.row && now === undefined ? { ...item, row: undefined, chunks: [], missing: new Map() } : item);
      }
      const { rows, dead, keep } = assemble(w.embedder, complete);
      await sql.insertChunks(tx, w.column, rows, { provider: w.embedder.name, model: w.embedder.model, dimensions: EXPECTED_DIMENSIONS });
      const deleted =
        complete.length === 0
          ? 0
          : await sql.deleteStaleChunks(
              tx,
              complete.map((i) => i.id),
              keep,
            );
      const letters = await writeDeadLetters(tx, dead);
      const resolved = await resolveDeadLetters(tx, {
        stage: 'embed',
        itemIds: complete.map((i) => i.id),
        stillFailing: letters.keys,
        runId: w.runId,
        reason: 'embed succeeded',
      });
      await w.lease.complete(
        tx,
        complete.map((i) => i.id),
      );
      // Changed while we worked: back in the queue at once, to be embedded with the new text.
      await w.lease.release(
        tx,
        changed.map((i) => i.id),
      );
      const counts: Counts<EmbedCount> = {
        events: complete.length,
        chunks: complete.reduce((n, i) => n + i.chunks.length, 0),
        reused: complete.reduce((n, i) => n + (i.chunks.length - i.missing.size), 0),
        embedded: rows.ownerId.length,
        deleted,
        dead_lettered: dead.length,
        ...(letters.recurring ? { recurring: letters.recurring } : {}),
        ...(resolved ? { resolved } : {}),
        empty: complete.filter((i) => i.row && i.chunks.length === 0).length,
        missing: complete.filter((i) => !i.row).length,
        requeued: changed.length,
        tokens: tally.tokens,
        requests: tally.requests,
        cost_usd_micros: Math.round(costMicros(w.embedder, tally.tokens) * (w.priceFactor ?? 1)),
        ...w.extra,
      };
      await w.within?.(tx);
      await w.record(tx, counts);
      return counts;
    }),
  );
}
