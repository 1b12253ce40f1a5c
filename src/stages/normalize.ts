// normalize: raw events → interactions (SPEC §5). A batch is one short transaction: claim
// pending events and lock their open errors, map them in memory (normalize-map.ts), upsert the
// interactions — rows the database refuses isolated and dead-lettered, never the batch — apply
// withdrawals, dead-letter the failures, resolve the errors that went away, move the ledger.
// All or nothing, so a kill at any point loses and duplicates nothing.
import type { Queryable } from '../db/connect.js';
import { relaxCommitDurability } from '../db/session.js';
import { lockOpenErrors, resolveHeldErrors, writeDeadLetters } from '../dead-letters/sql.js';
import { providers } from '../providers/index.js';
import { writeIsolating } from './engine/isolate.js';
import type { Counts } from './engine/ledger.js';
import type { BatchInput, BatchOutput, DryBatchInput, DryBatchOutput, Stage } from './engine/runner.js';
import { noTurns } from './engine/turns.js';
import { type Mapped, mapRawEvents, normalizeDeadLetter } from './normalize-map.js';
import * as cols from './normalize-columns.js';
import * as sql from './normalize-sql.js';

type NormalizeCount =
  | 'interactions'
  | 'inserted'
  | 'updated'
  | 'unchanged'
  | 'skipped'
  | 'items_skipped'
  | 'dead_lettered'
  | 'recurring'
  | 'resolved'
  | 'withdrawn'
  | 'would_upsert';

/** Where a dry run's keyset walk of the queue is. */
type Cursor = { occurredAt: string; id: string } | undefined;

/**
 * A message normalized after its sender withdrew it (the withdrawal was imported first) is
 * stored withdrawn: the batch's interactions whose withdrawal notice is already a raw event.
 */
async function applyKnownWithdrawals(tx: Queryable, mapped: Mapped): Promise<void> {
  const keys: sql.RawKeys = { userIds: [], providers: [], sourceIds: [] };
  const of: cols.InteractionRow[] = [];
  for (const i of mapped.interactions) {
    const key = providers[i.source]?.retractionKey?.(i.source_id);
    if (key === undefined) continue;
    keys.userIds.push(i.user_id);
    keys.providers.push(i.source);
    keys.sourceIds.push(key);
    of.push(i);
  }
  if (of.length === 0) return;
  for (const n of await sql.existingRawKeys(tx, keys)) {
    const i = of[n]!;
    i.subject = null;
    i.body_text = null;
    i.body_raw = sql.withoutText(i.body_raw);
    i.body_at = undefined; // no longer a part of the payload
    i.source_meta = { ...i.source_meta, withdrawn: true };
  }
}

/** What a batch did to dead letters: new or recurring ones written, open ones resolved. */
interface Letters {
  recurring: number;
  resolved: number;
}

function countsOf(
  taken: number,
  interactions: number,
  mapped: Mapped,
  written: sql.Written,
  withdrawn: number,
  letters?: Letters,
): Counts<NormalizeCount> {
  return {
    events: taken,
    interactions,
    inserted: written.inserted,
    updated: written.updated,
    unchanged: interactions - written.inserted - written.updated,
    skipped: mapped.skipped,
    ...(mapped.itemsSkipped > 0 ? { items_skipped: mapped.itemsSkipped } : {}),
    dead_lettered: mapped.deadLetters.length,
    ...(withdrawn > 0 ? { withdrawn } : {}),
    ...(letters?.recurring ? { recurring: letters.recurring } : {}),
    ...(letters?.resolved ? { resolved: letters.resolved } : {}),
  };
}

/** Infinity − Infinity is NaN: equal instants compare 0 whatever their size. */
const compareInstants = (a: number, b: number): number => (a === b ? 0 : a < b ? -1 : 1);

function lastKey(rows: sql.RawEventRow[]): Cursor {
  let last: sql.RawEventRow | undefined;
  for (const r of rows) {
    const t = sql.instantOf(r.occurred_at);
    const lt = last ? sql.instantOf(last.occurred_at) : Number.NEGATIVE_INFINITY;
    if (!last || t > lt || (t === lt && r.id > last.id)) last = r;
  }
  return last && { occurredAt: sql.cursorTime(last.occurred_at), id: last.id };
}

const addWritten = (a: sql.Written, b: sql.Written): sql.Written => ({ inserted: a.inserted + b.inserted, updated: a.updated + b.updated });

/** What a held batch did, and how much it weighed (the interactions' text sent to the database). */
interface Held {
  counts: Counts<NormalizeCount>;
  bytes: number;
}

/**
 * A batch's work on raw events its transaction holds — claimed from the queue, or by
 * `errors retry` through their errors — whose open errors it has locked (`openErrors`, their
 * ctids): map, write the interactions (rows the database refuses isolated and dead-lettered),
 * apply withdrawals, dead-letter the failures, resolve the errors of the events that went
 * through (or were skipped, which is their outcome), move the ledger. Once mapped, the rows'
 * payloads are let go (set to null): nothing after the mapping reads them.
 */
