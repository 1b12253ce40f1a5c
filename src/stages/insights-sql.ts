// The insights stage's SQL (SPEC §8). Reads are one statement per batch whatever its size;
// writes travel as one JSON document (json_to_recordset) or arrays, so the parameter count
// stays constant.
import type { Queryable } from '../db/connect.js';

/**
 * What a contact's insights are computed from, as one SQL expression over its interactions `i`
 * (aggregate): SHA-256 of every interaction's (id, occurred_at, type, subject, body) in
 * (occurred_at, id) order. json text, not jsonb, so the rendering is stable; occurred_at as epoch
 * microseconds, so the session's TimeZone cannot change it (an infinite time, which no epoch
 * holds, as null). The type is in too: a direction change changes the next step.
 */
const DIGEST = `encode(sha256(convert_to(coalesce(string_agg(
  json_build_array(i.id, CASE WHEN isfinite(i.occurred_at) THEN (extract(epoch FROM i.occurred_at) * 1000000)::bigint END, i.type, i.subject, i.body_text)::text,
  E'\\n' ORDER BY i.occurred_at, i.id), ''), 'UTF8')), 'hex')`;

export interface ContactContextRow {
  contact_id: string;
  user_id: string;
  display_name: string | null;
  identities: { kind: string; value: string }[];
  /** Newest first: {id, type, occurred_at (ISO text), subject, body}. */
  interactions: { id: string; type: string | null; occurred_at: string | null; subject: string | null; body: string | null }[];
  total: number;
  by_type: Record<string, number> | null;
  first_at: Date | null;
  last_at: Date | null;
  digest: string;
  /** Insights of this model from exactly these interactions exist and have not expired. */
  unchanged: boolean;
}

/**
 * Everything a provider needs about the contacts, in one statement: identities (the contact's
 * primary email and phone included), the `recent` newest interactions with the first `bodyChars`
 * characters of their body, totals over all interactions, the source digest and whether insights
 * of `model` were already made from it. Contacts that no longer exist are simply absent.
 */
export async function loadContactContexts(
  db: Queryable,
  items: { item_id: string; user_id: string }[],
  model: string,
  recent: number,
  bodyChars: number,
): Promise<ContactContextRow[]> {
  const { rows } = await db.query<ContactContextRow>(
    `
SELECT c.id AS contact_id, c.user_id, c.display_name,
       coalesce(ids.identities, '[]') AS identities,
       coalesce(latest.items, '[]') AS interactions,
       agg.total, types.by_type, agg.first_at, agg.last_at, agg.digest,
       EXISTS (
         SELECT 1
         FROM public.ai_insights a
         WHERE a.user_id = c.user_id AND a.subject_type = 'contact' AND a.subject_id = c.id
           AND a.model = $2 AND a.source_digest = agg.digest
           AND (a.expires_at IS NULL OR a.expires_at > now())
       ) AS unchanged
FROM public.contacts c
CROSS JOIN LATERAL (
  SELECT count(*)::int AS total,
         -- An application may store 'infinity'; no date can show it.
         min(i.occurred_at) FILTER (WHERE isfinite(i.occurred_at)) AS first_at,
         max(i.occurred_at) FILTER (WHERE isfinite(i.occurred_at)) AS last_at,
         ${DIGEST} AS digest
  FROM public.interactions i
  WHERE i.user_id = c.user_id AND i.contact_id = c.id
) agg
LEFT JOIN LATERAL (
  SELECT json_object_agg(t.type, t.n) AS by_type
  FROM (
    SELECT coalesce(i.type, 'unknown') AS type, count(*)::int AS n
    FROM public.interactions i
    WHERE i.user_id = c.user_id AND i.contact_id = c.id
    GROUP BY 1
  ) t
) types ON true
LEFT JOIN LATERAL (
  SELECT json_agg(json_build_object('id', r.id, 'type', r.type, 'occurred_at', CASE WHEN isfinite(r.occurred_at) THEN r.occurred_at END, 'subject', r.subject, 'body', left(r.body_text, $4))
                  ORDER BY r.occurred_at DESC NULLS LAST, r.id DESC) AS items
  FROM (
    SELECT i.id, i.type, i.occurred_at, i.subject, i.body_text
    FROM public.interactions i
    WHERE i.user_id = c.user_id AND i.contact_id = c.id
    ORDER BY i.occurred_at DESC NULLS LAST, i.id DESC
    LIMIT $3
  ) r
) latest ON true
LEFT JOIN LATERAL (
  SELECT json_agg(json_build_object('kind', x.kind, 'value', x.value) ORDER BY x.rank, x.kind, x.value) AS identities
  FROM (
    SELECT DISTINCT ON (kind, value) kind, value, rank
    FROM (
      SELECT 'email' AS kind, lower(c.primary_email) AS value, 0 AS rank WHERE c.primary_email IS NOT NULL
      UNION ALL SELECT 'phone', c.primary_phone, 0 WHERE c.primary_phone IS NOT NULL
      UNION ALL SELECT ci.kind, ci.value, 1 FROM public.contact_identities ci WHERE ci.contact_id = c.id AND ci.user_id = c.user_id
    ) all_ids
    ORDER BY kind, value, rank
  ) x
) ids ON true
-- The contact and the user its work was queued for: a queue row naming another user's contact
-- (queued before 202611301300_tenant_guards) is not worked on.
WHERE (c.id, c.user_id) IN (SELECT * FROM unnest($1::uuid[], $5::uuid[]))`,
    [items.map((i) => i.item_id), model, recent, bodyChars, items.map((i) => i.user_id)],
  );
  return rows;
}

