// `archive --older-than <days> --to <uri>` (SPEC §11): batch after batch, each taken through
// planned → written → verified → deleted (batch.ts). A run first finishes the unfinished batches
// of its target that nobody holds (a killed run's), then plans new ones. Several processes, on
// several machines, share the work through the batches' leases and the claims' primary key:
// none archives a row another has claimed, and a lease of a dead process is taken over.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { isAlive, thisHost } from '../liveness.js';
import type { Logger } from '../logger.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import { withRun } from '../stages/engine/with-run.js';
import { advanceBatch, type BatchOutcome } from './batch.js';
import * as b from './batch-sql.js';
import { LeaseLostError } from './errors.js';
import { faultPoint } from './fault.js';
import { claimWindow, countUnclaimed, countUnfinished, type RowFilter, tableBlocks } from './rows-sql.js';
import type { ArchiveTarget } from './store.js';
import { spellingsOf } from './target.js';

/** The ledger's name for these runs (`runs list --command archive`). */
export const ARCHIVE_COMMAND = 'archive';

/** A lease lasts this long unless renewed (every third of it while the process lives). */
const LEASE_SECONDS = 60;

export interface ArchiveRunOptions {
  db: Db;
  target: ArchiveTarget;
  filter: RowFilter;
  olderThanDays: number;
  batchSize: number;
  partRows: number;
  /** Batches worked on at once in this process (real server only: the embedded database has one connection). */
  workers: number;
  timeBudgetMs: number | undefined;
  /** What the time budget is measured by (a test pins it). */
  clock: Clock;
  signal: AbortSignal | undefined;
  logger: Logger;
  bar: ProgressBar | undefined;
  reconnectMs: number;
}

export interface ArchiveRunResult {
  target: string;
  cutoff: string;
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason: 'done' | 'time-budget' | 'signal';
  stopSignal: string | undefined;
  runId: string | null;
  batches: BatchOutcome[];
  rows: number;
  bytes: number;
  deleted: number;
  kept: number;
  /** Eligible rows still hot that this target's runs will archive (unclaimed, or in its unfinished batches). */
  left: number;
  /** Unfinished batches of this target another live process holds. */
  heldElsewhere: number;
  /** Targets with unfinished batches this run did not touch (run archive --to each to finish them). */
  otherTargets: string[];
  /** Eligible rows still hot that unfinished batches of other targets hold: no run to this target archives them. */
  heldByOtherTargets: number;
  elapsedMs: number;
}

