// timeline: resolved interactions and contact insights → contact_timeline (SPEC §9). A batch is
// one transaction: claim queued items of both kinds, read their sources with their contacts,
// build human-readable entries, upsert them on (user_id, source_type, source_id), move the
// ledger, commit. Idempotent: a re-run adds nothing and rewrites only entries that changed.
import type { Queryable } from '../db/connect.js';
import { retryOnClash } from '../db/retry.js';
import { lockContacts } from './contact-locks.js';
import type { Counts } from './engine/ledger.js';
import { claimQueued, countQueued, peekCursor, peekQueued, type QueuedItem, type QueueStage } from './engine/queue.js';
import type { BatchInput, BatchOutput, DryBatchInput, DryBatchOutput, Stage } from './engine/runner.js';
import * as sql from './timeline-sql.js';

const STAGES: QueueStage[] = ['timeline', 'timeline_insight'];
const TITLE_SUBJECT_MAX = 150;
const DESCRIPTION_MAX = 200;
const INSIGHT_BODY_MAX = 2000;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whitespace collapsed, at most `max` characters (code points, so no emoji is cut in half). */
export function clip(text: string | null | undefined, max: number): string | null {
  if (typeof text !== 'string') return null;
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return null;
  const chars = Array.from(flat);
  if (chars.length <= max) return flat;
  const cut = chars.slice(0, max - 1).join('');
  // End on a word when one ends reasonably close; a long token is cut where it is.
  const space = cut.lastIndexOf(' ');
  return `${space > cut.length * 0.7 ? cut.slice(0, space) : cut}…`;
}

// What a `<channel>_received` / `<channel>_sent` interaction is called on the timeline.
const CHANNELS: Record<string, string> = {
  email: 'Email',
  sms: 'SMS',
  mms: 'MMS',
  whatsapp: 'WhatsApp message',
  dm: 'Instagram DM',
  call: 'Call',
};

/**
 * "Email from Sofia Rossi: Re: pricing", "SMS to +393471234567", "Form submitted: Request a
 * quote". `name` is who is on the other side; a subject is added when there is one.
 */
export function interactionTitle(type: string | null, subject: string | null, name: string, formId?: string | null): string {
  const s = clip(subject, TITLE_SUBJECT_MAX);
  const t = type ?? 'interaction';
  const m = /^([a-z]+)_(received|sent)$/.exec(t);
  const channel = m ? CHANNELS[m[1] as string] : undefined;
  if (m && channel) return `${channel} ${m[2] === 'sent' ? 'to' : 'from'} ${name}${s ? `: ${s}` : ''}`;
  if (t === 'form_submitted') {
    const form = s ?? clip(formId, TITLE_SUBJECT_MAX);
    return form ? `Form submitted: ${form}` : 'Form submitted';
  }
  if (t === 'note_added') return s ? `Note: ${s}` : `Note about ${name}`;
  // A type this stage does not know yet: readable anyway ("call_missed" → "Call missed with …").
  const label = t.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  return `${label} with ${name}${s ? `: ${s}` : ''}`;
}

/** The counterpart as the interaction names it: the sender, or the first recipient. */
function counterpartIdentity(meta: unknown, type: string | null): string | null {
  if (!isRecord(meta)) return null;
  const outbound = meta.direction === 'outbound' || (meta.direction !== 'inbound' && /_sent$/.test(type ?? ''));
  const list = outbound ? meta.to : meta.from;
  const first: unknown = Array.isArray(list) ? list[0] : undefined;
  return isRecord(first) && typeof first.value === 'string' && first.value.trim() !== '' ? first.value.trim() : null;
}

function formIdOf(meta: unknown): string | null {
  return isRecord(meta) && typeof meta.formId === 'string' ? meta.formId : null;
}

function interactionEntry(row: sql.TimelineInteractionRow & { contact_id: string }): sql.TimelineEntryRow {
  const name =
    clip(row.display_name, 100) ??
    counterpartIdentity(row.source_meta, row.type) ??
    row.primary_email ??
    row.primary_phone ??
    'unknown contact';
  return {
    user_id: row.user_id,
    contact_id: row.contact_id,
    event_type: row.type ?? 'interaction',
    title: interactionTitle(row.type, row.subject, name, formIdOf(row.source_meta)),
    description: clip(row.body_text, DESCRIPTION_MAX),
    occurred_at: row.occurred_at,
    event_data: {
      source_type: 'interaction',
      interaction_id: row.id,
      raw_event_id: row.raw_event_id,
      source: row.source,
      source_id: row.source_id,
    },
    source_type: 'interaction',
    source_id: row.id,
  };
}

