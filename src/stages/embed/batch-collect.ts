// Collecting Batch API results. A batch row is advanced from the state it was left in: prepared
// or uploaded again (a process died there), or polled. A finished batch's output and error files
// are downloaded and matched to the interactions' chunks by custom_id; the vectors are written
// exactly as the direct path writes them (same rows, hashes and meta), rejected lines are
// dead-lettered, and the batch is marked done in the same transaction — so a crash before that
// commit downloads again, and one after it finds nothing to do. An expired, failed or cancelled
// batch keeps what it finished and is submitted again with the rest, up to its attempts.
import { z } from 'zod';
import {
  EmbeddingDimensionError,
  EmbedInputRejected,
  EXPECTED_DIMENSIONS,
  float32sOfBase64,
  refuseDimensions,
  type Vector,
} from '../../embed/embedder.js';
import type { Counts } from '../engine/ledger.js';
import { renewLeased } from '../engine/queue.js';
import type { BatchOutput } from '../engine/runner.js';
import * as sql from './batch-sql.js';
import {
  addTo,
  type BatchDeps,
  batchLease,
  createRecorded,
  customId,
  prepareAndSend,
  QUEUE_LEASE_SECONDS,
  queueOwner,
  writeBatchItems,
} from './batch-submit.js';
import { embedFaultPoint } from './fault.js';
import { planBatch } from './plan.js';
import type { EmbedCount } from './write.js';

/** Provider statuses of a batch still under way. */
const RUNNING = new Set(['validating', 'in_progress', 'finalizing', 'cancelling']);

const lineSchema = z.object({
  custom_id: z.string(),
  response: z.object({ status_code: z.number(), body: z.unknown() }).nullable().optional(),
  error: z.object({ code: z.string().nullable().optional(), message: z.string().nullable().optional() }).nullable().optional(),
});
const okBody = z.object({
  data: z.array(z.object({ index: z.number(), embedding: z.union([z.array(z.number()), z.string()]) })).min(1),
  usage: z.object({ total_tokens: z.number().optional(), prompt_tokens: z.number().optional() }).optional(),
});
const errorBody = z.object({
  error: z.object({ message: z.string(), code: z.string().nullable().optional(), param: z.string().nullable().optional() }),
});

interface LineResult {
  vector?: Vector;
  rejected?: EmbedInputRejected;
  tokens: number;
}

/** A base64 embedding is little-endian float32s. */
function decodeVector(v: number[] | string): Vector {
  return Array.isArray(v) ? v : float32sOfBase64(v);
}

/**
 * The lines of an output or error file by custom_id. A 200 carries a vector, a 400 a rejection of
 * its input; anything else (a 429 or 5xx inside the batch) leaves its chunk unanswered, to be sent
 * again. A line that cannot be read is skipped the same way, with a warning.
 */
function parseResults(text: string, into: Map<string, LineResult>, warn: (m: string) => void): void {
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let line: z.infer<typeof lineSchema>;
    try {
      line = lineSchema.parse(JSON.parse(raw));
    } catch {
      warn(`embed: a result line of a batch could not be read (${raw.slice(0, 80)}…); its chunk will be sent again`);
      continue;
    }
    const status = line.response?.status_code;
    if (status === 200) {
      const ok = okBody.safeParse(line.response?.body);
      if (!ok.success) continue;
      const tokens = ok.data.usage?.total_tokens ?? ok.data.usage?.prompt_tokens ?? 0;
      let vector: Vector;
      try {
        vector = decodeVector(ok.data.data[0]!.embedding);
      } catch {
        warn(`embed: a result line of a batch holds an embedding that is not float32s (${line.custom_id}); its chunk will be sent again`);
        continue;
      }
      into.set(line.custom_id, { vector, tokens });
    } else if (status === 400) {
      const e = errorBody.safeParse(line.response?.body);
      const message = e.success ? e.data.error.message : (line.error?.message ?? 'rejected');
      const rejected = new EmbedInputRejected(message, 0, {
        status,
        code: e.success ? e.data.error.code : (line.error?.code ?? null),
        param: e.success ? e.data.error.param : null,
      });
      into.set(line.custom_id, { rejected, tokens: 0 });
    }
  }
}

function checkVector(model: string, v: Vector): void {
  if (v.length !== EXPECTED_DIMENSIONS) throw refuseDimensions(model, v.length, 'returned');
  for (const x of v) if (!Number.isFinite(x)) throw refuseDimensions(model, v.length, 'returned a non-finite value in');
}

