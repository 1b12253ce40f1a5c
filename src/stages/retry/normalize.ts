// `errors retry` of normalize errors: the selected errors' raw events through normalize's own
// batch, claimed through the errors themselves rather than put back in the queue and claimed
// from it. A batch locks every open error of its events (claimNormalizeErrors), re-maps them and
// writes their interactions with the same code a normalize batch runs (normalizeHeld), which
// resolves the errors in the same transaction or counts one more attempt. A kill at any point
// rolls the batch back: its errors stay open, their events untouched.
import { relaxCommitDurability } from '../../db/session.js';
import type { ErrorSelection } from '../../dead-letters/select.js';
import type { Counts } from '../engine/ledger.js';
import type { ProgressBar } from '../engine/progress.js';
import type { BatchInput, BatchOutput, Stage } from '../engine/runner.js';
import { writeTurns } from '../engine/turns.js';
import { normalizeHeld } from '../normalize.js';
import { claimNormalizeErrors, countOpenNormalize, type ErrorCursor } from './sql.js';

export interface NormalizeRetry {
  stage: Stage;
  /** Errors whose raw event is gone (archived or deleted): left open, to discard. */
  gone(): number;
}

/**
 * A stage for runStage (one worker) that walks the selection's open normalize errors in the
 * order they were last written (see ErrorCursor). Its pending work is what it has not reached
 * yet plus the events another run held when it came to them: a run that ends with some of those
 * still open is incomplete, as a normalize run that found items held is.
 */
export function normalizeRetry(o: {
  selection: ErrorSelection;
  /** The run's start: errors seen after it (failed again meanwhile) are not taken. */
  before: Date;
  budget: { left: number };
  bar?: ProgressBar | undefined;
}): NormalizeRetry {
  let after: ErrorCursor | undefined;
  let gone = 0;
  const heldElsewhere: string[] = [];
  // Two batches are in flight at once (the stage is pipelined). They claim one at a time, each
  // from where the previous claim ended (`claimFrom`), so the second takes the errors after the
  // first's rather than finding them locked. `after` moves only over batches that committed, in
  // the order they claimed; a batch that failed sends the claims back to `after`, so its errors
  // are claimed again, never stepped over.
  let claimFrom: ErrorCursor | undefined;
  const claimTurn = writeTurns(1);
  let claimed = 0;
  let committed = 0;
  const ends = new Map<number, ErrorCursor | null>();

  const batch = async (input: BatchInput): Promise<BatchOutput<string>> => {
    const limit = Math.min(input.size, o.budget.left);
    if (limit <= 0) return { taken: 0, counts: {} };
    o.budget.left -= limit; // held while in flight, so two batches never take more than --limit
    let seq = -1;
    let out: Awaited<ReturnType<typeof claimNormalizeErrors>> & { counts: Counts };
    try {
      out = await input.db.transaction(async (tx) => {
        await relaxCommitDurability(tx);
        const claim = await claimTurn.take(async () => {
          seq = claimed++;
          const c = await claimNormalizeErrors(tx, o.selection, o.before, claimFrom, limit);
          if (c.cursor) claimFrom = c.cursor;
          return c;
        });
        const events = claim.items.flatMap((i) => (i.event ? [i.event] : []));
        const errors = claim.items.flatMap((i) => (i.event ? (i.errors ?? []) : []));
        const counts: Counts = events.length === 0 ? {} : (await normalizeHeld(tx, events, errors, input)).counts;
        return { ...claim, counts };
      });
    } catch (err) {
      o.budget.left += limit;
      claimFrom = after;
      throw err;
    }
    ends.set(seq, out.cursor ?? null);
    while (ends.has(committed)) {
      after = ends.get(committed) ?? after;
      ends.delete(committed++);
    }
    let selected = 0;
    for (const i of out.items) {
      selected += i.selected;
      if (i.errors === null) heldElsewhere.push(i.item_id);
      else if (i.event === null) gone += i.selected;
    }
    o.budget.left += limit - selected;
    if (out.cursor === undefined) return { taken: 0, counts: {} };
    o.bar?.increment(selected);
    return { taken: out.items.length, counts: out.counts };
  };

  return {
    stage: {
      name: 'normalize',
      pipelined: true,
      // Errors past --limit were not asked for: they are not "held by another run".
      countPending: (db) => (o.budget.left <= 0 ? Promise.resolve(0) : countOpenNormalize(db, o.selection, o.before, after, heldElsewhere)),
      batch,
      dryBatch: () => Promise.reject(new Error('errors retry --dry-run plans without running a stage')),
    },
    gone: () => gone,
  };
}
