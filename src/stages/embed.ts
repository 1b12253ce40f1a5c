// embed: interactions → chunk embeddings (SPEC §7). A batch leases queued interactions in one
// short statement, reads and chunks them, and looks up which chunks this model has already
// embedded (content-hash reuse: a re-run sends nothing, an edit re-sends only the chunks that
// changed). The missing chunks, each distinct text once, are packed into requests and sent
// with bounded concurrency while NO transaction is open. As interactions get all their vectors,
// a serial writer stores them in short transactions (new rows, stale rows deleted, rejected
// inputs dead-lettered, queue rows completed, ledger counts) — so writing overlaps the requests
// still in flight. A fatal provider error releases the leases that were not completed.
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../db/connect.js';
import { chunkText, interactionText, type Chunk, type ChunkOptions } from '../embed/chunk.js';
import { createLimiter, embedIsolating, EmbedProviderError, EXPECTED_DIMENSIONS, packRequests, refuseDimensions, type EmbedInputRejected, type Embedder } from '../embed/embedder.js';
import { cleanJson, cleanText } from '../text.js';
import { DatabaseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Counts } from './engine/ledger.js';
import { completeLeased, countQueued, leaseQueued, peekQueued, releaseLeased } from './engine/queue.js';
import type { BatchInput, BatchOutput, Stage } from './engine/runner.js';
import * as sql from './embed-sql.js';

export interface EmbedStageOptions {
  embedder: Embedder;
  /** Provider requests in flight at once, across every batch of this stage. */
  concurrency: number;
  logger: Logger;
  /** How long leased interactions stay ours (default 15 min): longer than any batch's requests. */
  leaseSeconds?: number;
  chunk?: ChunkOptions;
}

/** A distinct chunk text still to embed, and the interactions waiting on it. */
interface Pending {
  hash: string;
  text: string;
  tokens: number;
  waiting: Item[];
  vector?: number[];
  rejected?: EmbedInputRejected;
}

/** One leased interaction and what it needs. */
interface Item {
  id: string;
  row: sql.InteractionText | undefined;
  chunks: Chunk[];
  /** The chunks to store (not reusable), by index, with the text they wait on. */
  missing: Map<number, Pending>;
  /** Distinct hashes not yet answered. */
  unresolved: Set<string>;
}

interface Plan {
  items: Item[];
  pending: Map<string, Pending>;
}

/** Whole micro-dollars for the ledger (counts are integers); the command shows dollars. */
const costMicros = (embedder: Embedder, tokens: number) => Math.round(tokens * (embedder.usdPerMillionTokens ?? 0));

/** The rows a write stores: new vectors, dead letters, and every current chunk key (kept). */
function assemble(embedder: Embedder, complete: Item[]): { rows: sql.ChunkColumns; dead: sql.DeadLetterRow[]; keep: { ownerId: string[]; hash: string[]; index: number[] } } {
  const rows: sql.ChunkColumns = { userId: [], ownerId: [], hash: [], index: [], tokens: [], vectors: [] };
  const dead: sql.DeadLetterRow[] = [];
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
          raw_event_id: item.row.raw_event_id,
          user_id: item.row.user_id,
          provider: item.row.source,
          error: cleanText(`${embedder.name} ${embedder.model} rejected chunk ${c.index} of interaction ${item.id}: ${e.message}`).slice(0, 2000),
          context: { interaction_id: item.id, chunk_index: c.index, content_hash: c.hash, tokens: c.tokens, model: embedder.model, provider_error: { message: e.message, ...e.providerError } },
        });
      }
    }
  }
  return { rows, dead, keep };
}

/**
 * A write locks its interactions in id order; a concurrent writer of the same rows (normalize
 * re-running) may lock them in another order, and PostgreSQL then aborts one of the two. That
 * transaction is simply run again rather than failing the run.
 */
async function retryingDeadlocks<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const state = err instanceof DatabaseError ? err.sqlState : undefined;
      if (attempt >= 3 || (state !== '40P01' && state !== '40001')) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
    }
  }
}

