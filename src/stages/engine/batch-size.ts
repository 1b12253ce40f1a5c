// How big the next batch is and when it may start (SPEC §4: --batch-size, --batch-target,
// --max-rate). Pure: the runner reports each batch (events taken, duration, commit time, or the
// database's pushback) and asks for the next size and the pause before it; time comes from an
// injected monotonic clock, so tests drive it by hand.
//
// The adaptive size follows GitLab's batched background migration optimizer: the next size is
// the current one scaled by target ÷ measured duration, the measure smoothed over the last few
// batches (per event, so a short last batch does not count as a fast one), growth clamped per
// step, no change inside a dead band around the target. When the database pushes back (lock or
// statement timeout, serialization failure, deadlock, a commit much slower than usual) the size
// halves and the next batch waits, longer each time in a row, and growth stays off for a while.
import type { Pushback } from '../../db/pg-errors.js';

/** A commit much slower than this run's usual one: the database is struggling to keep up. */
export type Backoff = Pushback | 'commit-latency';

export interface BatchSizeOptions {
  /** A number: every batch is that size (today's behaviour). 'auto': sized to take `targetMs`. */
  mode: 'auto' | 'fixed';
  /** The fixed size, or the first adaptive batch (the previous fixed default: small runs are unchanged). */
  start: number;
  /** The duration an adaptive batch aims at (ms). */
  targetMs: number;
  /** At most this many events per second: batches wait (and, adaptive, shrink to about `targetMs` of it). */
  maxRate?: number | undefined;
  /** Milliseconds on a monotonic clock. */
  now: () => number;
  /** Batches in flight at once sharing these sizes (workers × batches per worker; default 1). */
  inFlight?: number | undefined;
  /** The data one adaptive batch may hold, in the bytes the stage reports (default AUTO_MAX_BYTES). */
  maxBytes?: number | undefined;
}

export interface BackedOff {
  reason: Backoff;
  pauseMs: number;
  /** The size of the next batch. */
  size: number;
}

export interface BatchReport {
  /** Events the batch took (0 for a batch the database pushed back, or an empty range). */
  taken: number;
  /** From the batch's start to its end (its commit, or its failure). */
  durationMs: number;
  /** Time spent committing, when measured. */
  commitMs?: number | undefined;
  /** The database refused the batch this way; its transaction rolled back. */
  pushback?: Pushback | undefined;
  /** What the batch held in memory, about (its rows as text), when the stage measures it. */
  bytes?: number | undefined;
}

/**
 * Bounds of the adaptive size. 10 at least: below that the per-batch cost (claim, ledger, commit,
 * a round trip each) is most of the batch. 20,000 at most: a batch's events are held in memory
 * at once (20,000 50 KB emails are already ~1 GB of payload) and its ids travel as one array.
 */
export const AUTO_MIN = 10;
export const AUTO_MAX = 20_000;
/**
 * And at most about this much data per batch (by default; a stage may set its own): a worker
 * holds two batches at once (one claimed and mapped while the other writes), each as parsed rows
 * and their text, so this keeps a run's memory flat whatever the events weigh.
 */
export const AUTO_MAX_BYTES = 2 * 2 ** 20;
/** Growth per step, at most (GitLab's is 1.2 per job; ours are 1 s batches, not 2-minute jobs). */
const MAX_GROWTH = 1.5;
/** Shrink per step, at most: one slow outlier must not collapse the size. */
const MAX_SHRINK = 0.5;
/** Within ±10% of the target the size stays: the measure is noisy, the change costs nothing but churn. */
const DEAD_BAND = 0.1;
/** Weight of the newest batch in the smoothed time per event (about the last 5 batches count). */
const SMOOTHING = 0.3;
/** The first backoff pause, doubling with each pushback in a row, up to MAX_PAUSE_MS. */
const FIRST_PAUSE_MS = 500;
const MAX_PAUSE_MS = 30_000;
/** Successful batches after a pushback during which the size may not grow again. */
const COOLDOWN_BATCHES = 5;
/**
 * A commit is slow when it takes this many times the run's usual, and at least COMMIT_FLOOR_MS;
 * it takes SLOW_COMMITS in a row to back off (on a busy machine one answer can be late for
 * reasons of its own, and a needless backoff costs a pause and a halved batch).
 */
const COMMIT_FACTOR = 4;
const COMMIT_FLOOR_MS = 100;
const SLOW_COMMITS = 2;
/** Pushbacks in a row after which the run gives up with the database's error (~2 minutes of pauses). */
export const MAX_PUSHBACKS = 8;

export class BatchSize {
  private current: number;
  private readonly min: number;
  private readonly max: number;
  /** Bytes one adaptive batch may hold: its share of what the batches in flight may hold together. */
  private readonly maxBytes: number;
  private msPerEvent: number | undefined;
  /** The heaviest events per batch seen lately (bytes each), when the stage measures them. */
  private bytesPerEvent: number | undefined;
  /** The first batch is the run's warm-up (cold caches, first plans): it sizes the second, no more. */
  private warmedUp = false;
  private slowCommitsInARow = 0;
  private commitBaselineMs: number | undefined;
  private pushbacksInARow = 0;
  private cooldown = 0;
  private pauseUntil = 0;
  /** Under --max-rate: the earliest start of the next batch, the events so far spread at the rate. */
  private rateNotBefore: number | undefined;

