// The resolve stage's SQL (SPEC §6). Reads and writes are one statement per batch each; rows
// travel as one JSON document (json_to_recordset) or as arrays, so the parameter count stays
// constant whatever the batch size.
import { identityOf } from '../identity.js';
import type { Identity } from '../providers/types.js';
import type { Queryable } from '../db/connect.js';
import { rangeParams, rangeWhere, type RangeOptions } from './engine/range.js';

const INTERACTION_IN_RANGE = rangeWhere({ at: 'i.occurred_at', user: 'i.user_id', provider: 'i.source' });

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
JOIN public.contact_identities ci ON ci.user_id = x.user_id AND ci.kind = x.kind AND ci.value = x.value`,
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

/** Inserts contacts with ids chosen by the caller (provisional until they own an identity). */
export async function insertContacts(tx: Queryable, rows: NewContactRow[]): Promise<number> {
  const { rowCount } = await tx.query(
    `
INSERT INTO public.contacts (id, user_id, display_name, primary_email, primary_phone, source)
SELECT x.id, x.user_id, x.display_name, x.primary_email, x.primary_phone, x.source
FROM json_to_recordset($1::json) AS x(id uuid, user_id uuid, display_name text, primary_email text, primary_phone text, source text)`,
    [JSON.stringify(rows)],
  );
  return rowCount ?? 0;
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
  WHERE i.id = l.id AND i.contact_id IS NULL
  RETURNING i.raw_event_id, i.contact_id
), raw AS (
  UPDATE public.raw_events r
  SET contact_id = x.contact_id
  FROM (
    SELECT DISTINCT ON (raw_event_id) raw_event_id, contact_id
    FROM linked
    WHERE raw_event_id IS NOT NULL
    ORDER BY raw_event_id, contact_id
  ) x
  WHERE r.id = x.raw_event_id AND r.contact_id IS NULL
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
