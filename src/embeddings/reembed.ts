// `embeddings backfill --reembed`: the rows the copy left without a vector (a legacy value that
// is malformed, of another dimension, non-finite, or none) get one from their interaction's text,
// with the embed stage's own chunking, provider and reuse (plan.ts, send.ts, insertChunks): the
// interaction's chunks are stored as `embed` stores them — so `embed` never sends them again —
// and the row takes the vector of the first one. Rows are leased from the work queue
// (stage swap_reembed) in one short statement, the provider is called with no transaction open,
// and the results, the queue rows and the ledger commit together.
import { setMaxListeners } from 'node:events';
import type { Clock } from '../clock.js';
import type { Db } from '../db/connect.js';
import { retryOnClash } from '../db/retry.js';
import { embeddingColumns, type EmbeddingColumns } from '../db/vector-column.js';
import { writeDeadLetters } from '../dead-letters/sql.js';
import { createLimiter, EXPECTED_DIMENSIONS, refuseDimensions, type Embedder } from '../embed/embedder.js';
import type { Logger } from '../logger.js';
import { costMicros, planBatch } from '../stages/embed/plan.js';
import { countRequests, sendPending, type SendTally } from '../stages/embed/send.js';
import { insertChunks } from '../stages/embed/sql.js';
import { assemble } from '../stages/embed/write.js';
import type { Counts } from '../stages/engine/ledger.js';
import { leaseOwner, withLease } from '../stages/engine/lease.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import { countQueued } from '../stages/engine/queue.js';
import type { RangeOptions } from '../stages/engine/range.js';
import { type BatchInput, type DryBatchInput, runStage, type RunSummary, type Stage } from '../stages/engine/runner.js';
import * as sql from './reembed-sql.js';

type ReembedCount =
  | 'reembedded'
  | 'present'
  | 'no_owner'
  | 'no_text'
  | 'rejected'
  | 'interactions'
  | 'chunks_embedded'
  | 'chunks_reused'
  | 'dead_lettered'
  | 'tokens'
  | 'requests'
  | 'cost_usd_micros';

const REEMBED_COMMAND = 'embeddings_reembed';

/** Rows of a batch and the interactions they belong to. */
function owners(rows: sql.ReembedRow[]): { targets: sql.ReembedRow[]; ownerIds: string[]; noOwner: number } {
  const targets = rows.filter((r) => !r.has_vector && r.owner_type === 'interaction' && r.owner_id !== null);
  const noOwner = rows.filter((r) => !r.has_vector).length - targets.length;
  return { targets, ownerIds: [...new Set(targets.map((r) => r.owner_id!))], noOwner };
}

