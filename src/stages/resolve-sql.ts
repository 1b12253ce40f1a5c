// The resolve stage's SQL (SPEC §6). Reads and writes are one statement per batch each; rows
// travel as one JSON document (json_to_recordset) or as arrays, so the parameter count stays
// constant whatever the batch size.
import { identityOf } from '../identity.js';
import type { Identity } from '../providers/types.js';
import type { Queryable } from '../db/connect.js';
import { rangeParams, rangeWhere, type RangeOptions } from './engine/range.js';

const INTERACTION_IN_RANGE = rangeWhere({ at: 'i.occurred_at', user: 'i.user_id', provider: 'i.source', item: 'i.id' });

export interface ResolveInteractionRow {
  id: string;
  user_id: string;
  source: string | null;
  type: string | null;
  source_meta: unknown;
  raw_event_id: string | null;
  contact_id: string | null;
}

/** In time order: a contact created from several interactions takes its source from the first. */
export async function loadInteractions(db: Queryable, ids: string[]): Promise<ResolveInteractionRow[]> {
  const { rows } = await db.query<ResolveInteractionRow>(
    `
SELECT id, user_id, source, type, source_meta, raw_event_id, contact_id
FROM public.interactions
WHERE id = ANY($1::uuid[])
ORDER BY occurred_at, id`,
    [ids],
  );
  return rows;
}

export interface IdentityKey {
  user_id: string;
  kind: string;
  value: string;
}

export interface IdentityMatch extends IdentityKey {
  contact_id: string;
}

/** The contacts owning any of `keysJson` (an array of IdentityKey), one row per identity found. */
export async function lookupIdentities(db: Queryable, keysJson: string): Promise<IdentityMatch[]> {
  const { rows } = await db.query<IdentityMatch>(
    `
SELECT ci.user_id, ci.kind, ci.value, ci.contact_id
FROM json_to_recordset($1::json) AS x(user_id uuid, kind text, value text)
JOIN public.contact_identities ci ON ci.user_id = x.user_id AND ci.kind = x.kind AND ci.value = x.value
-- An identity row naming another user's contact (nothing in the schema forbids it) is no one's.
JOIN public.contacts c ON c.id = ci.contact_id AND c.user_id = ci.user_id`,
    [keysJson],
  );
  return rows;
}

export interface NewContactRow {
  id: string;
  user_id: string;
  display_name: string | null;
  primary_email: string | null;
  primary_phone: string | null;
  source: string | null;
}

/**
 * Inserts contacts with ids chosen by the caller (provisional until they own an identity), and
 * marks them as the pipeline's own (only those may be merged without asking anyone).
 */
export async function insertContacts(tx: Queryable, rows: NewContactRow[]): Promise<number> {
  const { rows: inserted } = await tx.query<{ n: number }>(
    `
WITH c AS (
  INSERT INTO public.contacts (id, user_id, display_name, primary_email, primary_phone, source)
  SELECT x.id, x.user_id, x.display_name, x.primary_email, x.primary_phone, x.source
  FROM json_to_recordset($1::json) AS x(id uuid, user_id uuid, display_name text, primary_email text, primary_phone text, source text)
  RETURNING id, user_id
), marked AS (
  INSERT INTO omni_ingest.pipeline_contacts (contact_id, user_id)
  SELECT id, user_id FROM c
)
SELECT count(*)::int AS n FROM c`,
    [JSON.stringify(rows)],
  );
  return inserted[0]?.n ?? 0;
}

/**
 * Names contacts the pipeline created under a placeholder (their email or phone) after the
 * person's name, now that an interaction gives it; a contact with a real name, or one a person
 * entered, keeps its name. Of several names in one batch the first in sort order wins.
 */