export function createEmbedStage(options: EmbedStageOptions): Stage {
  const { embedder, logger } = options;
  if (embedder.dimensions !== EXPECTED_DIMENSIONS) throw refuseDimensions(embedder.model, embedder.dimensions, 'makes');
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive whole number');
  const limit = createLimiter(options.concurrency);
  const leaseSeconds = options.leaseSeconds ?? 900;
  const worker = `${os.hostname()}:${process.pid}:embed:${randomUUID().slice(0, 8)}`;
  const columns = new WeakMap<Db, Promise<sql.VectorColumn>>();
  const columnOf = (db: Db) => {
    let c = columns.get(db);
    if (!c) columns.set(db, (c = sql.vectorColumn(db)));
    return c;
  };
  const limits = { maxInputs: embedder.maxInputsPerRequest, maxTokens: embedder.maxTokensPerRequest };
  // Until the provider has answered once, batches lease only what fills the request slots: the
  // first requests go out sooner, and a provider that fails at once (wrong model, no quota)
  // holds few leases. Then batches take their full size.
  let answered = false;
  const rampSize = options.concurrency * embedder.maxInputsPerRequest;

  /** Reads, chunks and checks reuse for a set of interactions (real and dry runs alike). */
  async function plan(db: Db, ids: string[]): Promise<Plan> {
    const rows = await sql.readInteractions(db, ids);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const items: Item[] = ids.map((id) => {
      const row = byId.get(id);
      const chunks = row ? chunkText(interactionText(row.subject, row.body_text), options.chunk) : [];
      return { id, row, chunks, missing: new Map<number, Pending>(), unresolved: new Set<string>() };
    });
    const withChunks = items.filter((i) => i.chunks.length > 0);
    const existing = withChunks.length === 0 ? [] : await sql.existingChunks(db, await columnOf(db), withChunks.map((i) => i.id), embedder.name, embedder.model);
    const have = new Set(existing.map((e) => `${e.owner_id}|${e.content_hash}|${e.chunk_index}`));
    const pending = new Map<string, Pending>();
    for (const item of withChunks) {
      for (const c of item.chunks) {
        if (have.has(`${item.id}|${c.hash}|${c.index}`)) continue;
        let p = pending.get(c.hash);
        if (!p) pending.set(c.hash, (p = { hash: c.hash, text: c.text, tokens: c.tokens, waiting: [] }));
        item.missing.set(c.index, p);
        if (!item.unresolved.has(c.hash)) {
          item.unresolved.add(c.hash);
          p.waiting.push(item);
        }
      }
    }
    return { items, pending };
  }

  async function dryBatch(input: BatchInput): Promise<BatchOutput> {
    const queued = await peekQueued(input.db, ['embed'], input.range, input.size, input.cursor as string | undefined);
    if (queued.length === 0) return { taken: 0, counts: {} };
    const { items, pending } = await plan(input.db, queued.map((q) => q.item_id));
    const chunks = items.reduce((n, i) => n + i.chunks.length, 0);
    const toEmbed = items.reduce((n, i) => n + i.missing.size, 0);
    const tokens = [...pending.values()].reduce((n, p) => n + p.tokens, 0);
    const counts: Counts = {
      events: queued.length,
      chunks,
      reused: chunks - toEmbed,
      to_embed: toEmbed,
      empty: items.filter((i) => i.row && i.chunks.length === 0).length,
      tokens,
      requests: packRequests([...pending.values()], limits, options.concurrency).length,
      cost_usd_micros: costMicros(embedder, tokens),
    };
    const last = queued[queued.length - 1]!;
    return { taken: queued.length, counts, cursor: `${last.stage}:${last.item_id}` };
  }

  /** Stores the items whose vectors are all in: one short transaction. */
  async function write(input: BatchInput, items: Item[], provider: { requests: number; tokens: number }): Promise<Counts> {
    const column = await columnOf(input.db);
    return retryingDeadlocks(() => input.db.transaction(async (tx: Queryable) => {
      await sql.relaxCommitDurability(tx);
      const digests = await sql.lockTextDigests(tx, items.filter((i) => i.row).map((i) => i.id));
      const complete: Item[] = [];
      const changed: Item[] = [];
      for (const item of items) {
        const now = digests.get(item.id);
        if (item.row && now !== undefined && now !== item.row.text_digest) changed.push(item);
        else complete.push(item.row && now === undefined ? { ...item, row: undefined, chunks: [], missing: new Map() } : item);
      }
      const { rows, dead, keep } = assemble(embedder, complete);
      await sql.insertChunks(tx, column, rows, { provider: embedder.name, model: embedder.model, dimensions: EXPECTED_DIMENSIONS });
      const deleted = complete.length === 0 ? 0 : await sql.deleteStaleChunks(tx, complete.map((i) => i.id), keep);
      if (dead.length > 0) await sql.insertDeadLetters(tx, JSON.stringify(cleanJson(dead)));
      await completeLeased(tx, 'embed', complete.map((i) => i.id), worker);
      // Changed while we worked: back in the queue at once, to be embedded with the new text.
      await releaseLeased(tx, 'embed', changed.map((i) => i.id), worker);
      const chunks = complete.reduce((n, i) => n + i.chunks.length, 0);
      const counts: Counts = {
        events: complete.length,
        chunks,
        reused: complete.reduce((n, i) => n + (i.chunks.length - i.missing.size), 0),
        embedded: rows.ownerId.length,
        deleted,
        dead_lettered: dead.length,
        empty: complete.filter((i) => i.row && i.chunks.length === 0).length,
        missing: complete.filter((i) => !i.row).length,
        requeued: changed.length,
        tokens: provider.tokens,
        requests: provider.requests,
        cost_usd_micros: costMicros(embedder, provider.tokens),
      };
      await input.record(tx, counts);
      return counts;
    }));
  }

  async function realBatch(input: BatchInput): Promise<BatchOutput> {
    const size = answered ? input.size : Math.min(input.size, rampSize);
    const leased = await leaseQueued(input.db, 'embed', input.range, size, worker, leaseSeconds);
    if (leased.length === 0) return { taken: 0, counts: {} };
    const ids = leased.map((q) => q.item_id);
    const total: Counts = {};
    const controller = new AbortController();
    // The SDK adds an abort listener per request and never removes it; a batch makes many
    // requests on this one signal, so lift Node's leak warning (they all go with the batch).
    setMaxListeners(0, controller.signal);
    const unrecorded = { requests: 0, tokens: 0 };
    let failure: unknown;
    let ready: Item[] = [];
    let writing: Promise<void> | undefined;

    // One write at a time, each taking every item that became ready meanwhile.
    const kick = () => {
      if (writing || ready.length === 0 || failure !== undefined) return;
      writing = (async () => {
        while (ready.length > 0 && failure === undefined) {
          const items = ready;
          ready = [];
          const provider = { ...unrecorded };
          unrecorded.requests = 0;
          unrecorded.tokens = 0;
          try {
            const counts = await write(input, items, provider);
            for (const [k, v] of Object.entries(counts)) total[k] = (total[k] ?? 0) + v;
          } catch (err) {
            failure ??= err;
            controller.abort(err);
          }
        }
      })().finally(() => {
        writing = undefined;
        kick();
      });
    };

    try {
      const { items, pending } = await plan(input.db, ids);
      ready = items.filter((i) => i.unresolved.size === 0);
      kick();
      const send = (texts: string[]) =>
        limit(async () => {
          if (controller.signal.aborted) throw controller.signal.reason;
          return embedder.embed(texts, controller.signal);
        });
      const requests = packRequests([...pending.values()], limits, options.concurrency);
      await Promise.all(
        requests.map(async (request) => {
          const result = await embedIsolating(send, request.map((p) => p.text));
          // Every input of a sizeable request refused one by one is the setup (a model whose input
          // limit is below our chunks, a filter on everything), not bad data: stop, do not
          // dead-letter the whole queue.
          if (request.length >= 4 && result.rejected.size === request.length) {
            const first = result.rejected.values().next().value;
            throw new EmbedProviderError(`${embedder.name} ${embedder.model} rejected all ${request.length} inputs of a request one by one (${first?.message ?? 'no message'}); nothing was dead-lettered`, {
              hint: 'check the model and its input limit (chunks are up to 512 cl100k tokens)',
            });
          }
          answered = true;
          unrecorded.requests += result.requests;
          // What the provider says it counted; when it does not say, our cl100k count of the inputs.
          unrecorded.tokens += result.tokens > 0 ? result.tokens : request.reduce((n, p, k) => n + (result.vectors[k] ? p.tokens : 0), 0);
          request.forEach((p, k) => {
            p.vector = result.vectors[k];
            p.rejected = result.rejected.get(k);
            for (const item of p.waiting) {
              item.unresolved.delete(p.hash);
              if (item.unresolved.size === 0) ready.push(item);
            }
          });
          kick();
        }),
      ).catch((err: unknown) => {
        failure ??= err;
        controller.abort(err);
      });
      while (writing) await writing;
      if (failure !== undefined) throw failure;
      logger.debug(`embed: ${ids.length} interactions, ${requests.length} requests`);
      return { taken: leased.length, counts: total };
    } catch (err) {
      controller.abort(err);
      while (writing) await writing;
      // Completed rows are gone from the queue; the rest go back for the next run.
      await releaseLeased(input.db, 'embed', ids, worker).catch((e: unknown) => logger.warn(`could not release leases: ${String(e)}`));
      throw err;
    }
  }

  return {
    name: 'embed',
    countPending: (db, range) => countQueued(db, ['embed'], range),
    batch: (input) => (input.range.dryRun ? dryBatch(input) : realBatch(input)),
  };
}