/** The contacts' source digests now, to tell whether they changed while the model was answering. */
export async function currentDigests(tx: Queryable, contactIds: string[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ contact_id: string; digest: string }>(
    `
SELECT c.id AS contact_id, agg.digest
FROM public.contacts c
CROSS JOIN LATERAL (
  SELECT ${DIGEST} AS digest
  FROM public.interactions i
  WHERE i.user_id = c.user_id AND i.contact_id = c.id
) agg
WHERE c.id = ANY($1::uuid[])`,
    [contactIds],
  );
  return new Map(rows.map((r) => [r.contact_id, r.digest]));
}

/** One insight row as the insert reads it from the batch's JSON document. */
export interface InsightRow {
  user_id: string;
  subject_id: string;
  kind: string;
  content: { title: string; body: string; [key: string]: unknown };
  model: string;
  source_digest: string;
}

/**
 * Inserts the batch's insights (subject_type 'contact'). The BEFORE INSERT trigger derives each
 * fingerprint; an existing one — from an earlier run or earlier in this statement — is skipped,
 * never inserted twice. expires_at takes its default, a year from now.
 */
export async function insertInsights(tx: Queryable, rowsJson: string): Promise<number> {
  const { rows } = await tx.query<{ inserted: number }>(
    `
WITH inserted AS (
  INSERT INTO public.ai_insights (user_id, subject_type, subject_id, kind, content, model, source_digest)
  SELECT x.user_id, 'contact', x.subject_id, x.kind, x.content, x.model, x.source_digest
  FROM json_to_recordset($1::json) AS x(user_id uuid, subject_id uuid, kind text, content jsonb, model text, source_digest text)
  ON CONFLICT (user_id, fingerprint) DO NOTHING
  RETURNING 1
)
SELECT count(*)::int AS inserted FROM inserted`,
    [rowsJson],
  );
  return rows[0]?.inserted ?? 0;
}

/** For `purge insights --dry-run`: how many insights have expired, and the span of their expiry. */
export async function countExpiredInsights(
  db: Queryable,
  userId: string | undefined,
  expiredBefore?: Date,
): Promise<{ n: number; oldest: Date | null; newest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null; newest: Date | null }>(
    `
SELECT count(*)::int AS n, min(expires_at) AS oldest, max(expires_at) AS newest
FROM public.ai_insights
WHERE expires_at < coalesce($2::timestamptz, now())
  AND ($1::uuid IS NULL OR user_id = $1)`,
    [userId ?? null, expiredBefore ?? null],
  );
  return rows[0] ?? { n: 0, oldest: null, newest: null };
}

/**
 * Deletes up to `limit` expired insights, oldest expiry first, and in the same statement their
 * timeline entries, in the caller's transaction. SKIP LOCKED: two purges at once take different
 * rows instead of waiting on each other.
 */
export async function deleteExpiredInsights(tx: Queryable, userId: string | undefined, limit: number): Promise<number> {
  const { rows } = await tx.query<{ n: number }>(
    `
WITH expired AS (
  DELETE FROM public.ai_insights a
  USING (
    SELECT id
    FROM public.ai_insights
    WHERE expires_at < now()
      AND ($1::uuid IS NULL OR user_id = $1)
    ORDER BY expires_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ) batch
  WHERE a.id = batch.id
  RETURNING a.id, a.user_id
), entries AS (
  DELETE FROM public.contact_timeline t
  USING expired e
  WHERE t.user_id = e.user_id AND t.source_type = 'insight' AND t.source_id = e.id
)
SELECT count(*)::int AS n FROM expired`,
    [userId ?? null, limit],
  );
  return rows[0]?.n ?? 0;
}
