// Submitting interactions to the Batch API. A batch row is created in the same transaction that
// leases its interactions to it (queue owner `batch:<id>`, for as long as a batch may be out), so
// no interaction is ever leased to a batch nobody knows of. Then: plan (chunks, reuse), write at
// once what needs no request, pack one request line per missing chunk (custom_id from the chunk's
// hash) within the file limits, give back what does not fit, upload, create the provider batch —
// each step recorded before the next. A provider batch is tagged `<id>:<attempt>` so a process
// that died between creating it and recording it finds it again instead of paying twice.
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/connect.js';
import type { VectorColumn } from '../../db/vector-column.js';
import type { ChunkOptions } from '../../embed/chunk.js';
import type { Embedder } from '../../embed/embedder.js';
import { BATCH_METADATA_KEY, BATCH_PRICE_FACTOR, type BatchApi } from '../../embed/openai-batch.js';
import type { Logger } from '../../logger.js';
import type { Counts } from '../engine/ledger.js';
import type { Lease } from '../engine/lease.js';
import { completeLeased, leaseQueued, releaseLeased, renewLeased } from '../engine/queue.js';
import type { RangeOptions } from '../engine/range.js';
import type { BatchInput, BatchOutput } from '../engine/runner.js';
import * as sql from './batch-sql.js';
import { embedFaultPoint } from './fault.js';
import { type Item, planBatch, type Pending } from './plan.js';
import type { SendTally } from './send.js';
import { type EmbedCount, type WriteInput, writeItems } from './write.js';

/** Interactions stay leased to a batch this long (the provider's window is 24 h); renewed on every poll. */
export const QUEUE_LEASE_SECONDS = 48 * 3600;
/** A process works on a batch row under a claim this long (taken over sooner when its process is gone). */
export const CLAIM_SECONDS = 600;

export interface BatchDeps {
  db: Db;
  column: VectorColumn;
  embedder: Embedder;
  api: BatchApi;
  logger: Logger;
  record: BatchInput['record'];
  runId: string | null;
  /** This process's claim on batch rows. */
  owner: string;
  limits: { maxLines: number; maxBytes: number };
  /** Submissions of one batch before its interactions go back to the queue. */
  maxAttempts: number;
  chunk?: ChunkOptions | undefined;
}

/**
 * Stores a batch's items whose vectors are all in, at the Batch API's price, with the batch row's
 * own change (`within`) in the same transaction: a crash before the commit finds the batch as it
 * was, one after finds it moved on.
 */
export function writeBatchItems(
  d: BatchDeps,
  lease: Lease,
  o: Pick<WriteInput, 'extra' | 'within'>,
  items: Item[],
  tally: SendTally,
): Promise<Counts<EmbedCount>> {
  return writeItems(
    { db: d.db, column: d.column, embedder: d.embedder, lease, record: d.record, runId: d.runId, priceFactor: BATCH_PRICE_FACTOR, ...o },
    items,
    tally,
  );
}

export const queueOwner = (batchId: string): string => `batch:${batchId}`;
export const customId = (hash: string): string => `chunk-${hash}`;

/** The queue lease of a batch's interactions, as the writer completes and releases them. */
export function batchLease(batchId: string, ids: string[]): Lease {
  const owner = queueOwner(batchId);
  return {
    items: [],
    ids,
    owner,
    complete: (tx, done) => completeLeased(tx, 'embed', done, owner),
    release: (q, back) => releaseLeased(q, 'embed', back, owner),
  };
}

function requestLine(embedder: Embedder, p: Pending): string {
  const body = {
    model: embedder.model,
    input: p.text,
    // A quarter of the bytes of JSON floats, and the same float32 values.
    encoding_format: 'base64',
    ...(embedder.dimensionsParam === undefined ? {} : { dimensions: embedder.dimensionsParam }),
  };
  return JSON.stringify({ custom_id: customId(p.hash), method: 'POST', url: '/v1/embeddings', body });
}

/** Leases the next queued interactions to a new batch and submits it; taken 0 when none are queued. */
export async function submitNew(
  d: BatchDeps,
  range: RangeOptions,
  size: number,
  created: (id: string) => void,
): Promise<BatchOutput<EmbedCount>> {
  const id = randomUUID();
  created(id);
  const ids = await d.db.transaction(async (tx) => {
    await sql.insertBatch(tx, {
      id,
      provider: d.embedder.name,
      model: d.embedder.model,
      dimensions: d.embedder.dimensions,
      owner: d.owner,
      seconds: CLAIM_SECONDS,
      runId: d.runId,
    });
    const leased = await leaseQueued(tx, 'embed', range, size, queueOwner(id), QUEUE_LEASE_SECONDS);
    if (leased.length === 0) await sql.deleteBatch(tx, id);
    else
      await sql.setItems(
        tx,
        id,
        leased.map((i) => i.item_id),
      );
    return leased.map((i) => i.item_id);
  });
  if (ids.length === 0) return { taken: 0, counts: {} };
  try {
    return { taken: ids.length, counts: await prepareAndSend(d, { id, itemIds: ids, attempts: 0 }) };
  } finally {
    await sql.releaseBatch(d.db, id, d.owner);
  }
}

