// `embeddings backfill` (SPEC §10, §13): copies every valid legacy `embedding` text into the
// vector column, GitLab-style. First the sync trigger goes on, so values an older application
// writes from then on are copied as they are written; then one pass over the table in keyset
// ranges. A batch is one short transaction: claim an open range (FOR UPDATE SKIP LOCKED:
// parallel processes and workers take different ranges), take its next ids, copy their valid
// values in one UPDATE, record the invalid ones (once each) as dead letters, move the range's
// cursor and the ledger's checkpoint, commit. A kill rolls back the batch whole; the next run
// continues from the cursors. Nothing is read twice within a pass.
import type { Clock } from '../clock.js';
import type { Db } from '../db/connect.js';
import { retryOnClash } from '../db/retry.js';
import { relaxCommitDurability } from '../db/session.js';
import { embeddingColumns, type EmbeddingColumns, type SwapPhase } from '../db/vector-column.js';
import type { DeadLetterOf } from '../dead-letters/letters.js';
import { writeDeadLetters } from '../dead-letters/sql.js';
import type { Logger } from '../logger.js';
import type { Counts } from '../stages/engine/ledger.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import type { RangeOptions } from '../stages/engine/range.js';
import { runStage, type RunSummary, type Stage } from '../stages/engine/runner.js';
import * as sql from './backfill-sql.js';
import { withLockRetry } from './lock.js';
import { installSyncTrigger, readSyncTrigger } from './swap-sql.js';
import { countEmbeddings } from './verify-sql.js';

type BackfillCount = 'copied' | 'present' | 'empty' | 'wrong_dimension' | 'malformed' | 'non_finite' | 'dead_lettered';

/** The ledger's name for these runs (`runs list --command embeddings_backfill`). */
export const BACKFILL_COMMAND = 'embeddings_backfill';

const KIND_TEXT = {
  wrong_dimension: (r: sql.RejectedRow) => `${r.dimensions} dimensions, not 1536`,
  malformed: () => 'not a JSON array of numbers',
  non_finite: () => 'NaN, Infinity, or a value beyond float4',
} as const;

function deadLetter(r: sql.RejectedRow): DeadLetterOf<'swap'> {
  return {
    stage: 'swap',
    rawEventId: r.raw_event_id,
    userId: r.user_id,
    provider: r.provider,
    error: `legacy embedding ${r.id} is ${r.kind.replace('_', ' ')}: ${KIND_TEXT[r.kind](r)}; left null (embeddings backfill --reembed)`,
    context: {
      embedding_id: r.id,
      owner_type: r.owner_type,
      owner_id: r.owner_id,
      kind: r.kind,
      dimensions: r.kind === 'wrong_dimension' ? r.dimensions : null,
      length: r.length,
      excerpt: r.excerpt,
    },
  };
}

/** The copy as a stage of the engine: `pass` is the pass its batches work on (null: nothing to do). */
function backfillStage(cols: EmbeddingColumns, legacy: string, pass: number | null): Stage<BackfillCount, string | null> {
  return {
    name: BACKFILL_COMMAND,
    countPending: async (db, range) => {
      if (range.dryRun) return countEmbeddings(db);
      const state = await sql.currentPass(db);
      return state && state.pass === pass ? state.remaining : 0;
    },
    batch: (input) =>
      retryOnClash(() =>
        input.db.transaction(async (tx) => {
          await relaxCommitDurability(tx);
          if (pass === null) return { taken: 0, counts: {} };
          for (;;) {
            const range = await sql.claimRange(tx, pass);
            if (!range) return { taken: 0, counts: {} }; // every open range is done or held by another batch
            const ids = await sql.nextIds(tx, range.cursor ?? range.lo, range.hi, input.size);
            if (ids.length === 0) {
              await sql.advanceRange(tx, pass, range.seq, null, 0, true);
              continue;
            }
            const out = await sql.copyLegacy(tx, cols, legacy, ids);
            const rejected = await sql.describeRejected(tx, legacy, out.rejected);
            const fresh = await sql.recordRejects(tx, rejected);
            const letters = rejected.filter((r) => fresh.has(r.id)).map(deadLetter);
            await writeDeadLetters(tx, letters);
            const cursor = ids.at(-1)!;
            await sql.advanceRange(tx, pass, range.seq, cursor, ids.length, ids.length < input.size);
            const counts: Counts<BackfillCount> = {
              events: ids.length,
              copied: out.copied,
              present: out.present,
              empty: out.empty,
              wrong_dimension: rejected.filter((r) => r.kind === 'wrong_dimension').length,
              malformed: rejected.filter((r) => r.kind === 'malformed').length,
              non_finite: rejected.filter((r) => r.kind === 'non_finite').length,
              dead_lettered: letters.length,
            };
            await input.record(tx, counts, { pass, range: range.seq, cursor });
            return { taken: ids.length, counts };
          }
        }),
      ),
    dryBatch: async (input) => {
      const rows = await sql.peekKinds(input.db, cols, legacy, input.cursor ?? null, input.size);
      const n = (kind: string) => rows.filter((r) => r.kind === kind).length;
      const counts: Counts<BackfillCount> = {
        events: rows.length,
        copied: n('valid'),
        present: n('present'),
        empty: n('empty'),
        wrong_dimension: n('wrong_dimension'),
        malformed: n('malformed'),
        non_finite: n('non_finite'),
      };
      return { taken: rows.length, counts, cursor: rows.at(-1)?.id ?? input.cursor ?? null };
    },
  };
}

