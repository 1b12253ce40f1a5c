// normalize: raw events → interactions (SPEC §5). A batch is one short transaction: claim and
// mark pending events, map them in memory, upsert the interactions, dead-letter the failures,
// move the ledger — all or nothing, so a kill at any point loses and duplicates nothing.
import { relaxCommitDurability } from '../db/session.js';
import type { DeadLetterOf } from '../dead-letters/letters.js';
import { writeDeadLetters } from '../dead-letters/sql.js';
import { errorMessage } from '../errors.js';
import { providers } from '../providers/index.js';
import { PayloadError, type NormalizedInteraction, type Provider } from '../providers/types.js';
import { cleanJson } from '../text.js';
import type { Counts } from './engine/ledger.js';
import type { BatchInput, BatchOutput, DryBatchInput, DryBatchOutput, Stage } from './engine/runner.js';
import * as sql from './normalize-sql.js';

type NormalizeCount = 'interactions' | 'inserted' | 'updated' | 'unchanged' | 'skipped' | 'dead_lettered' | 'would_upsert';

/** Where a dry run's keyset walk of the queue is. */
type Cursor = { occurredAt: string; id: string } | undefined;

interface Mapped {
  interactions: sql.InteractionRow[];
  deadLetters: DeadLetterOf<'normalize'>[];
  skipped: number;
}

/**
 * JSON text for the server. jsonb and text reject NUL and lone surrogates; what a provider builds
 * from a jsonb payload rarely holds either, so the copy-and-clean pass runs only when the text
 * shows one (JSON.stringify escapes both, which makes them cheap to spot).
 */
function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\u0000') || /\\ud[89a-f]/i.test(text) ? JSON.stringify(cleanJson(value)) : text;
}

function emptyMapped(): Mapped {
  return { interactions: [], deadLetters: [], skipped: 0 };
}

function deadLetter(out: Mapped, row: sql.RawEventRow, err: unknown): void {
  out.deadLetters.push({
    stage: 'normalize',
    rawEventId: row.id,
    userId: row.user_id,
    provider: row.provider,
    error: errorMessage(err),
    context: {
      raw_event_id: row.id,
      source_id: row.source_id,
      issues: err instanceof PayloadError ? err.issues : [],
      ...(err instanceof PayloadError ? {} : { kind: err instanceof Error ? err.name : typeof err }),
    },
  });
}

/** Maps a batch in memory. Pure apart from the registry: no I/O, so it is easy to test and fast. */
function mapRawEvents(rows: sql.RawEventRow[], registry: Record<string, Provider> = providers): Mapped {
  const out = emptyMapped();
  // Two events of one batch may yield the same interaction key; the later one wins, as it would
  // across batches (and ON CONFLICT may not touch one row twice in a statement).
  const byKey = new Map<string, { row: sql.RawEventRow; interaction: NormalizedInteraction }>();
  for (const row of rows) {
    const provider = registry[row.provider];
    if (!provider) {
      deadLetter(out, row, new PayloadError(`unknown provider "${row.provider}"; known: ${Object.keys(registry).join(', ')}`));
      continue;
    }
    try {
      const result = provider.normalize({
        id: row.id,
        userId: row.user_id,
        provider: row.provider,
        sourceId: row.source_id,
        occurredAt: row.occurred_at,
        payload: row.payload,
      });
      if (result.kind === 'skip') {
        out.skipped++;
        continue;
      }
      for (const interaction of result.interactions)
        byKey.set(`${row.user_id}\u0001${row.provider}\u0001${interaction.sourceId}`, { row, interaction });
    } catch (err) {
      deadLetter(out, row, err);
    }
  }
  for (const { row, interaction: i } of byKey.values()) {
    out.interactions.push({
      user_id: row.user_id,
      source: row.provider,
      source_id: i.sourceId,
      type: i.type,
      subject: i.subject,
      body_text: i.bodyText,
      body_raw: i.bodyRaw,
      occurred_at: i.occurredAt.toISOString(),
      source_meta: i.sourceMeta,
      batch_id: row.batch_id,
      raw_event_id: row.id,
    });
  }
  return out;
}

function countsOf(taken: number, mapped: Mapped, written: { inserted: number; updated: number }): Counts<NormalizeCount> {
  return {
    events: taken,
    interactions: mapped.interactions.length,
    inserted: written.inserted,
    updated: written.updated,
    unchanged: mapped.interactions.length - written.inserted - written.updated,
    skipped: mapped.skipped,
    dead_lettered: mapped.deadLetters.length,
  };
}

function lastKey(rows: sql.RawEventRow[]): Cursor {
  let last: sql.RawEventRow | undefined;
  for (const r of rows) {
    const t = r.occurred_at?.getTime() ?? Number.NEGATIVE_INFINITY;
    const lt = last?.occurred_at?.getTime() ?? Number.NEGATIVE_INFINITY;
    if (!last || t > lt || (t === lt && r.id > last.id)) last = r;
  }
  return last && { occurredAt: last.occurred_at?.toISOString() ?? '-infinity', id: last.id };
}

async function realBatch(input: BatchInput): Promise<BatchOutput<NormalizeCount>> {
  return input.db.transaction(async (tx) => {
    await relaxCommitDurability(tx);
    const rows = await sql.claimRawEvents(tx, input.range, input.size);
    if (rows.length === 0) return { taken: 0, counts: {} };
    const mapped = mapRawEvents(rows);
    const written =
      mapped.interactions.length === 0 ? { inserted: 0, updated: 0 } : await sql.upsertInteractions(tx, jsonText(mapped.interactions));
    await writeDeadLetters(tx, mapped.deadLetters);
    const counts = countsOf(rows.length, mapped, written);
    await input.record(tx, counts, lastKey(rows));
    return { taken: rows.length, counts };
  });
}

async function dryBatch(input: DryBatchInput<Cursor>): Promise<DryBatchOutput<NormalizeCount, Cursor>> {
  const rows = await sql.peekRawEvents(input.db, input.range, input.size, input.cursor);
  if (rows.length === 0) return { taken: 0, counts: {}, cursor: input.cursor };
  const mapped = mapRawEvents(rows);
  // Nothing is written: every mapped interaction counts as what would be upserted.
  const counts = countsOf(rows.length, mapped, { inserted: mapped.interactions.length, updated: 0 });
  const sorted = [...rows].sort(
    (a, b) => (a.occurred_at?.getTime() ?? -Infinity) - (b.occurred_at?.getTime() ?? -Infinity) || (a.id < b.id ? -1 : 1),
  );
  return { taken: rows.length, counts: { ...counts, inserted: 0, would_upsert: counts.inserted ?? 0 }, cursor: lastKey(sorted) };
}

export const normalizeStage: Stage<NormalizeCount, Cursor> = {
  name: 'normalize',
  countPending: (db, range) => sql.countPendingRawEvents(db, range),
  batch: realBatch,
  dryBatch,
};
