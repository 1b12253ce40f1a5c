// normalize: raw events → interactions (SPEC §5). A batch is one short transaction: claim and
// mark pending events, map them in memory, upsert the interactions, dead-letter the failures,
// move the ledger — all or nothing, so a kill at any point loses and duplicates nothing.
import { errorMessage } from '../errors.js';
import { providers } from '../providers/index.js';
import { PayloadError, type NormalizedInteraction, type Provider } from '../providers/types.js';
import { cleanJson, cleanText } from '../text.js';
import type { Counts } from './engine/ledger.js';
import type { BatchInput, BatchOutput, Stage } from './engine/runner.js';
import * as sql from './normalize-sql.js';

interface Mapped {
  interactions: sql.InteractionRow[];
  deadLetters: sql.DeadLetterColumns;
  skipped: number;
}

/**
 * JSON text for the server. jsonb and text reject NUL and lone surrogates; what a provider builds
 * from a jsonb payload rarely holds either, so the copy-and-clean pass runs only when the text
 * shows one (JSON.stringify escapes both, which makes them cheap to spot).
 */
export function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\u0000') || /\\ud[89a-f]/i.test(text) ? JSON.stringify(cleanJson(value)) : text;
}

function emptyMapped(): Mapped {
  return {
    interactions: [],
    deadLetters: { rawEventId: [], userId: [], provider: [], error: [], context: [] },
    skipped: 0,
  };
}

function deadLetter(out: Mapped, row: sql.RawEventRow, err: unknown): void {
  const issues = err instanceof PayloadError ? err.issues : [];
  out.deadLetters.rawEventId.push(row.id);
  out.deadLetters.userId.push(row.user_id);
  out.deadLetters.provider.push(row.provider);
  out.deadLetters.error.push(cleanText(errorMessage(err)).slice(0, 2000));
  out.deadLetters.context.push(
    JSON.stringify(cleanJson({ raw_event_id: row.id, source_id: row.source_id, issues, ...(err instanceof PayloadError ? {} : { kind: err instanceof Error ? err.name : typeof err }) })),
  );
}

/** Maps a batch in memory. Pure apart from the registry: no I/O, so it is easy to test and fast. */
export function mapRawEvents(rows: sql.RawEventRow[], registry: Record<string, Provider> = providers): Mapped {
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
      const result = provider.normalize({ id: row.id, userId: row.user_id, provider: row.provider, sourceId: row.source_id, occurredAt: row.occurred_at, payload: row.payload });
      if (result.kind === 'skip') {
        out.skipped++;
        continue;
      }
      for (const interaction of result.interactions) byKey.set(`${row.user_id}\u0001${row.provider}\u0001${interaction.sourceId}`, { row, interaction });
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

function countsOf(taken: number, mapped: Mapped, written: { inserted: number; updated: number }): Counts {
  return {
    events: taken,
    interactions: mapped.interactions.length,
    inserted: written.inserted,
    updated: written.updated,
    unchanged: mapped.interactions.length - written.inserted - written.updated,
    skipped: mapped.skipped,
    dead_lettered: mapped.deadLetters.rawEventId.length,
  };
}

function lastKey(rows: sql.RawEventRow[]): { occurredAt: string; id: string } | undefined {
  let last: sql.RawEventRow | undefined;
  for (const r of rows) {
    const t = r.occurred_at?.getTime() ?? Number.NEGATIVE_INFINITY;
    const lt = last?.occurred_at?.getTime() ?? Number.NEGATIVE_INFINITY;
    if (!last || t > lt || (t === lt && r.id > last.id)) last = r;
  }
  return last && { occurredAt: last.occurred_at?.toISOString() ?? '-infinity', id: last.id };
}

async function realBatch(input: BatchInput): Promise<BatchOutput> {
  return input.db.transaction(async (tx) => {
    await sql.relaxCommitDurability(tx);
    const rows = await sql.claimRawEvents(tx, input.range, input.size);
    if (rows.length === 0) return { taken: 0, counts: {} };
    const mapped = mapRawEvents(rows);
    const written = mapped.interactions.length === 0 ? { inserted: 0, updated: 0 } : await sql.upsertInteractions(tx, jsonText(mapped.interactions));
    await sql.insertDeadLetters(tx, 'normalize', mapped.deadLetters);
    const counts = countsOf(rows.length, mapped, written);
    await input.record(tx, counts, lastKey(rows));
    return { taken: rows.length, counts };
  });
}

async function dryBatch(input: BatchInput): Promise<BatchOutput> {
  const after = input.cursor as { occurredAt: string; id: string } | undefined;
  const rows = await sql.peekRawEvents(input.db, input.range, input.size, after);
  if (rows.length === 0) return { taken: 0, counts: {} };
  const mapped = mapRawEvents(rows);
  // Nothing is written: every mapped interaction counts as what would be upserted.
  const counts = countsOf(rows.length, mapped, { inserted: mapped.interactions.length, updated: 0 });
  const sorted = [...rows].sort((a, b) => (a.occurred_at?.getTime() ?? -Infinity) - (b.occurred_at?.getTime() ?? -Infinity) || (a.id < b.id ? -1 : 1));
  return { taken: rows.length, counts: { ...counts, inserted: 0, would_upsert: counts.inserted ?? 0 }, cursor: lastKey(sorted) };
}

export const normalizeStage: Stage = {
  name: 'normalize',
  countPending: (db, range) => sql.countPendingRawEvents(db, range),
  batch: (input) => (input.range.dryRun ? dryBatch(input) : realBatch(input)),
};