export interface BackfillOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  range: RangeOptions;
  workers?: number | undefined;
  bar?: ProgressBar | undefined;
  signal?: AbortSignal | undefined;
  lockTimeoutMs: number;
  lockAttempts: number;
}

export interface BackfillResult {
  phase: SwapPhase;
  /** Why nothing ran (the columns are swapped already, or there is no legacy column). */
  skipped: string | null;
  trigger: 'installed' | 'present' | null;
  pass: number | null;
  newPass: boolean;
  summary: RunSummary | null;
}

/** Rows per range: ten batches at least, at most ten thousand ranges. */
const rowsPerRange = (total: number, batchSize: number) => Math.max(batchSize * 10, Math.ceil(total / 10_000));

/**
 * The pass to work on: the open one, else a new one when rows are left to copy (a value the
 * trigger could not parse, a trigger someone disabled), else none. Planning is serialised by a
 * table lock, so two processes starting together share one pass.
 */
async function ensurePass(db: Db, cols: EmbeddingColumns, legacy: string, batchSize: number) {
  const state = await sql.currentPass(db);
  if (state && state.open > 0) return { pass: state.pass, created: false };
  if ((await sql.countUncopied(db, cols, legacy)) === 0) return { pass: null, created: false };
  return db.transaction(async (tx) => {
    await sql.lockRanges(tx);
    const again = await sql.currentPass(tx);
    if (again && again.open > 0) return { pass: again.pass, created: false };
    const total = await countEmbeddings(tx);
    const per = rowsPerRange(total, batchSize);
    const bounds = await sql.rangeBounds(tx, per);
    // (null, b1], (b1, b2], …, (bn, null): every id there is or will be falls in one range.
    const lo = [null, ...bounds];
    const hi = [...bounds, null];
    const rows = hi.map((_, i) => (i < bounds.length ? per : total - per * bounds.length));
    const pass = (again?.pass ?? 0) + 1;
    await sql.insertRanges(tx, pass, { lo, hi, rows });
    return { pass, created: true };
  });
}

export async function runEmbeddingsBackfill(o: BackfillOptions): Promise<BackfillResult> {
  const cols = await embeddingColumns(o.db);
  const skip = (skipped: string): BackfillResult => ({
    phase: cols.phase,
    skipped,
    trigger: null,
    pass: null,
    newPass: false,
    summary: null,
  });
  if (cols.phase === 'swapped') return skip('the columns are swapped already: embedding is the vector column, nothing to copy');
  if (cols.legacy === null) return skip('there is no legacy embedding column to copy from');
  const legacy = cols.legacy;
  const run = (pass: number | null) =>
    runStage(backfillStage(cols, legacy, pass), {
      db: o.db,
      clock: o.clock,
      logger: o.logger,
      range: o.range,
      workers: o.workers,
      bar: o.bar,
      signal: o.signal,
      args: { pass },
    });
  if (o.range.dryRun) return { phase: cols.phase, skipped: null, trigger: null, pass: null, newPass: false, summary: await run(null) };

  let trigger: BackfillResult['trigger'] = 'present';
  const current = await readSyncTrigger(o.db);
  if (current?.direction !== 'legacy' || !current.enabled) {
    await withLockRetry(
      o.db,
      { lockTimeoutMs: o.lockTimeoutMs, attempts: o.lockAttempts, logger: o.logger, what: 'install the sync trigger', signal: o.signal },
      (tx) => installSyncTrigger(tx, 'legacy'),
    );
    trigger = 'installed';
    o.logger.info('sync trigger installed: legacy values written from now on fill the vector column as they are written');
  }
  const { pass, created } = await ensurePass(o.db, cols, legacy, o.range.batchSize);
  if (created) o.logger.info(`backfill pass ${pass} planned`);
  return { phase: cols.phase, skipped: null, trigger, pass, newPass: created, summary: await run(pass) };
}
