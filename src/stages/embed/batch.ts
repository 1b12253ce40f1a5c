// `embed --via batch`, and the collection of Batch API results by any embed run. Every batch of
// a run first moves on one open batch row of this embedder it has not looked at yet (poll,
// write, re-submit); when none is left, it submits new work (`--via batch`) or embeds directly
// (`--via direct`, `backfill`). So a cron line of either kind finishes what an earlier run on any
// machine submitted, and a run never waits for the provider's batch window.
import type { Db } from '../../db/connect.js';
import { vectorColumnPerDb } from '../../db/vector-column.js';
import type { ChunkOptions } from '../../embed/chunk.js';
import type { Embedder } from '../../embed/embedder.js';
import { BATCH_LIMITS, type BatchApi } from '../../embed/openai-batch.js';
import { errorMessage } from '../../errors.js';
import { isAlive, thisHost } from '../../liveness.js';
import type { Logger } from '../../logger.js';
import { leaseOwner } from '../engine/lease.js';
import type { BatchInput, BatchOutput, Stage } from '../engine/runner.js';
import { advance } from './batch-collect.js';
import * as sql from './batch-sql.js';
import { type BatchDeps, CLAIM_SECONDS, submitNew } from './batch-submit.js';
import type { EmbedCount } from './write.js';

export interface BatchModeOptions {
  embedder: Embedder;
  api: BatchApi;
  logger: Logger;
  /** Submit new work through the Batch API (`--via batch`); otherwise only collect. */
  submit: boolean;
  /** File limits (default: the provider's, BATCH_LIMITS). */
  limits?: { maxLines: number; maxBytes: number } | undefined;
  /** Submissions of one batch (default 3) before its interactions go back to the queue. */
  maxAttempts?: number | undefined;
  chunk?: ChunkOptions | undefined;
}

/** Frees the batch rows claimed by processes of this host that are gone (a kill -9). */
async function reclaimDeadClaims(db: Db, logger: Logger): Promise<void> {
  const dead = (await sql.batchClaimsOnHost(db, thisHost())).filter((o) => !isAlive(Number(o.split(':')[1])));
  if (dead.length === 0) return;
  const n = await sql.releaseBatchOwners(db, dead);
  if (n > 0) logger.warn(`embed: took back ${n} Batch API batch(es) left by ${dead.length} process(es) of this host that are gone`);
}

/** `stage` with the Batch API: open batches collected first, then new work submitted or embedded directly. */
export function withBatches(stage: Stage<EmbedCount, string | undefined>, o: BatchModeOptions): Stage<EmbedCount, string | undefined> {
  const owner = leaseOwner('embed');
  // Batch rows this run has moved on (or found still running): each is looked at once per run.
  const seen = new Set<string>();
  const columnOf = vectorColumnPerDb();
  const deps = async (input: BatchInput): Promise<BatchDeps> => ({
    db: input.db,
    column: await columnOf(input.db),
    embedder: o.embedder,
    api: o.api,
    logger: o.logger,
    record: input.record,
    runId: input.runId,
    owner,
    limits: o.limits ?? BATCH_LIMITS,
    maxAttempts: o.maxAttempts ?? 3,
    chunk: o.chunk,
  });

  async function collect(input: BatchInput): Promise<BatchOutput<EmbedCount> | undefined> {
    for (;;) {
      if (input.signal.aborted) return undefined;
      const row = await sql.claimOpenBatch(input.db, {
        provider: o.embedder.name,
        model: o.embedder.model,
        owner,
        seconds: CLAIM_SECONDS,
        seen: [...seen],
        runId: input.runId,
      });
      if (!row) return undefined;
      seen.add(row.id);
      try {
        const out = await advance(await deps(input), row);
        if (out.taken > 0) return out;
      } finally {
        await sql.releaseBatch(input.db, row.id, owner).catch((err: unknown) => {
          o.logger.warn(`embed: could not release batch ${row.id} (its claim expires in ${CLAIM_SECONDS} s): ${errorMessage(err)}`);
        });
      }
    }
  }

  return {
    ...stage,
    countPending: (db, range, before) => sql.countQueuedOutsideBatches(db, range, before),
    prepare: async (db, logger) => {
      await stage.prepare?.(db, logger);
      await reclaimDeadClaims(db, logger);
    },
    batch: async (input) => {
      const collected = await collect(input);
      if (collected) return collected;
      if (!o.submit) return stage.batch(input);
      if (input.signal.aborted) return { taken: 0, counts: {} };
      // A batch just submitted is not polled by the run that submitted it.
      return submitNew(await deps(input), input.range, input.size, (id) => seen.add(id));
    },
  };
}
