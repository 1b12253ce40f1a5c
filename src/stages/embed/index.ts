// embed: interactions → chunk embeddings (SPEC §7). A batch leases queued interactions, plans
// them (plan.ts: chunks, reuse), sends the missing chunks with no transaction open (send.ts),
// and as interactions get all their vectors a serial writer stores them in short transactions
// (write.ts) — so writing overlaps the requests still in flight. A fatal provider error stops
// the batch; the lease gives back every interaction not yet written.
import { setMaxListeners } from 'node:events';
import { vectorColumnPerDb } from '../../db/vector-column.js';
import type { ChunkOptions } from '../../embed/chunk.js';
import { createLimiter, EXPECTED_DIMENSIONS, refuseDimensions, type Embedder } from '../../embed/embedder.js';
import type { Logger } from '../../logger.js';
import type { Counts } from '../engine/ledger.js';
import { leaseOwner, reclaimDeadLeases, withLease, type Lease } from '../engine/lease.js';
import { countQueued, peekCursor, peekQueued } from '../engine/queue.js';
import type { BatchInput, BatchOutput, DryBatchInput, DryBatchOutput, Stage } from '../engine/runner.js';
import { costMicros, letGo, planBatch, type Item } from './plan.js';
import { WriteBacklog } from './backlog.js';
import { countRequests, sendPending, type SendTally } from './send.js';
import { writeItems, type EmbedCount } from './write.js';

export type { EmbedCount } from './write.js';

export interface EmbedStageOptions {
  embedder: Embedder;
  /** Provider requests in flight at once, across every batch of this stage. */
  concurrency: number;
  logger: Logger;
  /** How long a lease lasts without renewal (default 120 s); it is renewed while the batch runs. */
  leaseSeconds?: number;
  chunk?: ChunkOptions;
  /** Answered vectors that may wait for their write (default: ~4 MB of them). */
  backlog?: WriteBacklog;
}

/**
 * What a batch holds throughout: its chunks' text. Vectors are not counted: each request's are
 * written as it answers (the serial writer), so a batch holds a few requests' worth at a time.
 */
function heldBytes(items: Item[]): number {
  let bytes = 0;
  for (const i of items) for (const c of i.chunks) bytes += c.text.length;
  return bytes;
}

/** The vectors these items store (their chunks not reused): what the backlog counts, what a dry run sends. */
function vectorsOf(items: Item[]): number {
  let n = 0;
  for (const i of items) n += i.missing.size;
  return n;
}

function addCounts(into: Counts, from: Counts): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + (v ?? 0);
}