/** Renews the batch's lease while `work` runs; a renewal that finds it gone is reported by the next transition. */
async function withLeaseRenewal<T>(db: Db, id: string, owner: string, logger: Logger, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(
    () => {
      b.renewLease(db, id, owner, LEASE_SECONDS).then(
        (ok) => ok || logger.warn(`archive batch ${id}: the lease was taken over by another process`),
        (err: unknown) => logger.debug(`archive batch ${id}: lease renewal failed: ${String(err)}`),
      );
    },
    (LEASE_SECONDS * 1000) / 3,
  );
  timer.unref();
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Leases of this host's processes that are gone (a kill -9): taken over at once rather than at expiry. */
async function deadOwners(db: Db): Promise<string[]> {
  const owners = await b.ownersOnHost(db, thisHost());
  return owners.filter((o) => !isAlive(Number(o.split(':')[1])));
}

export async function runArchive(o: ArchiveRunOptions): Promise<ArchiveRunResult> {
  const started = performance.now();
  const budgetFrom = o.clock.now().getTime();
  const owner = `${thisHost()}:${process.pid}:archive:${randomUUID().slice(0, 8)}`;
  const args = {
    to: o.target.uri,
    older_than_days: o.olderThanDays,
    cutoff: o.filter.cutoff.toISOString(),
    user: o.filter.userId ?? null,
    provider: o.filter.provider ?? null,
    batch_size: o.batchSize,
  };
  const batches: BatchOutcome[] = [];
  // A holder, not a variable: the closures below set it, and TypeScript would narrow a `let`.
  const stop: { reason: ArchiveRunResult['stopReason'] } = { reason: 'done' };
  // Set when a lane fails: the others finish the step in hand and leave their batch.
  const halt = { failed: false };
  const stopping = () => {
    if (halt.failed) return true;
    if (o.signal?.aborted) stop.reason = 'signal';
    else if (o.timeBudgetMs !== undefined && o.clock.now().getTime() - budgetFrom >= o.timeBudgetMs) stop.reason = 'time-budget';
    return stop.reason !== 'done';
  };
  // Lanes share the key walk: one at a time takes over or plans its next batch.
  const lanes = o.db.maxConnections < 2 ? 1 : Math.max(1, Math.min(o.workers, o.db.maxConnections - 1));
  let runId: string | null = null;
  // Batches recorded under another spelling of this target (before spellings were made canonical) are its own.
  const spellings = spellingsOf(o.target.uri, await b.unfinishedTargets(o.db));
  const outcome = await withRun(
    o.db,
    {
      command: ARCHIVE_COMMAND,
      args,
      dryRun: false,
      logger: o.logger,
      reconnectMs: o.reconnectMs,
      leftWork: 'their unfinished batches are continued from the last step each committed',
    },
    async (run) => {
      runId = run.id;
      let cursor = FIRST_TUPLE;
      let turn: Promise<unknown> = Promise.resolve();
      const pick = async (): Promise<{ batch: b.BatchRow; planMs: number } | undefined> => {
        const planStarted = performance.now();
        let batch = await b.takeOverBatch(o.db, spellings, owner, await deadOwners(o.db), LEASE_SECONDS, run.id);
        if (batch) o.logger.info(`archive: continuing batch ${batch.id} (${batch.state}, ${batch.rows} rows) left by an earlier run`);
        else {
          const planned = await plan(o, owner, run.id, cursor);
          if (!planned) return undefined;
          batch = planned.batch;
          cursor = planned.next;
          o.logger.debug(`archive: planned batch ${batch.id}: ${batch.rows} rows`);
          await faultPoint('planned');
        }
        return { batch, planMs: Math.round(performance.now() - planStarted) };
      };
      const nextBatch = () => {
        const picked = turn.then(pick);
        turn = picked.catch(() => {});
        return picked;
      };
      const lane = async (): Promise<void> => {
        while (!stopping()) {
          const picked = await nextBatch();
          if (!picked) return;
          const current = picked.batch;
          // Asked to stop while waiting for its turn: the batch is left for the next run as it is.
          if (stopping()) {
            await b.releaseLease(o.db, current.id, owner);
            return;
          }
          const done = await withLeaseRenewal(o.db, current.id, owner, o.logger, () =>
            advanceBatch(
              {
                db: o.db,
                target: o.target,
                owner,
                partRows: o.partRows,
                leaseSeconds: LEASE_SECONDS,
                logger: o.logger,
                stopping,
                record: run.record,
              },
              current,
            ),
          ).catch(async (err: unknown) => {
            // Whatever stopped the work, the batch is left for the next run at once, not at lease
            // expiry, with the reason, which `archive list` shows.
            await b.releaseLease(o.db, current.id, owner, errorMessage(err)).catch(() => {});
            throw err;
          });
          done.ms.plan = picked.planMs;
          batches.push(done);
          o.bar?.increment(done.deleted);
          if (done.state !== 'deleted') await b.releaseLease(o.db, current.id, owner);
        }
      };
      const settled = await Promise.allSettled(
        Array.from({ length: lanes }, () =>
          lane().catch((err: unknown) => {
            halt.failed = true;
            throw err;
          }),
        ),
      );
      const failure = settled.find((r) => r.status === 'rejected');
      if (failure) throw failure.reason;
      const elsewhere = await b.unfinishedElsewhere(o.db, spellings, owner);
      const unfinished = await countUnfinished(o.db, spellings, o.filter);
      return {
        status: stop.reason !== 'done' ? 'stopped' : elsewhere.held > 0 || unfinished.otherRows > 0 ? 'incomplete' : 'succeeded',
        stopReason: stop.reason,
        elsewhere,
        unfinished,
      } as const;
    },
  ).catch((err: unknown) => {
    if (err instanceof LeaseLostError) o.logger.warn(err.message);
    throw err;
  });
  const left = outcome.status === 'succeeded' ? 0 : (await countUnclaimed(o.db, o.filter)) + outcome.unfinished.rows;
  if (outcome.unfinished.otherRows > 0)
    o.logger.warn(
      `${outcome.unfinished.otherRows} events old enough are held by unfinished batches of other targets (${outcome.elsewhere.otherTargets.join(', ')}): this run cannot archive them`,
    );
  const sum = (k: 'rows' | 'bytes' | 'deleted' | 'kept') => batches.filter((x) => x.state === 'deleted').reduce((n, x) => n + x[k], 0);
  return {
    target: o.target.uri,
    cutoff: o.filter.cutoff.toISOString(),
    status: outcome.status,
    stopReason: stop.reason,
    stopSignal: stop.reason === 'signal' ? String(o.signal?.reason ?? 'SIGTERM') : undefined,
    runId,
    batches,
    rows: sum('rows'),
    bytes: sum('bytes'),
    deleted: batches.reduce((n, x) => n + x.deleted, 0),
    kept: batches.reduce((n, x) => n + x.kept, 0),
    left,
    heldElsewhere: outcome.elsewhere.held,
    otherTargets: outcome.elsewhere.otherTargets,
    heldByOtherTargets: outcome.unfinished.otherRows,
    elapsedMs: Math.round(performance.now() - started),
  };
}

/** The block of a tuple id, '(block,offset)'. */
const blockOf = (tid: string): number => Number(/^\((\d+),/.exec(tid)?.[1] ?? 0);

/** Before every tuple: where a run's walk over raw_events starts. */
const FIRST_TUPLE = '(0,0)';

/**
 * A new batch: the next eligible rows in physical order after tuple `cursor`, claimed under the
 * planning lock, window after window (each about a batch's worth of blocks) until the batch is
 * full or the table ends. Returns the batch and where the next one starts; undefined at the end.
 */
async function plan(
  o: ArchiveRunOptions,
  owner: string,
  runId: string | null,
  cursor: string,
): Promise<{ batch: b.BatchRow; next: string } | undefined> {
  return o.db.transaction(async (tx) => {
    await b.lockPlanning(tx);
    const id = randomUUID();
    const day = new Date().toISOString().slice(0, 10);
    await b.insertBatch(tx, {
      id,
      target: o.target.uri,
      prefix: `raw_events/${day}/${id}`,
      cutoff: o.filter.cutoff,
      userId: o.filter.userId,
      provider: o.filter.provider,
      owner,
      leaseSeconds: LEASE_SECONDS,
      runId,
    });
    const { blocks, rowsPerBlock } = await tableBlocks(tx);
    const span = Math.max(1, Math.ceil(o.batchSize / rowsPerBlock));
    let after = cursor;
    let rows = 0;
    let lo: string | null = null;
    let hi: string | null = null;
    while (rows < o.batchSize && blockOf(after) < blocks) {
      const before = `(${blockOf(after) + span},0)`;
      const w = await claimWindow(tx, id, o.filter, { after, before }, o.batchSize - rows);
      rows += w.rows;
      if (w.lo !== null && (lo === null || w.lo < lo)) lo = w.lo;
      if (w.hi !== null && (hi === null || w.hi > hi)) hi = w.hi;
      after = w.full && w.last !== null ? w.last : before;
    }
    if (rows === 0) {
      await b.deleteEmptyBatch(tx, id);
      return undefined;
    }
    return { batch: await b.setPlannedRange(tx, id, rows, lo, hi), next: after };
  });
}