export async function normalizeHeld(
  tx: Queryable,
  rows: sql.RawEventRow[],
  openErrors: string[],
  input: Pick<BatchInput, 'record' | 'runId'> & Partial<Pick<BatchInput, 'writeTurn'>>,
): Promise<Held> {
  const mapped = mapRawEvents(rows);
  // Mapped, and withdrawals looked up (a read), outside the turn: that is the work a pipelined
  // run overlaps with another batch's write.
  await applyKnownWithdrawals(tx, mapped);
  const batch = columnsBeforeTurn(rows, mapped);
  const take = input.writeTurn ?? noTurns.take;
  const w = await take(() => writeColumns(tx, rows, mapped, batch));
  // Resolved after the turn, still in the batch's transaction: the errors are this batch's alone
  // (locked since its claim), and a retry's resolving UPDATE (a new version of each error in every
  // index) then overlaps the other batch's write instead of lengthening the turn.
  const resolved = await resolveHeldErrors(tx, {
    at: openErrors,
    stillFailing: w.letters.keys,
    runId: input.runId,
    reason: 'normalize succeeded',
  });
  const counts = countsOf(rows.length, batch.count - w.refused, mapped, w.written, w.withdrawn, {
    recurring: w.letters.recurring,
    resolved,
  });
  await input.record(tx, counts, lastKey(rows));
  return { counts, bytes: w.bytes };
}

/** A batch's interactions as its upsert takes them, and how many there are. */
interface BatchColumns {
  columns: string[];
  count: number;
}

/**
 * The batch's upsert parameters, built before its write turn: in the turn the database waited
 * for them (11 ms a batch of 3,000 Instagram events, 5% of a one-worker run). Built, they are all
 * the batch keeps of its interactions, and its rows let go of their parsed payloads: a batch
 * waiting for its turn holds the text it will send and little else (built early while the
 * interactions were kept, a one-worker run peaked ~20 MB higher). A part written again after a
 * row was refused is taken from these columns.
 */
function columnsBeforeTurn(rows: sql.RawEventRow[], mapped: Mapped): BatchColumns {
  for (const r of rows) r.payload = null;
  const batch = { columns: cols.interactionColumns(mapped.interactions), count: mapped.interactions.length };
  mapped.interactions = [];
  return batch;
}

async function writeColumns(tx: Queryable, rows: sql.RawEventRow[], mapped: Mapped, batch: BatchColumns) {
  const byRawEvent = new Map(rows.map((r) => [r.id, r]));
  // What the batch sends: nothing when every event was skipped or refused before the write.
  let bytes = 0;
  if (batch.count > 0) for (const c of batch.columns) bytes += c.length;
  // Read back only when a row was refused: the parts of an isolated failure come from them.
  let values: unknown[][] | undefined;
  const valuesOf = () => (values ??= cols.columnValues(batch.columns));
  const { result: written, rejected } = await writeIsolating(
    tx,
    Array.from({ length: batch.count }, (_, k) => k),
    (part) => sql.upsertInteractions(tx, part.length === batch.count ? batch.columns : cols.partColumns(valuesOf(), part)),
    addWritten,
    { inserted: 0, updated: 0 },
  );
  for (const { row: k, error } of rejected) {
    const ref = cols.rowRef(valuesOf(), k);
    const raw = byRawEvent.get(ref.raw_event_id)!;
    mapped.deadLetters.push(
      normalizeDeadLetter({
        row: raw,
        error,
        item: ref.source_id === raw.source_id ? undefined : ref.source_id.slice(0, 200),
        sqlState: error.sqlState,
      }),
    );
  }
  const withdrawn = mapped.retractions.length === 0 ? 0 : await sql.withdrawInteractions(tx, mapped.retractions);
  const letters = await writeDeadLetters(tx, mapped.deadLetters);
  return { written, refused: rejected.length, withdrawn, letters, bytes };
}

async function realBatch(input: BatchInput): Promise<BatchOutput<NormalizeCount>> {
  return input.db.transaction(async (tx) => {
    await relaxCommitDurability(tx);
    const rows = await sql.claimRawEvents(tx, input.range, input.size);
    if (rows.length === 0) return { taken: 0, counts: {} };
    // Before any write: an `errors retry` holding one of these errors finishes first (see lockOpenErrors).
    const openErrors = await lockOpenErrors(
      tx,
      'normalize',
      rows.map((r) => r.id),
    );
    const { counts, bytes } = await normalizeHeld(tx, rows, openErrors, input);
    return { taken: rows.length, counts, bytes };
  });
}

async function dryBatch(input: DryBatchInput<Cursor>): Promise<DryBatchOutput<NormalizeCount, Cursor>> {
  const rows = await sql.peekRawEvents(input.db, input.range, input.size, input.cursor);
  if (rows.length === 0) return { taken: 0, counts: {}, cursor: input.cursor };
  const mapped = mapRawEvents(rows);
  // Nothing is written: every mapped interaction counts as what would be upserted.
  const counts = countsOf(rows.length, mapped.interactions.length, mapped, { inserted: mapped.interactions.length, updated: 0 }, 0);
  const sorted = [...rows].sort(
    (a, b) => compareInstants(sql.instantOf(a.occurred_at), sql.instantOf(b.occurred_at)) || (a.id < b.id ? -1 : 1),
  );
  return { taken: rows.length, counts: { ...counts, inserted: 0, would_upsert: counts.inserted ?? 0 }, cursor: lastKey(sorted) };
}

/**
 * What a batch may send (its interactions' columns as text). It was 2 MB while the rows went as
 * objects, each with its keys: as columns the same rows are 9–22% less text, and 1,600 KB keeps
 * the batches, and the memory they hold, where they were (about 2,500 web forms, 30 50 KB emails).
 */
const BATCH_BYTES = 1_600 * 1024;

export const normalizeStage: Stage<NormalizeCount, Cursor> = {
  name: 'normalize',
  pipelined: true,
  batchBytes: BATCH_BYTES,
  countPending: (db, range, before) => sql.countPendingRawEvents(db, range, before),
  batch: realBatch,
  dryBatch,
};