export async function nameContacts(tx: Queryable, names: { contact_id: string; name: string }[]): Promise<number> {
  if (names.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
UPDATE public.contacts c
SET display_name = x.name
FROM (
  SELECT DISTINCT ON (contact_id) contact_id, name
  FROM json_to_recordset($1::json) AS x(contact_id uuid, name text)
  ORDER BY contact_id, name
) x
WHERE c.id = x.contact_id
  AND (c.display_name IS NULL OR c.display_name IN (c.primary_email, c.primary_phone) OR c.display_name ~ '^[0-9]{1,32}$')
  AND EXISTS (SELECT 1 FROM omni_ingest.pipeline_contacts p WHERE p.contact_id = c.id)`,
    [JSON.stringify(names)],
  );
  return rowCount ?? 0;
}

export interface MergeCandidate {
  id: string;
  user_id: string;
  created_at: Date;
  display_name: string | null;
  primary_email: string | null;
  primary_phone: string | null;
  /** Created by the pipeline (mergeable), not entered by a person. */
  ours: boolean;
}

/**
 * Reads the contacts; with `lock`, locks them first, in id order, so two workers merging the
 * same people wait for each other rather than deadlock (the second then finds them merged).
 */
export async function readContacts(tx: Queryable, ids: string[], lock: boolean): Promise<MergeCandidate[]> {
  const { rows } = await tx.query<MergeCandidate>(
    `
SELECT c.id, c.user_id, coalesce(c.created_at AT TIME ZONE 'UTC', now()) AS created_at, c.display_name, c.primary_email, c.primary_phone,
       (p.contact_id IS NOT NULL) AS ours
FROM public.contacts c
LEFT JOIN omni_ingest.pipeline_contacts p ON p.contact_id = c.id
WHERE c.id = ANY($1::uuid[])
ORDER BY c.id
${lock ? 'FOR UPDATE OF c' : ''}`,
    [ids],
  );
  return rows;
}

/** One contact folded into another of the same user. */
export interface Merge {
  keep: string;
  other: string;
  user_id: string;
}

/**
 * Moves everything of each `other` to its `keep` — identities, interactions and their raw events,
 * timeline entries of interactions — drops its insights (about half a person; the interactions'
 * move queues `keep` for new ones) with their timeline entries, queue rows and open errors, fills
 * `keep`'s missing name, email and phone from it (when the pipeline made `keep`), then deletes
 * it. Two statements: the deletes must see the moves done.
 */
export async function mergeContacts(tx: Queryable, merges: Merge[]): Promise<number> {
  if (merges.length === 0) return 0;
  const json = JSON.stringify(merges);
  await tx.query(
    `
WITH m AS (
  SELECT x.keep, x.other, x.user_id FROM json_to_recordset($1::json) AS x(keep uuid, other uuid, user_id uuid)
), identities AS (
  UPDATE public.contact_identities ci SET contact_id = m.keep FROM m WHERE ci.contact_id = m.other AND ci.user_id = m.user_id RETURNING 1
), interactions AS (
  UPDATE public.interactions i SET contact_id = m.keep FROM m WHERE i.contact_id = m.other AND i.user_id = m.user_id RETURNING 1
), raw AS (
  UPDATE public.raw_events r SET contact_id = m.keep FROM m WHERE r.contact_id = m.other AND r.user_id = m.user_id RETURNING 1
), entries AS (
  UPDATE public.contact_timeline t SET contact_id = m.keep
  FROM m WHERE t.contact_id = m.other AND t.user_id = m.user_id AND t.source_type = 'interaction'
  RETURNING 1
), filled AS (
  -- A name, not a placeholder (an email, a phone, an Instagram id): a placeholder stays the
  -- keeper's own, which the person's name replaces once an interaction gives it. Of several
  -- others, the oldest with one gives each.
  UPDATE public.contacts k
  SET display_name = CASE
        WHEN k.display_name IS NULL OR k.display_name IN (k.primary_email, k.primary_phone) OR k.display_name ~ '^[0-9]{1,32}$'
        THEN coalesce(o.display_name, k.display_name)
        ELSE k.display_name
      END,
      primary_email = coalesce(k.primary_email, o.primary_email),
      primary_phone = coalesce(k.primary_phone, o.primary_phone)
  FROM (
    SELECT m.keep,
           (array_agg(c.display_name ORDER BY c.created_at, c.id) FILTER (
              WHERE c.display_name IS DISTINCT FROM c.primary_email AND c.display_name IS DISTINCT FROM c.primary_phone
                AND c.display_name !~ '^[0-9]{1,32}$'))[1] AS display_name,
           (array_agg(c.primary_email ORDER BY c.created_at, c.id) FILTER (WHERE c.primary_email IS NOT NULL))[1] AS primary_email,
           (array_agg(c.primary_phone ORDER BY c.created_at, c.id) FILTER (WHERE c.primary_phone IS NOT NULL))[1] AS primary_phone
    FROM m JOIN public.contacts c ON c.id = m.other
    GROUP BY m.keep
  ) o
  -- A contact a person entered keeps what they wrote.
  WHERE k.id = o.keep AND EXISTS (SELECT 1 FROM omni_ingest.pipeline_contacts p WHERE p.contact_id = k.id)
  RETURNING 1
)
SELECT 1`,
    [json],
  );
  const { rows } = await tx.query<{ n: number }>(
    `
WITH m AS (
  SELECT x.keep, x.other, x.user_id FROM json_to_recordset($1::json) AS x(keep uuid, other uuid, user_id uuid)
), insights AS (
  DELETE FROM public.ai_insights a USING m
  WHERE a.user_id = m.user_id AND a.subject_type = 'contact' AND a.subject_id = m.other
  RETURNING a.id, a.user_id
), insight_entries AS (
  DELETE FROM public.contact_timeline t USING insights d
  WHERE t.user_id = d.user_id AND t.source_type = 'insight' AND t.source_id = d.id
  RETURNING 1
), queued AS (
  DELETE FROM omni_ingest.work_queue w USING m WHERE w.stage = 'insights' AND w.item_id = m.other RETURNING 1
), letters AS (
  -- Its open insights errors are about a contact that is gone (its interactions queue \`keep\`).
  UPDATE public.raw_event_errors e
  SET status = 'discarded', closed_at = now(), close_reason = 'its contact was merged into ' || m.keep
  FROM m
  WHERE e.stage = 'insights' AND e.status = 'open' AND e.item_id = m.other AND e.user_id = m.user_id
  RETURNING 1
), gone AS (
  DELETE FROM public.contacts c USING m WHERE c.id = m.other AND c.user_id = m.user_id RETURNING c.id
)
SELECT count(*)::int AS n FROM gone`,
    [json],
  );
  return rows[0]?.n ?? 0;
}

export interface NewIdentityRow extends IdentityKey {
  contact_id: string;
  provider: string | null;
}

/**
 * Inserts identities; one that exists (another batch or worker got there first) is left to its
 * owner. Rows go in key order so two workers inserting overlapping sets wait on each other
 * instead of deadlocking; a worker that waited sees the winner's row when it reads again.
 */
export async function insertIdentities(tx: Queryable, rowsJson: string): Promise<number> {
  const { rowCount } = await tx.query(
    `
INSERT INTO public.contact_identities (user_id, contact_id, kind, value, provider)
SELECT x.user_id, x.contact_id, x.kind, x.value, x.provider
FROM json_to_recordset($1::json) AS x(user_id uuid, contact_id uuid, kind text, value text, provider text)
ORDER BY x.user_id, x.kind, x.value
ON CONFLICT (user_id, kind, value) DO NOTHING`,
    [rowsJson],
  );
  return rowCount ?? 0;
}

/** Deletes the provisional contacts that won no identity (someone else created that person). */
export async function deleteContactsWithoutIdentities(tx: Queryable, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
DELETE FROM public.contacts c
WHERE c.id = ANY($1::uuid[])
  AND NOT EXISTS (SELECT 1 FROM public.contact_identities ci WHERE ci.contact_id = c.id)`,
    [ids],
  );
  return rowCount ?? 0;
}

/**
 * Links interactions to contacts (`linksJson`: an array of {id, contact_id}) and their raw events
 * with them, in one statement. Only interactions still unlinked are touched (a link made
 * meanwhile by someone else wins), and a raw event keeps a contact it already has (an Instagram
 * webhook body holds several messages: the first link stays). The interactions' update trigger
 * queues them for the timeline and their contacts for insights.
 */
export async function linkInteractions(tx: Queryable, linksJson: string): Promise<{ linked: number; raw_events: number }> {
  const { rows } = await tx.query<{ linked: number; raw_events: number }>(
    `
WITH links AS (
  SELECT x.id, x.contact_id
  FROM json_to_recordset($1::json) AS x(id uuid, contact_id uuid)
), linked AS (
  UPDATE public.interactions i
  SET contact_id = l.contact_id
  FROM links l
  -- Another user's contact is never linked. A contact that is gone (merged away by a concurrent
  -- resolve since it was read) is not filtered out here: the foreign key then fails the batch,
  -- which is retried and finds the contact it was merged into; a join would drop the link.
  WHERE i.id = l.id AND i.contact_id IS NULL
    AND coalesce((SELECT c.user_id FROM public.contacts c WHERE c.id = l.contact_id), i.user_id) = i.user_id
  RETURNING i.raw_event_id, i.contact_id, i.user_id
), raw AS (
  UPDATE public.raw_events r
  SET contact_id = x.contact_id
  FROM (
    SELECT DISTINCT ON (raw_event_id) raw_event_id, contact_id, user_id
    FROM linked
    WHERE raw_event_id IS NOT NULL
    ORDER BY raw_event_id, contact_id
  ) x
  -- A user may insert a note naming another user's raw event (RLS allows the insert): only
  -- the interaction's own user's raw event is linked.
  WHERE r.id = x.raw_event_id AND r.user_id = x.user_id AND r.contact_id IS NULL
  RETURNING r.id
)
SELECT (SELECT count(*) FROM linked)::int AS linked, (SELECT count(*) FROM raw)::int AS raw_events`,
    [linksJson],
  );
  return rows[0] ?? { linked: 0, raw_events: 0 };
}

/**
 * Puts the range's interactions still without a contact back in the resolve queue (after
 * contacts were added, or to create them with --create-contacts). Scans the range: an operator's
 * explicit request, not the incremental path.
 */
export async function enqueueUnresolved(db: Queryable, range: RangeOptions): Promise<number> {
  const { rowCount } = await db.query(
    `
INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
SELECT 'resolve', i.id, i.user_id, i.source, i.occurred_at
FROM public.interactions i
WHERE ${INTERACTION_IN_RANGE}
  AND i.contact_id IS NULL
ON CONFLICT (stage, item_id) DO NOTHING`,
    rangeParams(range),
  );
  return rowCount ?? 0;
}

export interface ContactSeed {
  userId: string;
  displayName: string | null;
  identities: Identity[];
  source?: string | null;
}

/**
 * Creates one contact with its identities (canonicalized here) in one statement: for seeding
 * (tests, imports of an address book). An identity another contact owns is an error, not a
 * silent skip: the caller asked for this person to own it.
 */
export async function createContactWithIdentities(db: Queryable, seed: ContactSeed): Promise<string> {
  const canonical = seed.identities.map((i) => {
    const c = identityOf(i.kind, i.value);
    if (c === null) throw new Error(`not a valid ${i.kind} identity: ${JSON.stringify(i.value)}`);
    return c;
  });
  const email = canonical.find((i) => i.kind === 'email')?.value ?? null;
  const phone = canonical.find((i) => i.kind === 'phone')?.value ?? null;
  const { rows } = await db.query<{ id: string }>(
    `
WITH c AS (
  INSERT INTO public.contacts (user_id, display_name, primary_email, primary_phone, source)
  VALUES ($1, $2, $3, $4, $5)
  RETURNING id
), i AS (
  INSERT INTO public.contact_identities (user_id, contact_id, kind, value, provider)
  SELECT $1, c.id, x.kind, x.value, $5
  FROM c, unnest($6::text[], $7::text[]) AS x(kind, value)
  RETURNING 1
)
SELECT id FROM c`,
    [seed.userId, seed.displayName, email, phone, seed.source ?? null, canonical.map((i) => i.kind), canonical.map((i) => i.value)],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('contact insert returned no id');
  return id;
}