  constructor(private readonly o: BatchSizeOptions) {
    // Under a rate cap an adaptive batch is at most about targetMs of it: a gentle run writes a
    // little and often, never 1,000 events at once and then nothing for minutes.
    const rateCap = o.maxRate === undefined ? AUTO_MAX : Math.max(1, Math.floor((o.maxRate * o.targetMs) / 1000));
    this.max = Math.min(AUTO_MAX, rateCap);
    this.min = Math.min(AUTO_MIN, this.max);
    // All the batches in flight at once hold two batches' worth together (one worker, pipelined):
    // more workers share it, so that a second worker adds speed, not memory. With four batches
    // at the most each, a two-worker run peaked 20–40 MB above one worker's (Instagram, 200,000
    // events); sharing it, 135–142 MB against 167–179 at the same speed.
    const perBatch = o.maxBytes ?? AUTO_MAX_BYTES;
    this.maxBytes = Math.min(perBatch, Math.floor((2 * perBatch) / Math.max(1, o.inFlight ?? 1)));
    this.current = o.mode === 'fixed' ? o.start : clamp(o.start, this.min, this.max);
  }

  get adaptive(): boolean {
    return this.o.mode === 'auto';
  }

  /** The size of the next batch. */
  next(): number {
    return this.current;
  }

  /** Too many pushbacks in a row: the run should stop with the database's error. */
  get exhausted(): boolean {
    return this.pushbacksInARow >= MAX_PUSHBACKS;
  }

  /** How long to wait before the next batch starts (a backoff pause, or the rate cap). */
  waitMs(): number {
    const now = this.o.now();
    return Math.max(0, this.pauseUntil - now, (this.rateNotBefore ?? now) - now);
  }

  /** Takes in a batch's outcome; says so when it made the batches back off. */
  report(r: BatchReport): BackedOff | undefined {
    const end = this.o.now();
    if (this.o.maxRate !== undefined && r.taken > 0) {
      const start = end - r.durationMs;
      // Idle time earns no credit: the cap holds over any stretch of the run, not only its average.
      this.rateNotBefore = Math.max(this.rateNotBefore ?? start, start) + (r.taken * 1000) / this.o.maxRate;
    }
    if (!this.adaptive) return undefined;
    if (r.pushback) {
      this.pushbacksInARow++;
      return this.backOff(r.pushback, end);
    }
    if (r.taken <= 0) return undefined;
    this.pushbacksInARow = 0;
    if (r.bytes !== undefined) {
      const each = r.bytes / r.taken;
      // Up at once, down slowly: a run of heavy events must not find the batch sized for light ones.
      this.bytesPerEvent =
        this.bytesPerEvent === undefined || each > this.bytesPerEvent ? each : SMOOTHING * each + (1 - SMOOTHING) * this.bytesPerEvent;
    }
    const sample = r.durationMs / r.taken;
    this.msPerEvent = this.msPerEvent === undefined ? sample : SMOOTHING * sample + (1 - SMOOTHING) * this.msPerEvent;
    if (r.commitMs !== undefined && this.slowCommit(r.commitMs)) return this.backOff('commit-latency', end);
    if (this.cooldown > 0) this.cooldown--;
    this.resize();
    if (!this.warmedUp) {
      this.warmedUp = true;
      this.msPerEvent = undefined;
    }
    return undefined;
  }

  private slowCommit(ms: number): boolean {
    const base = this.commitBaselineMs;
    if (base !== undefined && ms >= COMMIT_FLOOR_MS && ms > COMMIT_FACTOR * base) {
      this.slowCommitsInARow++;
      if (this.slowCommitsInARow < SLOW_COMMITS) return false;
      this.slowCommitsInARow = 0;
      return true;
    }
    this.slowCommitsInARow = 0;
    // The usual commit, moving slowly, and only with commits that were not slow.
    this.commitBaselineMs = base === undefined ? ms : 0.9 * base + 0.1 * ms;
    return false;
  }

  private backOff(reason: Backoff, now: number): BackedOff {
    this.current = Math.max(this.min, Math.floor(this.current * MAX_SHRINK));
    const pauseMs = Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** Math.max(0, this.pushbacksInARow - 1));
    this.pauseUntil = now + pauseMs;
    this.cooldown = COOLDOWN_BATCHES;
    return { reason, pauseMs, size: this.current };
  }

  private resize(): void {
    // The byte bound holds at once (not by MAX_SHRINK steps): it is about memory, not pace.
    const byBytes = this.bytesPerEvent === undefined ? this.max : Math.max(this.min, Math.floor(this.maxBytes / this.bytesPerEvent));
    const max = Math.min(this.max, byBytes);
    if (this.current > max) this.current = max;
    if (this.msPerEvent === undefined) return;
    const ideal = this.o.targetMs / Math.max(this.msPerEvent, 1e-6);
    let ratio = ideal / this.current;
    if (Math.abs(ratio - 1) <= DEAD_BAND) return;
    ratio = clamp(ratio, MAX_SHRINK, this.cooldown > 0 ? 1 : MAX_GROWTH);
    this.current = clamp(Math.round(this.current * ratio), this.min, max);
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
