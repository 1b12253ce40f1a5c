// `trace` (SPEC §4, issue 9): one event's path through every table, from whichever id the
// operator has — the raw event's, the provider's (`gmail:18c9…`) or an interaction's — in the
// pipeline's order: the raw event and its import, normalize's outcome, the contact, the chunks,
// the insights, the timeline, every dead letter about it and the runs that touched it. What the
// database cannot tell (which run wrote a row, why an event was skipped) is said, not guessed.
import type { Queryable } from '../db/connect.js';
import { UsageError } from '../errors.js';
import { type ArchivedEvent, archivedEvent } from './archive.js';
import { errorsAbout, runsOf, type Touch, type TraceError, type TraceRun } from './history-sql.js';
import {
  chunksOf,
  contactOf,
  type EventRow,
  eventsById,
  eventsBySource,
  importAudit,
  insightsSince,
  interactionsOf,
  queuedWork,
  timelineOf,
} from './trace-sql.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SOURCE = /^([a-z][a-z0-9_-]*):(.+)$/i;

export type TraceRef = { kind: 'id'; id: string } | { kind: 'source'; provider: string; sourceId: string };

/** A raw event id, an interaction id, or `provider:source_id`; undefined when it is none of them. */
export function parseTraceRef(text: string): TraceRef | undefined {
  const t = text.trim();
  if (UUID.test(t)) return { kind: 'id', id: t.toLowerCase() };
  const m = SOURCE.exec(t);
  return m ? { kind: 'source', provider: m[1]!.toLowerCase(), sourceId: m[2]! } : undefined;
}

type Rows<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;

export interface Trace {
  /** How the argument was matched. */
  foundBy: 'raw_event' | 'interaction' | 'source_id' | 'errors';
  event: EventRow | null;
  /** Where the event went when it was archived (its row is gone from raw_events). */
  archived: ArchivedEvent | null;
  import: { batchId: string | null; audit: Rows<typeof importAudit> | null } | null;
  normalize: { outcome: 'interactions' | 'pending' | 'dead-lettered' | 'no interaction' | 'unknown'; detail: string };
  interactions: Rows<typeof interactionsOf>;
  queue: Rows<typeof queuedWork>;
  contact: Rows<typeof contactOf> | null;
  chunks: Rows<typeof chunksOf>;
  insights: Rows<typeof insightsSince>;
  timeline: Rows<typeof timelineOf>;
  errors: TraceError[];
  runs: TraceRun[];
  /** Facts the database cannot tell. */
  unknown: string[];
}

interface Located {
  foundBy: Trace['foundBy'];
  event: EventRow | null;
  /** The raw event it is about, in raw_events or not (archived, deleted). */
  rawId: string | null;
  /** The interaction asked for, when the argument was one. */
  interactionId: string | null;
}

async function locate(db: Queryable, ref: TraceRef, userId: string | undefined): Promise<Located> {
  if (ref.kind === 'id') {
    const { via, events, rawEventId } = await eventsById(db, ref.id);
    const event = events[0] ?? null;
    if (event && userId && event.user_id !== userId)
      throw new UsageError(`${ref.id} is not an event of user ${userId}`, { hint: 'leave out --user to trace it' });
    return {
      foundBy: via === 'none' ? 'raw_event' : via,
      event,
      rawId: rawEventId,
      interactionId: via === 'interaction' ? ref.id : null,
    };
  }
  const events = await eventsBySource(db, ref.provider, ref.sourceId, userId ?? null);
  if (events.length > 1)
    throw new UsageError(
      `${ref.provider}:${ref.sourceId} is an event of ${events.length} users (${events.map((e) => e.user_id).join(', ')}): give --user`,
    );
  const event = events[0] ?? null;
  return { foundBy: 'source_id', event, rawId: event?.id ?? null, interactionId: null };
}

function normalizeOutcome(event: EventRow | null, t: Pick<Trace, 'interactions' | 'errors'>): Trace['normalize'] {
  if (t.interactions.length > 0) return { outcome: 'interactions', detail: `${t.interactions.length} interaction(s) written` };
  if (!event) return { outcome: 'unknown', detail: 'no raw event: nothing was normalized' };
  if (event.normalize_pending) return { outcome: 'pending', detail: 'queued for normalize (not yet run on it)' };
  const open = t.errors.find((e) => e.stage === 'normalize' && e.status === 'open');
  if (open) return { outcome: 'dead-lettered', detail: `dead letter ${open.id}: ${open.error}` };
  return {
    outcome: 'no interaction',
    detail:
      'normalized without an interaction: skipped (a read receipt, a status callback, a reaction); skips are counted, their reason is not kept per event',
  };
}

