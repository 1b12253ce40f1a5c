// Mapping a batch of raw events in memory (SPEC §5): each event through its provider, each
// interaction checked against what the database can store, every outcome counted. Pure apart
// from the provider registry: no I/O, so it is easy to test and fast.
import type { DeadLetterOf } from '../dead-letters/letters.js';
import { errorMessage } from '../errors.js';
import { providers } from '../providers/index.js';
import { PayloadError, type NormalizedInteraction, type Provider } from '../providers/types.js';
import type { InteractionRow } from './normalize-columns.js';
import type { RawEventRow } from './normalize-sql.js';

/**
 * The longest key the unique indexes take, in UTF-8 bytes. A btree entry holds at most ~2,700
 * bytes, shared with the user id and the source; past this a key is refused at write time.
 */
export const MAX_KEY_BYTES = 2000;

/** A message withdrawn by its sender, by its key. */
interface Retraction {
  user_id: string;
  source: string;
  source_id: string;
}

export interface Mapped {
  interactions: InteractionRow[];
  deadLetters: DeadLetterOf<'normalize'>[];
  retractions: Retraction[];
  skipped: number;
  /** Items of events that hold several (a webhook body) valid but not interactions. */
  itemsSkipped: number;
}

export interface NormalizeFailure {
  row: RawEventRow;
  error: unknown;
  /** The item of a payload holding several (a message of a webhook body), when it is one item's failure. */
  item?: string | undefined;
  sqlState?: string | undefined;
}

export function normalizeDeadLetter(f: NormalizeFailure): DeadLetterOf<'normalize'> {
  const payloadError = f.error instanceof PayloadError ? f.error : undefined;
  return {
    stage: 'normalize',
    rawEventId: f.row.id,
    userId: f.row.user_id,
    provider: f.row.provider,
    error: errorMessage(f.error),
    context: {
      raw_event_id: f.row.id,
      source_id: f.row.source_id,
      issues: payloadError?.issues ?? [],
      ...(f.item === undefined ? {} : { item: f.item }),
      ...(payloadError ? {} : { kind: f.sqlState ? 'database' : f.error instanceof Error ? f.error.name : typeof f.error }),
      ...(f.sqlState ? { sqlstate: f.sqlState } : {}),
    },
  };
}

/** Why the database could not store this interaction as it is, or undefined when it can. */
function unstorable(i: NormalizedInteraction): PayloadError | undefined {
  const t = i.occurredAt.getTime();
  const year = Number.isFinite(t) ? i.occurredAt.getUTCFullYear() : Number.NaN;
  if (!(year >= 1 && year <= 9999)) {
    const shown = Number.isFinite(t) ? i.occurredAt.toISOString() : 'an invalid date';
    return new PayloadError(`the interaction's time ${shown} is outside the years 0001-9999 the database stores`, [
      { path: 'occurred_at', message: `is ${shown}, outside 0001-01-01..9999-12-31` },
    ]);
  }
  const bytes = Buffer.byteLength(i.sourceId, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    return new PayloadError(`the interaction's id is ${bytes} bytes long; the database keys take at most ${MAX_KEY_BYTES}`, [
      { path: 'source_id', message: `is ${bytes} bytes, more than ${MAX_KEY_BYTES}` },
    ]);
  }
  return undefined;
}

const WHOLE_PAYLOAD = { path: [] };

function toRow(row: RawEventRow, i: NormalizedInteraction): InteractionRow {
  return {
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
    // A provider that keeps the whole payload (web forms, Twilio) need not say so.
    body_at: i.bodyRawAt ?? (i.bodyRaw === row.payload ? WHOLE_PAYLOAD : undefined),
  };
}

export function mapRawEvents(rows: RawEventRow[], registry: Record<string, Provider> = providers): Mapped {
  const out: Mapped = { interactions: [], deadLetters: [], retractions: [], skipped: 0, itemsSkipped: 0 };
  const fail = (f: NormalizeFailure) => out.deadLetters.push(normalizeDeadLetter(f));
  // Two events of one batch may yield the same interaction key; the later one wins, as it would
  // across batches (and ON CONFLICT may not touch one row twice in a statement).
  const byKey = new Map<string, { row: RawEventRow; interaction: NormalizedInteraction }>();
  for (const row of rows) {
    const provider = Object.hasOwn(registry, row.provider) ? registry[row.provider] : undefined;
    if (!provider) {
      fail({ row, error: new PayloadError(`unknown provider "${row.provider}"; known: ${Object.keys(registry).join(', ')}`) });
      continue;
    }
    try {
      const result = provider.normalize({
        id: row.id,
        userId: row.user_id,
        provider: row.provider,
        sourceId: row.source_id,
        // An infinite stored time is no time: the payload's own is used, or the event fails as one without.
        occurredAt: row.occurred_at instanceof Date ? row.occurred_at : null,
        payload: row.payload,
      });
      if (result.kind === 'skip') {
        out.skipped++;
        continue;
      }
      out.itemsSkipped += result.skipped ?? 0;
      for (const r of result.rejected ?? []) fail({ row, error: r.error, item: r.item });
      for (const sourceId of result.retracted ?? [])
        out.retractions.push({ user_id: row.user_id, source: row.provider, source_id: sourceId });
      const several = result.interactions.length > 1;
      for (const interaction of result.interactions) {
        const problem = unstorable(interaction);
        if (problem) fail({ row, error: problem, item: several ? interaction.sourceId.slice(0, 200) : undefined });
        else byKey.set(`${row.user_id}\u0001${row.provider}\u0001${interaction.sourceId}`, { row, interaction });
      }
    } catch (err) {
      fail({ row, error: err });
    }
  }
  for (const { row, interaction } of byKey.values()) out.interactions.push(toRow(row, interaction));
  return out;
}