/**
 * Plans a batch's interactions and sends what is missing: the state `preparing` → `uploaded` →
 * `submitted`. Interactions that need no request are written now; those that do not fit the
 * file go back to the queue.
 */
export async function prepareAndSend(d: BatchDeps, b: { id: string; itemIds: string[]; attempts: number }): Promise<Counts<EmbedCount>> {
  const lease = batchLease(b.id, b.itemIds);
  // A re-submission starts a new 24 h window: the interactions stay the batch's for it.
  if (b.attempts > 0) await renewLeased(d.db, 'embed', b.itemIds, queueOwner(b.id), QUEUE_LEASE_SECONDS);
  const { items, pending } = await planBatch(d.db, d.column, d.embedder, b.itemIds, d.chunk);
  const lines: string[] = [];
  const customIds: string[] = [];
  const kept: string[] = [];
  const back: string[] = [];
  const packed = new Set<string>();
  let bytes = 0;
  let tokens = 0;
  for (const item of items) {
    if (item.unresolved.size === 0) continue;
    const fresh = [...item.unresolved].filter((h) => !packed.has(h)).map((h) => pending.get(h)!);
    const add = fresh.map((p) => requestLine(d.embedder, p));
    const addBytes = add.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    if (kept.length > 0 && (lines.length + add.length > d.limits.maxLines || bytes + addBytes > d.limits.maxBytes)) {
      back.push(item.id);
      continue;
    }
    kept.push(item.id);
    for (const [k, p] of fresh.entries()) {
      packed.add(p.hash);
      lines.push(add[k]!);
      customIds.push(customId(p.hash));
      tokens += p.tokens;
    }
    bytes += addBytes;
  }
  const ready = items.filter((i) => i.unresolved.size === 0);
  const counts = await writeBatchItems(
    d,
    lease,
    {
      extra: back.length > 0 ? { released: back.length } : {},
      within: async (tx) => {
        await lease.release(tx, back);
        if (lines.length === 0)
          await sql.finishBatch(tx, b.id, {
            state: 'done',
            status: null,
            outputFileId: null,
            errorFileId: null,
            error: null,
            runId: d.runId,
          });
        else await sql.setPacked(tx, b.id, { itemIds: kept, customIds, tokens, bytes });
      },
    },
    ready,
    { requests: 0, tokens: 0 },
  );
  if (lines.length === 0) return counts;
  const attempt = b.attempts + 1;
  const fileId = await d.api.upload(`omni-ingest-embed-${b.id}-${attempt}.jsonl`, Buffer.from(`${lines.join('\n')}\n`));
  await embedFaultPoint('uploaded');
  await sql.markUploaded(d.db, b.id, fileId);
  d.logger.debug(`embed: batch ${b.id} attempt ${attempt}: ${lines.length} lines, ${kept.length} interactions, ${bytes} bytes uploaded`);
  return addTo(counts, await createRecorded(d, { id: b.id, attempt, inputFileId: fileId, interactions: kept.length, lines: lines.length }));
}

/** State `uploaded` → `submitted`: the provider batch of this attempt, found again or created. */
export async function createRecorded(
  d: BatchDeps,
  b: { id: string; attempt: number; inputFileId: string; interactions: number; lines: number },
): Promise<Counts<EmbedCount>> {
  const tag = `${b.id}:${b.attempt}`;
  const batch = (await d.api.find(BATCH_METADATA_KEY, tag)) ?? (await d.api.create(b.inputFileId, { [BATCH_METADATA_KEY]: tag }));
  await embedFaultPoint('created');
  const counts: Counts<EmbedCount> = { submitted: b.interactions, batches_submitted: 1, lines: b.lines };
  await d.db.transaction(async (tx) => {
    await sql.markSubmitted(tx, b.id, batch.id, batch.status);
    await d.record(tx, counts);
  });
  return counts;
}

export function addTo(into: Counts<EmbedCount>, from: Counts<EmbedCount>): Counts<EmbedCount> {
  for (const [k, v] of Object.entries(from) as [EmbedCount, number][]) into[k] = (into[k] ?? 0) + v;
  return into;
}
