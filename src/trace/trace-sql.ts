// The reads of `trace`: one event's rows in every table, each query by the keys the previous
// ones found (event → interactions → contact, chunks, insights, timeline), each row checked.
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';

const ts = z.date();
const nts = z.date().nullable();

const eventRow = z.object({
  id: z.string(),
  user_id: z.string(),
  provider: z.string().nullable(),
  source_id: z.string().nullable(),
  occurred_at: nts,
  created_at: nts,
  batch_id: z.string().nullable(),
  contact_id: z.string().nullable(),
  payload_bytes: z.number().int().nullable(),
  normalize_pending: z.boolean(),
});
export type EventRow = z.infer<typeof eventRow>;

const EVENT_COLUMNS = `r.id, r.user_id, r.provider, r.source_id, r.occurred_at, r.created_at, r.batch_id, r.contact_id,
       octet_length(r.payload::text) AS payload_bytes,
       EXISTS (SELECT 1 FROM omni_ingest.normalize_queue q WHERE q.raw_event_id = r.id) AS normalize_pending`;

/**
 * Raw events by id, or by the interaction made from them. An interaction whose raw event is no
 * longer in raw_events (archived, or deleted) is found all the same: `rawEventId` names the
 * event it came from, whatever became of it.
 */
export async function eventsById(
  db: Queryable,
  id: string,
): Promise<{ via: 'raw_event' | 'interaction' | 'none'; events: EventRow[]; rawEventId: string | null }> {
  const direct = await db.query(
    `
SELECT ${EVENT_COLUMNS}
FROM public.raw_events r
WHERE r.id = $1`,
    [id],
  );
  if (direct.rows.length > 0) return { via: 'raw_event', events: direct.rows.map((r) => eventRow.parse(r)), rawEventId: id };
  const viaInteraction = await db.query(
    `
SELECT i.raw_event_id::text AS interaction_raw_event_id, ${EVENT_COLUMNS}
FROM public.interactions i
LEFT JOIN public.raw_events r ON r.id = i.raw_event_id
WHERE i.id = $1`,
    [id],
  );
  const row = viaInteraction.rows[0] as { interaction_raw_event_id: string | null; id: string | null } | undefined;
  if (!row) return { via: 'none', events: [], rawEventId: id };
  return {
    via: 'interaction',
    events: row.id === null ? [] : [eventRow.parse(row)],
    rawEventId: row.interaction_raw_event_id,
  };
}

/** Raw events by the provider's id (one per user holding it). */
export async function eventsBySource(db: Queryable, provider: string, sourceId: string, userId: string | null): Promise<EventRow[]> {
  const { rows } = await db.query(
    `
SELECT ${EVENT_COLUMNS}
FROM public.raw_events r
WHERE r.provider = $1 AND r.source_id = $2 AND ($3::uuid IS NULL OR r.user_id = $3)
ORDER BY r.user_id`,
    [provider, sourceId, userId],
  );
  return rows.map((r) => eventRow.parse(r));
}

const auditRow = z.object({ id: z.string(), action: z.string().nullable(), created_at: nts, run_id: z.string().nullable() });

/** The `sync_audit` row of the import that brought the batch in (it names the batch and the run). */
export async function importAudit(db: Queryable, userId: string, batchId: string): Promise<z.infer<typeof auditRow> | undefined> {
  const { rows } = await db.query(
    `
SELECT a.id, a.action, a.created_at, a.payload ->> 'run_id' AS run_id
FROM public.sync_audit a
WHERE a.user_id = $1 AND a.payload ->> 'batch_id' = $2::text
ORDER BY a.created_at
LIMIT 1`,
    [userId, batchId],
  );
  return rows[0] === undefined ? undefined : auditRow.parse(rows[0]);
}

const interactionRow = z.object({
  id: z.string(),
  type: z.string().nullable(),
  subject: z.string().nullable(),
  occurred_at: nts,
  created_at: nts,
  contact_id: z.string().nullable(),
  source_id: z.string().nullable(),
});
export type InteractionRow = z.infer<typeof interactionRow>;

/** The interactions made from a raw event, or the one interaction asked for when it names no event. */
export async function interactionsOf(
  db: Queryable,
  rawEventId: string | null,
  interactionId: string | null = null,
): Promise<InteractionRow[]> {
  const { rows } = await db.query(
    `
SELECT i.id, i.type, i.subject, i.occurred_at, i.created_at, i.contact_id, i.source_id
FROM public.interactions i
WHERE i.raw_event_id = $1 OR ($1::uuid IS NULL AND i.id = $2)
ORDER BY i.occurred_at, i.id`,
    [rawEventId, interactionId],
  );
  return rows.map((r) => interactionRow.parse(r));
}