export function createEmbedStage(options: EmbedStageOptions): Stage<EmbedCount, string | undefined> {
  const { embedder, logger } = options;
  if (embedder.dimensions !== EXPECTED_DIMENSIONS) throw refuseDimensions(embedder.model, embedder.dimensions, 'makes');
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1)
    throw new RangeError('concurrency must be a positive whole number');
  const limit = createLimiter(options.concurrency);
  const backlog = options.backlog ?? WriteBacklog.standard();
  const leaseSeconds = options.leaseSeconds ?? 120;
  const columnOf = vectorColumnPerDb();
  // Until the provider has answered once, batches lease only what fills the request slots: the
  // first requests go out sooner, and a provider that fails at once (wrong model, no quota)
  // holds few leases. Then batches take their full size.
  let answered = false;
  const rampSize = options.concurrency * embedder.maxInputsPerRequest;

  async function leased(input: BatchInput, lease: Lease): Promise<BatchOutput<EmbedCount>> {
    const column = await columnOf(input.db);
    const total: Counts = {};
    const controller = new AbortController();
    // The SDK adds an abort listener per request and never removes it; a batch makes many
    // requests on this one signal, so lift Node's leak warning (they all go with the batch).
    setMaxListeners(0, controller.signal);
    const unrecorded: SendTally = { requests: 0, tokens: 0 };
    let failure: unknown;
    let ready: Item[] = [];
    let writing: Promise<void> | undefined;
    // Vectors of this batch's items answered and not yet written: counted in the stage's backlog.
    let held = 0;
    let over = false;
    const release = (items: Item[]) => {
      const n = vectorsOf(items);
      held -= n;
      backlog.remove(n);
    };
    const fail = (err: unknown) => {
      failure ??= err;
      controller.abort(err);
    };
    // A stop (signal, time budget) aborts the requests in flight; what is complete is still
    // written, the rest goes back to the queue with the lease.
    const onStop = () => controller.abort(input.signal.reason);
    input.signal.addEventListener('abort', onStop, { once: true });

    // One write at a time, each taking every item that became ready meanwhile.
    const kick = () => {
      if (writing || ready.length === 0 || failure !== undefined) return;
      writing = (async () => {
        while (ready.length > 0 && failure === undefined) {
          const items = ready;
          ready = [];
          const tally = { ...unrecorded };
          unrecorded.requests = 0;
          unrecorded.tokens = 0;
          try {
            addCounts(
              total,
              await writeItems({ db: input.db, column, embedder, lease, record: input.record, runId: input.runId }, items, tally),
            );
            letGo(items);
            release(items);
          } catch (err) {
            fail(err);
          }
        }
      })().finally(() => {
        writing = undefined;
        kick();
      });
    };

    try {
      const { items, pending } = await planBatch(input.db, column, embedder, lease.ids, options.chunk);
      ready = items.filter((i) => i.unresolved.size === 0);
      kick();
      const requests = await sendPending([...pending.values()], {
        embedder,
        limit,
        concurrency: options.concurrency,
        signal: controller.signal,
        room: (signal) => backlog.room(signal),
        onAnswer: (done, tally) => {
          answered = true;
          // A request answered after the batch gave up (another failed first) is not written.
          if (over) return;
          const n = vectorsOf(done);
          held += n;
          backlog.add(n);
          unrecorded.requests += tally.requests;
          unrecorded.tokens += tally.tokens;
          ready.push(...done);
          kick();
        },
      }).catch((err: unknown) => {
        if (!input.signal.aborted) fail(err);
        return 0;
      });
      while (writing) await writing;
      if (failure !== undefined) throw failure;
      logger.debug(`embed: ${lease.ids.length} interactions, ${requests} requests${input.signal.aborted ? ' (stopped)' : ''}`);
      return { taken: input.signal.aborted ? (total.events ?? 0) : lease.ids.length, counts: total, bytes: heldBytes(items) };
    } catch (err) {
      controller.abort(err);
      while (writing) await writing;
      throw err;
    } finally {
      // What was answered and never written (a failure, a stop) leaves the backlog with the batch.
      over = true;
      backlog.remove(held);
      input.signal.removeEventListener('abort', onStop);
    }
  }

  async function realBatch(input: BatchInput): Promise<BatchOutput<EmbedCount>> {
    const size = answered ? input.size : Math.min(input.size, rampSize);
    const lease = { stage: 'embed' as const, range: input.range, size, owner: leaseOwner('embed'), seconds: leaseSeconds, logger };
    return (await withLease(input.db, lease, (l) => leased(input, l))) ?? { taken: 0, counts: {} };
  }

  async function dryBatch(input: DryBatchInput<string | undefined>): Promise<DryBatchOutput<EmbedCount, string | undefined>> {
    const queued = await peekQueued(input.db, ['embed'], input.range, input.size, input.cursor);
    if (queued.length === 0) return { taken: 0, counts: {}, cursor: input.cursor };
    const { items, pending } = await planBatch(
      input.db,
      await columnOf(input.db),
      embedder,
      queued.map((q) => q.item_id),
      options.chunk,
    );
    const chunks = items.reduce((n, i) => n + i.chunks.length, 0);
    const toEmbed = vectorsOf(items);
    const tokens = [...pending.values()].reduce((n, p) => n + p.tokens, 0);
    const counts: Counts<EmbedCount> = {
      events: queued.length,
      chunks,
      reused: chunks - toEmbed,
      to_embed: toEmbed,
      empty: items.filter((i) => i.row && i.chunks.length === 0).length,
      tokens,
      requests: countRequests(embedder, [...pending.values()], options.concurrency),
      cost_usd_micros: costMicros(embedder, tokens),
    };
    return { taken: queued.length, counts, cursor: peekCursor(queued) };
  }

  return {
    name: 'embed',
    countPending: (db, range, before) => countQueued(db, ['embed'], range, before),
    prepare: async (db, logger) => {
      await reclaimDeadLeases(db, 'embed', logger);
    },
    // Two batches per worker: one leases and plans (or writes its last vectors) while the
    // other's requests are in flight, so the request slots, shared by every batch, stay full.
    pipelined: true,
    batch: realBatch,
    dryBatch,
  };
}