function reembedStage(cols: EmbeddingColumns, embedder: Embedder, concurrency: number, logger: Logger): Stage<ReembedCount, string | null> {
  const limit = createLimiter(concurrency);

  async function realBatch(input: BatchInput) {
    const lease = {
      stage: 'swap_reembed' as const,
      range: input.range,
      size: input.size,
      owner: leaseOwner('swap_reembed'),
      seconds: 120,
      logger,
    };
    const out = await withLease(input.db, lease, async (l) => {
      const rows = await sql.readRows(input.db, cols, l.ids);
      const { targets, ownerIds, noOwner } = owners(rows);
      const plan = await planBatch(input.db, cols.vector, embedder, ownerIds);
      const controller = new AbortController();
      setMaxListeners(0, controller.signal); // one listener per SDK request, all gone with the batch
      const tally: SendTally = { requests: 0, tokens: 0 };
      await sendPending([...plan.pending.values()], {
        embedder,
        limit,
        concurrency,
        signal: controller.signal,
        onAnswer: (_ready, t) => {
          tally.requests += t.requests;
          tally.tokens += t.tokens;
        },
      });
      const byOwner = new Map(plan.items.map((i) => [i.id, i]));
      return retryOnClash(() =>
        input.db.transaction(async (tx) => {
          const { rows: chunkRows, dead } = assemble(embedder, plan.items);
          await insertChunks(tx, cols.vector, chunkRows, {
            provider: embedder.name,
            model: embedder.model,
            dimensions: EXPECTED_DIMENSIONS,
          });
          await writeDeadLetters(tx, dead);
          // The first chunk answers for the row; an interaction gone or without text has none.
          const fillable = targets.filter((t) => (byOwner.get(t.owner_id!)?.chunks.length ?? 0) > 0);
          const filled = await sql.fillFromFirstChunk(
            tx,
            cols,
            { id: fillable.map((t) => t.id), hash0: fillable.map((t) => byOwner.get(t.owner_id!)!.chunks[0]!.hash) },
            embedder,
          );
          await l.complete(tx, l.ids);
          const gone = targets.filter((t) => !byOwner.get(t.owner_id!)?.row).length;
          const counts: Counts<ReembedCount> = {
            events: l.ids.length,
            reembedded: filled.length,
            present: rows.filter((r) => r.has_vector).length,
            no_owner: noOwner + gone,
            no_text: targets.filter((t) => byOwner.get(t.owner_id!)?.row && byOwner.get(t.owner_id!)!.chunks.length === 0).length,
            rejected: fillable.length - filled.length,
            interactions: ownerIds.length,
            chunks_embedded: chunkRows.ownerId.length,
            chunks_reused: plan.items.reduce((n, i) => n + i.chunks.length - i.missing.size, 0),
            dead_lettered: dead.length,
            tokens: tally.tokens,
            requests: tally.requests,
            cost_usd_micros: costMicros(embedder, tally.tokens),
          };
          await input.record(tx, counts);
          return { taken: l.ids.length, counts };
        }),
      );
    });
    return out ?? { taken: 0, counts: {} };
  }

  async function dryBatch(input: DryBatchInput<string | null>) {
    const rows = await sql.peekReembed(input.db, cols, input.cursor ?? null, input.size);
    if (rows.length === 0) return { taken: 0, counts: {}, cursor: input.cursor ?? null };
    const { ownerIds, noOwner } = owners(rows);
    const plan = await planBatch(input.db, cols.vector, embedder, ownerIds);
    const pending = [...plan.pending.values()];
    const tokens = pending.reduce((n, p) => n + p.tokens, 0);
    const counts: Counts<ReembedCount> = {
      events: rows.length,
      no_owner: noOwner + plan.items.filter((i) => !i.row).length,
      no_text: plan.items.filter((i) => i.row && i.chunks.length === 0).length,
      interactions: ownerIds.length,
      chunks_embedded: pending.length,
      chunks_reused: plan.items.reduce((n, i) => n + i.chunks.length - i.missing.size, 0),
      tokens,
      requests: countRequests(embedder, pending, concurrency),
      cost_usd_micros: costMicros(embedder, tokens),
    };
    return { taken: rows.length, counts, cursor: rows.at(-1)!.id };
  }

  return {
    name: REEMBED_COMMAND,
    countPending: (db, range) => (range.dryRun ? sql.countWithoutVector(db, cols) : countQueued(db, ['swap_reembed'], range)),
    batch: realBatch,
    dryBatch,
  };
}

export interface ReembedOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  range: RangeOptions;
  embedder: Embedder;
  concurrency: number;
  workers?: number | undefined;
  bar?: ProgressBar | undefined;
  signal?: AbortSignal | undefined;
}

export interface ReembedResult {
  queued: number;
  summary: RunSummary;
}

/** Queues the rows still without a vector (not in a dry run), then re-embeds them. */
export async function runReembed(o: ReembedOptions): Promise<ReembedResult> {
  if (o.embedder.dimensions !== EXPECTED_DIMENSIONS) throw refuseDimensions(o.embedder.model, o.embedder.dimensions, 'makes');
  const cols = await embeddingColumns(o.db);
  const queued = o.range.dryRun ? 0 : await sql.enqueueReembed(o.db, cols);
  const summary = await runStage(reembedStage(cols, o.embedder, o.concurrency, o.logger), {
    db: o.db,
    clock: o.clock,
    logger: o.logger,
    range: o.range,
    workers: o.workers,
    bar: o.bar,
    signal: o.signal,
    args: { embedder: o.embedder.name, model: o.embedder.model, concurrency: o.concurrency },
  });
  return { queued, summary };
}