function insightEntry(row: sql.TimelineInsightRow & { contact_id: string }): sql.TimelineEntryRow {
  const content = isRecord(row.content) ? row.content : {};
  const title = typeof content.title === 'string' ? clip(content.title, TITLE_SUBJECT_MAX) : null;
  const kind = row.kind ?? 'insight';
  return {
    user_id: row.user_id,
    contact_id: row.contact_id,
    event_type: `insight_${kind}`,
    title: `Insight: ${title ?? kind.replace(/_/g, ' ')}`,
    description: typeof content.body === 'string' ? clip(content.body, INSIGHT_BODY_MAX) : null,
    occurred_at: row.created_at,
    event_data: { source_type: 'insight', insight_id: row.id, kind: row.kind, model: row.model, fingerprint: row.fingerprint },
    source_type: 'insight',
    source_id: row.id,
  };
}

interface Built {
  entries: sql.TimelineEntryRow[];
  /** Items whose source is gone or has no contact: their entries, if any, are stale. */
  stale: { user_id: string; source_type: string; source_id: string }[];
  /** Entries left out because their contact was merged away meanwhile. */
  gone?: number;
}

async function build(db: Queryable, items: QueuedItem[]): Promise<Built> {
  const ids = (stage: QueueStage) => items.filter((i) => i.stage === stage).map((i) => i.item_id);
  const [interactions, insights] = await Promise.all([
    sql.loadInteractions(db, ids('timeline')),
    sql.loadInsights(db, ids('timeline_insight')),
  ]);
  const entries: sql.TimelineEntryRow[] = [];
  const done = new Set<string>();
  for (const row of interactions) {
    if (row.contact_id === null) continue;
    entries.push(interactionEntry({ ...row, contact_id: row.contact_id }));
    done.add(`timeline:${row.id}`);
  }
  for (const row of insights) {
    if (row.contact_id === null) continue;
    entries.push(insightEntry({ ...row, contact_id: row.contact_id }));
    done.add(`timeline_insight:${row.id}`);
  }
  const stale = items
    .filter((i) => !done.has(`${i.stage}:${i.item_id}`))
    .map((i) => ({ user_id: i.user_id, source_type: i.stage === 'timeline' ? 'interaction' : 'insight', source_id: i.item_id }));
  return { entries, stale };
}

type TimelineCount = 'written' | 'updated' | 'unchanged' | 'skipped' | 'removed';

function countsOf(taken: number, built: Built, written: { inserted: number; updated: number }, removed: number): Counts<TimelineCount> {
  return {
    events: taken,
    written: written.inserted,
    updated: written.updated,
    unchanged: built.entries.length - written.inserted - written.updated,
    skipped: built.stale.length + (built.gone ?? 0),
    removed,
  };
}

/**
 * The entries whose contact is still there, locked against a merge until the batch commits; an
 * entry of a contact merged away since the batch read it is skipped — its interaction moved and
 * was queued again, its insight is deleted.
 */
async function onLiveContacts(tx: Queryable, built: Built): Promise<Built> {
  if (built.entries.length === 0) return built;
  const live = await lockContacts(tx, [...new Set(built.entries.map((e) => e.contact_id))]);
  const entries = built.entries.filter((e) => live.has(e.contact_id));
  if (entries.length === built.entries.length) return built;
  return { entries, stale: built.stale, gone: built.entries.length - entries.length };
}

async function realBatch(input: BatchInput): Promise<BatchOutput<TimelineCount>> {
  // A merge may deadlock with the batch (each waiting for a row the other holds): run again whole.
  return retryOnClash(() => input.db.transaction((tx) => writeBatch(tx, input)));
}

async function writeBatch(tx: Queryable, input: BatchInput): Promise<BatchOutput<TimelineCount>> {
  const items = await claimQueued(tx, STAGES, input.range, input.size);
  if (items.length === 0) return { taken: 0, counts: {} };
  const built = await onLiveContacts(tx, await build(tx, items));
  const written = built.entries.length === 0 ? { inserted: 0, updated: 0 } : await sql.upsertEntries(tx, JSON.stringify(built.entries));
  const removed = built.stale.length === 0 ? 0 : await sql.removeEntries(tx, JSON.stringify(built.stale));
  const counts = countsOf(items.length, built, written, removed);
  await input.record(tx, counts);
  return { taken: items.length, counts };
}

async function dryBatch(input: DryBatchInput<string>): Promise<DryBatchOutput<TimelineCount, string | undefined>> {
  const items = await peekQueued(input.db, STAGES, input.range, input.size, input.cursor);
  if (items.length === 0) return { taken: 0, counts: {}, cursor: input.cursor };
  const built = await build(input.db, items);
  const written =
    built.entries.length === 0 ? { inserted: 0, updated: 0 } : await sql.compareEntries(input.db, JSON.stringify(built.entries));
  const removed = built.stale.length === 0 ? 0 : await sql.countEntries(input.db, JSON.stringify(built.stale));
  return { taken: items.length, counts: countsOf(items.length, built, written, removed), cursor: peekCursor(items) };
}

export function createTimelineStage(): Stage<TimelineCount, string | undefined> {
  return {
    name: 'timeline',
    countPending: (db, range, before) => countQueued(db, STAGES, range, before),
    batch: realBatch,
    dryBatch,
  };
}
