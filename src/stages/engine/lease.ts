// The lease protocol of the stages that wait on a provider (embed, insights), in one place:
// lease the next items in one short statement, keep the lease alive while the work is in flight,
// let the work complete items inside its own write transactions, and give back whatever it did
// not complete — on success, on failure, on a stop. No transaction is open while the work waits.
import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import { errorMessage } from '../../errors.js';
import { isAlive, thisHost } from '../../liveness.js';
import type { Logger } from '../../logger.js';
import {
  completeLeased,
  leaseOwnersOnHost,
  leaseQueued,
  releaseLeased,
  releaseOwners,
  renewLeased,
  type QueuedItem,
  type QueueStage,
} from './queue.js';
import type { RangeOptions } from './range.js';

/** How long a release waits for the connection to come back before leaving the leases to expire. */
const RELEASE_RETRY_MS = 30_000;

/** A lease owner names its host and process, so a lease left by a dead process can be told apart. */
export function leaseOwner(stage: QueueStage): string {
  return `${thisHost()}:${process.pid}:${stage}:${randomUUID().slice(0, 8)}`;
}

export interface Lease {
  readonly items: QueuedItem[];
  readonly ids: string[];
  readonly owner: string;
  /** Deletes these items from the queue inside the caller's write transaction (if still ours). */
  complete(tx: Queryable, ids: string[]): Promise<number>;
  /** Gives items back now, e.g. inside a write transaction for items that changed meanwhile. */
  release(db: Queryable, ids: string[]): Promise<void>;
}

export interface LeaseOptions {
  stage: QueueStage;
  range: RangeOptions;
  size: number;
  /** Who holds the lease (leaseOwner), one per batch so parallel batches never complete each other's items. */
  owner: string;
  /** How long a lease lasts without renewal; renewed every third of it while the work runs. */
  seconds: number;
  logger: Logger;
}

/**
 * Leases up to `size` queued items and runs `work` with them; undefined when nothing was queued.
 * Whatever happens in `work`, the items it did not complete are released when it ends.
 */
export async function withLease<T>(db: Db, o: LeaseOptions, work: (lease: Lease) => Promise<T>): Promise<T | undefined> {
  const items = await leaseQueued(db, o.stage, o.range, o.size, o.owner, o.seconds);
  if (items.length === 0) return undefined;
  const ids = items.map((i) => i.item_id);
  let renewing: Promise<unknown> | undefined;
  const timer = setInterval(
    () => {
      renewing ??= renewLeased(db, o.stage, ids, o.owner, o.seconds)
        .catch((err: unknown) => o.logger.warn(`${o.stage}: could not renew a lease (it expires in ${o.seconds} s): ${errorMessage(err)}`))
        .finally(() => (renewing = undefined));
    },
    Math.max(1_000, (o.seconds * 1000) / 3),
  );
  timer.unref();
  const lease: Lease = {
    items,
    ids,
    owner: o.owner,
    complete: (tx, done) => completeLeased(tx, o.stage, done, o.owner),
    release: (q, back) => releaseLeased(q, o.stage, back, o.owner),
  };
  try {
    return await work(lease);
  } finally {
    clearInterval(timer);
    await renewing;
    // Completed items are gone; those that are not go back to the queue at once. The connection
    // that failed the work may be the one lost: the release gets a new one, or the items would
    // stay leased, invisible to the rest of this run, until the lease expires.
    await retryOnConnectionLoss(() => releaseLeased(db, o.stage, ids, o.owner), {
      logger: o.logger,
      what: `${o.stage}: giving back ${ids.length} leases`,
      forMs: RELEASE_RETRY_MS,
    }).catch((err: unknown) =>
      o.logger.warn(`${o.stage}: could not release ${ids.length} leases (they expire within ${o.seconds} s): ${errorMessage(err)}`),
    );
  }
}

/**
 * Gives back at once the leases of `stage` held by processes of this host that are gone (a
 * kill -9): without this their items would wait for the leases to expire. Leases of other hosts
 * expire on their own (they are short and renewed only while their process lives).
 */
export async function reclaimDeadLeases(db: Queryable, stage: QueueStage, logger: Logger): Promise<number> {
  const owners = await leaseOwnersOnHost(db, stage, thisHost());
  const dead = owners.filter((o) => !isAlive(Number(o.split(':')[1])));
  if (dead.length === 0) return 0;
  const released = await releaseOwners(db, stage, dead);
  if (released > 0) logger.warn(`${stage}: took back ${released} item(s) leased by ${dead.length} process(es) of this host that are gone`);
  return released;
}