const queueRow = z.object({
  stage: z.string(),
  item_id: z.string(),
  enqueued_at: ts,
  claimed_by: z.string().nullable(),
  attempts: z.number().int(),
});

/** Work still queued for these items (interactions, contacts) in any stage. */
export async function queuedWork(db: Queryable, itemIds: string[]): Promise<z.infer<typeof queueRow>[]> {
  const { rows } = await db.query(
    `
SELECT q.stage, q.item_id, q.enqueued_at, q.claimed_by, q.attempts
FROM omni_ingest.work_queue q
WHERE q.item_id = ANY($1::uuid[])
ORDER BY q.enqueued_at, q.stage`,
    [itemIds],
  );
  return rows.map((r) => queueRow.parse(r));
}

const contactRow = z.object({
  id: z.string(),
  display_name: z.string().nullable(),
  primary_email: z.string().nullable(),
  source: z.string().nullable(),
});
const identityRow = z.object({ kind: z.string(), value: z.string(), provider: z.string().nullable(), matched: z.boolean() });

/**
 * A contact and its identities; `matched` marks those the event's interactions name (the ones
 * resolve can have linked it by), read from their participants in source_meta.
 */
export async function contactOf(
  db: Queryable,
  contactId: string,
  interactionIds: string[],
): Promise<{ contact: z.infer<typeof contactRow>; identities: z.infer<typeof identityRow>[] } | undefined> {
  const c = await db.query(
    `
SELECT c.id, c.display_name, c.primary_email, c.source
FROM public.contacts c
WHERE c.id = $1`,
    [contactId],
  );
  if (c.rows[0] === undefined) return undefined;
  const ids = await db.query(
    `
SELECT ci.kind, ci.value, ci.provider,
       EXISTS (SELECT 1 FROM public.interactions i
               WHERE i.id = ANY($2::uuid[]) AND strpos(lower(i.source_meta::text), lower(ci.value)) > 0) AS matched
FROM public.contact_identities ci
WHERE ci.contact_id = $1
ORDER BY ci.kind, ci.value`,
    [contactId, interactionIds],
  );
  return { contact: contactRow.parse(c.rows[0]), identities: ids.rows.map((r) => identityRow.parse(r)) };
}

const chunkRow = z.object({
  owner_id: z.string(),
  chunk_index: z.number().int(),
  content_hash: z.string().nullable(),
  model: z.string().nullable(),
  dimensions: z.number().int().nullable(),
  tokens: z.number().int().nullable(),
  created_at: nts,
});

export async function chunksOf(db: Queryable, interactionIds: string[]): Promise<z.infer<typeof chunkRow>[]> {
  const { rows } = await db.query(
    `
SELECT e.owner_id, e.chunk_index, e.content_hash, e.meta ->> 'model' AS model,
       (e.meta ->> 'dimensions')::int AS dimensions, (e.meta ->> 'tokens')::int AS tokens, e.created_at
FROM public.embeddings e
WHERE e.owner_type = 'interaction' AND e.owner_id = ANY($1::uuid[])
ORDER BY e.owner_id, e.chunk_index`,
    [interactionIds],
  );
  return rows.map((r) => chunkRow.parse(r));
}

const insightRow = z.object({
  id: z.string(),
  kind: z.string().nullable(),
  title: z.string().nullable(),
  model: z.string().nullable(),
  created_at: nts,
  expires_at: nts,
});

/** The contact's insights made since the event's first interaction was written: the ones it fed. */
export async function insightsSince(db: Queryable, contactId: string, since: Date): Promise<z.infer<typeof insightRow>[]> {
  const { rows } = await db.query(
    `
SELECT a.id, a.kind, a.content ->> 'title' AS title, a.model, a.created_at, a.expires_at
FROM public.ai_insights a
WHERE a.subject_type = 'contact' AND a.subject_id = $1 AND a.created_at >= $2
ORDER BY a.created_at, a.kind`,
    [contactId, since],
  );
  return rows.map((r) => insightRow.parse(r));
}

const timelineRow = z.object({
  id: z.string(),
  source_type: z.string().nullable(),
  source_id: z.string().nullable(),
  title: z.string().nullable(),
  occurred_at: nts,
});

export async function timelineOf(db: Queryable, interactionIds: string[], insightIds: string[]): Promise<z.infer<typeof timelineRow>[]> {
  const { rows } = await db.query(
    `
SELECT t.id, t.source_type, t.source_id, t.title, t.occurred_at
FROM public.contact_timeline t
WHERE (t.source_type = 'interaction' AND t.source_id = ANY($1::uuid[]))
   OR (t.source_type = 'insight' AND t.source_id = ANY($2::uuid[]))
ORDER BY t.occurred_at, t.id`,
    [interactionIds, insightIds],
  );
  return rows.map((r) => timelineRow.parse(r));
}