/** The whole trace, or a UsageError (exit 2) when nothing in the database matches. */
export async function traceEvent(db: Queryable, ref: TraceRef, userId?: string): Promise<Trace> {
  const { foundBy, event, rawId, interactionId } = await locate(db, ref, userId);
  const archived = !event && rawId ? await archivedEvent(db, rawId) : null;
  // An archived event's interactions, contact and chunks stay: they are traced all the same.
  const interactions = rawId || interactionId ? await interactionsOf(db, rawId, interactionId) : [];
  const interactionIds = interactions.map((i) => i.id);
  const contactId = interactions.find((i) => i.contact_id)?.contact_id ?? event?.contact_id ?? null;
  const source =
    ref.kind === 'source'
      ? // The event's own user: another user's errors about the same provider id are not about it.
        { provider: ref.provider, sourceId: ref.sourceId, userId: event?.user_id ?? userId ?? null }
      : event?.provider && event.source_id
        ? { provider: event.provider, sourceId: event.source_id, userId: event.user_id }
        : null;
  const errors = await errorsAbout(db, {
    rawEventIds: rawId ? [rawId] : [],
    interactionIds,
    contactIds: contactId ? [contactId] : [],
    source,
  });
  if (!event && !archived && interactions.length === 0 && errors.length === 0) {
    const what = ref.kind === 'id' ? ref.id : `${ref.provider}:${ref.sourceId}`;
    throw new UsageError(`no raw event, interaction or dead letter matches ${what}`, {
      hint: 'give a raw event id, an interaction id, or provider:source_id (e.g. gmail:18c9a2f4e1b2c3d4)',
    });
  }
  const firstWritten = interactions.map((i) => i.created_at).find((d) => d !== null) ?? null;
  const contact = contactId ? ((await contactOf(db, contactId, interactionIds)) ?? null) : null;
  const chunks = await chunksOf(db, interactionIds);
  const insights = contactId && firstWritten ? await insightsSince(db, contactId, firstWritten) : [];
  const timeline = await timelineOf(
    db,
    interactionIds,
    insights.map((i) => i.id),
  );
  // Queue items are interactions (resolve, embed, timeline), contacts (insights) and insights (their timeline entries).
  const queue = await queuedWork(db, [...interactionIds, ...(contactId ? [contactId] : []), ...insights.map((i) => i.id)]);
  const audit = event?.batch_id ? ((await importAudit(db, event.user_id, event.batch_id)) ?? null) : null;

  const exact = [
    ...(audit?.run_id && UUID.test(audit.run_id) ? [{ id: audit.run_id, what: 'imported it' }] : []),
    ...errors.filter((e) => e.closed_by).map((e) => ({ id: e.closed_by!, what: `closed ${e.stage} error ${e.id} (${e.status})` })),
  ];
  const touch = (at: Date | null, what: string, commands: string[]): Touch[] => (at ? [{ at, what, commands }] : []);
  const touches = [
    ...interactions.flatMap((i) => touch(i.created_at, 'wrote its interaction', ['normalize', 'backfill', 'errors retry'])),
    ...chunks.slice(0, 1).flatMap((c) => touch(c.created_at, 'embedded it', ['embed', 'backfill', 'errors retry'])),
    ...insights.slice(0, 1).flatMap((i) => touch(i.created_at, "wrote its contact's insights", ['insights', 'backfill', 'errors retry'])),
  ];
  const runs = await runsOf(db, exact, touches);

  const unknown: string[] = [];
  if (event?.batch_id && !audit) unknown.push(`the import of batch ${event.batch_id}: no sync_audit row (imported by other means)`);
  if (audit && !runs.some((r) => r.exact && r.what === 'imported it')) unknown.push('the import run: no longer in the ledger (purged)');
  for (const t of touches)
    if (!runs.some((r) => r.what === t.what))
      unknown.push(`which run ${t.what} at ${t.at.toISOString()}: none in the ledger was live then (purged, or written by other means)`);
  if (!event && !archived && rawId) unknown.push(`raw event ${rawId}: not in raw_events and not archived (deleted)`);

  return {
    foundBy: event || interactionId ? foundBy : 'errors',
    event,
    archived,
    import: event ? { batchId: event.batch_id, audit } : null,
    normalize: normalizeOutcome(event, { interactions, errors }),
    interactions,
    queue,
    contact,
    chunks,
    insights,
    timeline,
    errors,
    runs,
    unknown,
  };
}