/** Moves one claimed batch on from its state. Taken 0: it is still running at the provider. */
export async function advance(d: BatchDeps, row: sql.EmbedBatchRow): Promise<BatchOutput<EmbedCount>> {
  const taken = Math.max(1, row.item_ids.length);
  switch (row.state) {
    case 'preparing':
      return { taken, counts: await prepareAndSend(d, { id: row.id, itemIds: row.item_ids, attempts: row.attempts }) };
    case 'uploaded':
      return {
        taken,
        counts: await createRecorded(d, {
          id: row.id,
          attempt: row.attempts,
          inputFileId: row.input_file_id!,
          interactions: row.item_ids.length,
          lines: row.custom_ids.length,
        }),
      };
    default:
      return poll(d, row);
  }
}

async function poll(d: BatchDeps, row: sql.EmbedBatchRow): Promise<BatchOutput<EmbedCount>> {
  const b = await d.api.retrieve(row.provider_batch_id!);
  if (RUNNING.has(b.status)) {
    await sql.markPolled(d.db, row.id, b.status, d.runId);
    await renewLeased(d.db, 'embed', row.item_ids, queueOwner(row.id), QUEUE_LEASE_SECONDS);
    return { taken: 0, counts: {} };
  }
  const results = new Map<string, LineResult>();
  const warn = (m: string) => d.logger.warn(m);
  if (b.outputFileId) parseResults(await d.api.download(b.outputFileId), results, warn);
  if (b.errorFileId) parseResults(await d.api.download(b.errorFileId), results, warn);
  await embedFaultPoint('downloaded');

  // Planned again from the interactions as they are now: a chunk whose text changed since it was
  // sent has another hash, finds no result, and its interaction is embedded again later.
  const { items, pending } = await planBatch(d.db, d.column, d.embedder, row.item_ids, d.chunk);
  let tokens = 0;
  for (const r of results.values()) tokens += r.tokens;
  // Vectors that cannot be stored (a model of another width, say) leave their chunks unanswered:
  // the interactions go back to the queue and the batch is closed, so no run is stuck on it.
  let refused: EmbeddingDimensionError | undefined;
  for (const p of pending.values()) {
    const r = results.get(customId(p.hash));
    if (!r) continue;
    if (r.vector) {
      try {
        checkVector(d.embedder.model, r.vector);
      } catch (e) {
        if (!(e instanceof EmbeddingDimensionError)) throw e;
        refused ??= e;
        continue;
      }
      p.vector = r.vector;
    } else p.rejected = r.rejected;
    for (const item of p.waiting) item.unresolved.delete(p.hash);
  }
  const complete = items.filter((i) => i.unresolved.size === 0);
  const rest = items.filter((i) => i.unresolved.size > 0).map((i) => i.id);
  const finished = b.status === 'completed';
  const again = !finished && rest.length > 0 && row.attempts < d.maxAttempts;
  const lease = batchLease(row.id, row.item_ids);
  const extra: Counts<EmbedCount> = {
    batches_collected: 1,
    ...(again ? { batches_resubmitted: 1 } : {}),
    ...(!finished && !again && rest.length > 0 ? { batches_failed: 1 } : {}),
    ...(!again && rest.length > 0 ? { released: rest.length } : {}),
  };
  const error = refused?.message ?? b.errors ?? (finished ? null : `the provider's batch ${b.id} ended ${b.status}`);
  if (refused) d.logger.warn(`embed: batch ${row.id} (${b.id}): ${refused.message}; its interactions go back to the queue`);
  if (!finished) d.logger.warn(`embed: batch ${row.id} (${b.id}) ended ${b.status} with ${rest.length} interactions unanswered`);
  const counts = await writeBatchItems(
    d,
    lease,
    {
      extra,
      within: async (tx) => {
        if (again) {
          await sql.resetBatch(tx, row.id, { itemIds: rest, status: b.status, error });
          return;
        }
        // Not answered in a finished batch (or out of attempts): back to the queue, sent by a later run.
        await lease.release(tx, rest);
        await sql.finishBatch(tx, row.id, {
          state: finished || rest.length === 0 ? 'done' : 'failed',
          status: b.status,
          outputFileId: b.outputFileId,
          errorFileId: b.errorFileId,
          error,
          runId: d.runId,
        });
      },
    },
    complete,
    { requests: 0, tokens },
  );
  if (again) addTo(counts, await prepareAndSend(d, { id: row.id, itemIds: rest, attempts: row.attempts }));
  return { taken: Math.max(1, row.item_ids.length), counts };
}
