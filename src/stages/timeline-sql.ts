// The timeline stage's SQL (SPEC §9). One read per source table and one write per batch; entries
// travel as one JSON document (json_to_recordset), so the parameter count stays constant.
import type { Queryable } from '../db/connect.js';

/** An interaction with its contact; contact_id is null when it has none or the contact is gone. */
export interface TimelineInteractionRow {
  id: string;
  user_id: string;
  contact_id: string | null;
  type: string | null;
  subject: string | null;
  body_text: string | null;
  /** As text, so the entry gets the exact time (microseconds included), whatever the session's TimeZone. */
  occurred_at: string | null;
  source: string | null;
  source_id: string | null;
  raw_event_id: string | null;
  source_meta: unknown;
  display_name: string | null;
  primary_email: string | null;
  primary_phone: string | null;
}

export async function loadInteractions(db: Queryable, ids: string[]): Promise<TimelineInteractionRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<TimelineInteractionRow>(
    `
SELECT i.id, i.user_id, c.id AS contact_id, i.type, i.subject, i.body_text, i.occurred_at::text AS occurred_at,
       i.source, i.source_id, i.source_meta,
       -- Another user's raw event named by a note is not pointed at from this user's timeline.
       CASE WHEN EXISTS (SELECT 1 FROM public.raw_events r WHERE r.id = i.raw_event_id AND r.user_id <> i.user_id)
            THEN NULL ELSE i.raw_event_id END AS raw_event_id,
       c.display_name, c.primary_email, c.primary_phone
FROM public.interactions i
LEFT JOIN public.contacts c ON c.id = i.contact_id AND c.user_id = i.user_id
WHERE i.id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

/** A contact's insight; contact_id is null when the contact is gone (or of another user). */
export interface TimelineInsightRow {
  id: string;
  user_id: string;
  contact_id: string | null;
  kind: string | null;
  content: unknown;
  model: string | null;
  fingerprint: string | null;
  /** As text: exact, like TimelineInteractionRow.occurred_at. */
  created_at: string | null;
}

export async function loadInsights(db: Queryable, ids: string[]): Promise<TimelineInsightRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<TimelineInsightRow>(
    `
SELECT a.id, a.user_id, c.id AS contact_id, a.kind, a.content, a.model, a.fingerprint, a.created_at::text AS created_at
FROM public.ai_insights a
LEFT JOIN public.contacts c ON c.id = a.subject_id AND c.user_id = a.user_id
WHERE a.id = ANY($1::uuid[])
  AND a.subject_type = 'contact'`,
    [ids],
  );
  return rows;
}

/** One timeline entry as the upsert reads it from the batch's JSON document. */
export interface TimelineEntryRow {
  user_id: string;
  contact_id: string;
  event_type: string;
  title: string;
  description: string | null;
  occurred_at: string | null;
  event_data: Record<string, unknown>;
  source_type: 'interaction' | 'insight';
  source_id: string;
}

const ENTRIES = `json_to_recordset($1::json) AS x(
  user_id uuid, contact_id uuid, event_type text, title text, description text,
  occurred_at timestamptz, event_data jsonb, source_type text, source_id uuid)`;

/**
 * Upserts entries on (user_id, source_type, source_id): a re-run adds nothing, and an entry is
 * rewritten only when what it shows changed (a new subject, a new contact), so an unchanged
 * re-run writes no row at all.
 */
export async function upsertEntries(tx: Queryable, entriesJson: string): Promise<{ inserted: number; updated: number }> {
  const { rows } = await tx.query<{ inserted: number; updated: number }>(
    `
WITH upserted AS (
  INSERT INTO public.contact_timeline
    (user_id, contact_id, event_type, title, description, occurred_at, event_data, source_type, source_id)
  SELECT x.user_id, x.contact_id, x.event_type, x.title, x.description, x.occurred_at, x.event_data, x.source_type, x.source_id
  FROM ${ENTRIES}
  ON CONFLICT (user_id, source_type, source_id) DO UPDATE
  SET contact_id = excluded.contact_id,
      event_type = excluded.event_type,
      title = excluded.title,
      description = excluded.description,
      occurred_at = excluded.occurred_at,
      event_data = excluded.event_data
  WHERE (contact_timeline.contact_id, contact_timeline.event_type, contact_timeline.title, contact_timeline.description, contact_timeline.occurred_at, contact_timeline.event_data)
        IS DISTINCT FROM (excluded.contact_id, excluded.event_type, excluded.title, excluded.description, excluded.occurred_at, excluded.event_data)
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted)::int AS inserted, count(*) FILTER (WHERE NOT inserted)::int AS updated
FROM upserted`,
    [entriesJson],
  );
  return rows[0] ?? { inserted: 0, updated: 0 };
}

/** For --dry-run: how the upsert would go, read without writing. */
export async function compareEntries(db: Queryable, entriesJson: string): Promise<{ inserted: number; updated: number }> {
  const { rows } = await db.query<{ inserted: number; updated: number }>(
    `
SELECT count(*) FILTER (WHERE t.id IS NULL)::int AS inserted,
       count(*) FILTER (WHERE t.id IS NOT NULL
         AND (t.contact_id, t.event_type, t.title, t.description, t.occurred_at, t.event_data)
             IS DISTINCT FROM (x.contact_id, x.event_type, x.title, x.description, x.occurred_at, x.event_data))::int AS updated
FROM ${ENTRIES}
LEFT JOIN public.contact_timeline t ON t.user_id = x.user_id AND t.source_type = x.source_type AND t.source_id = x.source_id`,
    [entriesJson],
  );
  return rows[0] ?? { inserted: 0, updated: 0 };
}

/**
 * Deletes the entries of sources that no longer belong on a timeline (the interaction lost its
 * contact or is gone): the timeline shows resolved interactions only. `keysJson`: an array of
 * {user_id, source_type, source_id}.
 */
export async function removeEntries(tx: Queryable, keysJson: string): Promise<number> {
  const { rowCount } = await tx.query(
    `
DELETE FROM public.contact_timeline t
USING json_to_recordset($1::json) AS x(user_id uuid, source_type text, source_id uuid)
WHERE t.user_id = x.user_id AND t.source_type = x.source_type AND t.source_id = x.source_id`,
    [keysJson],
  );
  return rowCount ?? 0;
}

/** For --dry-run: how many of those entries exist. */
export async function countEntries(db: Queryable, keysJson: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `
SELECT count(*)::int AS n
FROM public.contact_timeline t
JOIN json_to_recordset($1::json) AS x(user_id uuid, source_type text, source_id uuid)
  ON t.user_id = x.user_id AND t.source_type = x.source_type AND t.source_id = x.source_id`,
    [keysJson],
  );
  return rows[0]?.n ?? 0;
}
