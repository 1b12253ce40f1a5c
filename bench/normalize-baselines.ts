// The in-database baselines of the normalize benchmark: each provider's mapping of SPEC §5 as
// one `INSERT … SELECT`. On the events the generator makes, each writes the same interactions as
// `normalize`, column for column (type, subject, body_text, body_raw, occurred_at, source_meta:
// compared row by row when this was written). What each leaves out is said above it: the cases
// the generator does not make and SQL handles badly or at a cost no one would pay (HTML to text,
// charsets, RFC 2047 words, E.164 phone numbers, withdrawals). Written to be fast, not exhaustive:
// the benchmark asks how close the tool comes to the database doing the work alone.
import type { Queryable } from '../src/db/connect.js';

export type BenchProvider = 'gmail' | 'twilio' | 'instagram' | 'webform';

export const BENCH_PROVIDERS: readonly BenchProvider[] = ['gmail', 'twilio', 'instagram', 'webform'];

interface Mapping {
  /** The select list from `type` to `source_meta`, in INSERT's order; `r` is the raw event. */
  select: string;
  /** Lateral joins after `r` (the items of a webhook body, the headers of a message). */
  from: string;
  /** What the provider skips (drafts, receipts, status callbacks). */
  where: string;
}

/**
 * Webform: the message field or the fields as `key: value` lines (arrays joined with commas),
 * identities by field name (only `email` and `phone`, where the normalizer recognises
 * `workEmail`, `Phone Number`…), the `name` field as every identity's name. Phones are not made
 * E.164, values are not cleaned, the form name is not trimmed.
 */
const webform: Mapping = {
  select: `'form_submitted',
r.payload ->> 'form_name',
coalesce(w.fields ->> 'message',
         (SELECT string_agg(f.key || ': ' || CASE jsonb_typeof(f.value)
                                                 WHEN 'array' THEN (SELECT string_agg(v, ', ') FROM jsonb_array_elements_text(f.value) v)
                                                 ELSE f.value #>> '{}' END, E'\\n' ORDER BY f.key)
          FROM jsonb_each(w.fields) f)),
r.payload,
(r.payload ->> 'submitted_at')::timestamptz,
jsonb_strip_nulls(jsonb_build_object(
  'direction', 'inbound', 'to', '[]'::jsonb, 'from', w.ids,
  'formId', r.payload ->> 'form_id', 'formName', r.payload ->> 'form_name',
  'names', CASE WHEN nullif(trim(w.fields ->> 'name'), '') IS NOT NULL
                THEN (SELECT jsonb_object_agg(i ->> 'value', trim(w.fields ->> 'name')) FROM jsonb_array_elements(w.ids) i) END))`,
  from: `CROSS JOIN LATERAL (
  SELECT r.payload -> 'fields' AS fields,
         (SELECT coalesce(jsonb_agg(i), '[]'::jsonb) FROM (
            SELECT jsonb_build_object('kind', 'email', 'value', lower(trim(r.payload -> 'fields' ->> 'email'))) AS i WHERE r.payload -> 'fields' ? 'email'
            UNION ALL
            SELECT jsonb_build_object('kind', 'phone', 'value', r.payload -> 'fields' ->> 'phone') WHERE r.payload -> 'fields' ? 'phone') x) AS ids) w`,
  where: 'true',
};

/**
 * Gmail: the first text/plain part anywhere in the MIME tree, base64url-decoded as UTF-8 (the
 * declared charset is not read), else the snippet (no HTML-to-text: the generated mail always has
 * a text part); addresses split at commas (quoted commas are not understood), `Name <address>` or
 * a bare address, no RFC 2047 decoding; names from From and To, as the normalizer takes them.
 * Attachments: parts with a file name. The payload is opened once (jsonb_to_record): a message is
 * a few kB, stored compressed, and every `->` on the column would decompress it again.
 */
const gmail: Mapping = {
  select: `CASE WHEN g."labelIds" ? 'SENT' THEN 'email_sent' ELSE 'email_received' END,
h.subject,
coalesce(
  (SELECT convert_from(decode(rpad(translate(t.data, '-_', '+/'), (length(t.data) + 3) / 4 * 4, '='), 'base64'), 'UTF8')
   FROM (SELECT jsonb_path_query_first(g.payload, 'strict $.**?(@.mimeType == "text/plain").body.data') #>> '{}' AS data) t),
  g.snippet),
jsonb_strip_nulls(jsonb_build_object(
  'id', g.id, 'threadId', g."threadId", 'labelIds', g."labelIds", 'historyId', g."historyId", 'internalDate', g."internalDate",
  'headers', coalesce(g.payload -> 'headers', '[]'::jsonb))),
to_timestamp(g."internalDate"::bigint / 1000.0),
jsonb_strip_nulls(jsonb_build_object(
  'direction', CASE WHEN g."labelIds" ? 'SENT' THEN 'outbound' ELSE 'inbound' END,
  'from', h.from_, 'to', h.to_, 'cc', h.cc,
  'threadId', g."threadId", 'labels', g."labelIds", 'messageId', h.message_id,
  'attachments', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('name', a ->> 'filename', 'mimeType', a -> 'mimeType',
                                                     'size', a -> 'body' -> 'size', 'id', a -> 'body' -> 'attachmentId')))
                  FROM jsonb_path_query(g.payload, 'strict $.**?(@.filename != "")') a),
  'names', h.names))`,
  from: `CROSS JOIN LATERAL jsonb_to_record(r.payload) AS g(id text, "threadId" text, "labelIds" jsonb, "historyId" text, "internalDate" text, snippet text, payload jsonb)
CROSS JOIN LATERAL (
  SELECT (array_agg(hd.value) FILTER (WHERE hd.name = 'subject'))[1] AS subject,
         (array_agg(hd.value) FILTER (WHERE hd.name = 'message-id'))[1] AS message_id,
         coalesce(jsonb_agg(a.identity) FILTER (WHERE hd.name = 'from' AND a.address IS NOT NULL), '[]') AS from_,
         coalesce(jsonb_agg(a.identity) FILTER (WHERE hd.name = 'to' AND a.address IS NOT NULL), '[]') AS to_,
         jsonb_agg(a.identity) FILTER (WHERE hd.name = 'cc' AND a.address IS NOT NULL) AS cc,
         jsonb_object_agg(a.address, a.display) FILTER (WHERE hd.name IN ('from', 'to') AND a.display <> '') AS names
  FROM (SELECT lower(e ->> 'name') AS name, e ->> 'value' AS value FROM jsonb_array_elements(g.payload -> 'headers') e) hd
  LEFT JOIN LATERAL (
    SELECT m.address, jsonb_build_object('kind', 'email', 'value', m.address) AS identity, trim(split_part(m.one, '<', 1), ' "') AS display
    FROM (SELECT one, lower(trim(CASE WHEN one LIKE '%<%' THEN split_part(split_part(one, '<', 2), '>', 1) ELSE one END)) AS address
          FROM unnest(string_to_array(hd.value, ',')) one
          WHERE hd.name IN ('from', 'to', 'cc') AND one LIKE '%@%') m) a ON true) h`,
  where: `NOT coalesce(g."labelIds" ? 'DRAFT', false)`,
};

/**
 * Twilio: webhooks (`MessageSid`) and REST resources (`sid`), SMS or WhatsApp by the address
 * prefix. Phones keep what the payload says minus `whatsapp:` (not made E.164), media only from
 * `MediaUrl0` (the generator sends at most one), no location or reply fields; the body is trimmed,
 * not cleaned.
 */
const twilio: Mapping = {
  select: `t.channel || CASE WHEN t.inbound THEN '_received' ELSE '_sent' END,
NULL,
nullif(trim(coalesce(r.payload ->> 'Body', r.payload ->> 'body')), ''),
r.payload,
CASE WHEN t.rest THEN coalesce(nullif(r.payload ->> 'date_sent', '')::timestamptz, nullif(r.payload ->> 'date_created', '')::timestamptz, r.occurred_at)
     ELSE r.occurred_at END,
jsonb_strip_nulls(jsonb_build_object(
  'direction', CASE WHEN t.inbound THEN 'inbound' ELSE 'outbound' END,
  'from', jsonb_build_array(jsonb_build_object('kind', 'phone', 'value', regexp_replace(t.from_, '^whatsapp:', '', 'i'))),
  'to', jsonb_build_array(jsonb_build_object('kind', 'phone', 'value', regexp_replace(t.to_, '^whatsapp:', '', 'i'))),
  'channel', t.channel,
  'status', r.payload -> 'status',
  'accountSid', coalesce(r.payload -> 'AccountSid', r.payload -> 'account_sid'),
  'messagingServiceSid', coalesce(r.payload -> 'MessagingServiceSid', r.payload -> 'messaging_service_sid'),
  'errorCode', r.payload -> 'error_code',
  'numMedia', CASE WHEN t.rest AND (r.payload ->> 'num_media')::int > 0 THEN (r.payload ->> 'num_media')::int END,
  'mediaListUri', CASE WHEN t.rest AND (r.payload ->> 'num_media')::int > 0 THEN r.payload -> 'subresource_uris' -> 'media' END,
  'attachments', CASE WHEN coalesce(r.payload ->> 'MediaUrl0', '') <> ''
                      THEN jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('url', r.payload -> 'MediaUrl0', 'mimeType', r.payload -> 'MediaContentType0',
                                                                   'id', substring(r.payload ->> 'MediaUrl0' FROM '/Media/(ME[0-9a-f]{32})')))) END,
  'names', CASE WHEN nullif(trim(r.payload ->> 'ProfileName'), '') IS NOT NULL
                THEN jsonb_build_object(regexp_replace(t.from_, '^whatsapp:', '', 'i'), trim(r.payload ->> 'ProfileName')) END))`,
  from: `CROSS JOIN LATERAL (
  SELECT r.payload ? 'sid' AS rest,
         NOT (r.payload ? 'sid') OR r.payload ->> 'direction' = 'inbound' AS inbound,
         coalesce(r.payload ->> 'From', r.payload ->> 'from') AS from_,
         coalesce(r.payload ->> 'To', r.payload ->> 'to') AS to_,
         CASE WHEN lower(left(coalesce(r.payload ->> 'From', r.payload ->> 'from', ''), 9)) = 'whatsapp:'
                OR lower(left(coalesce(r.payload ->> 'To', r.payload ->> 'to', ''), 9)) = 'whatsapp:' THEN 'whatsapp' ELSE 'sms' END AS channel) t`,
  where: `NOT coalesce(r.payload ->> 'status' IN ('scheduled', 'canceled'), false)
AND (r.payload ? 'Body' OR r.payload ? 'sid' OR coalesce(r.payload ->> 'MessageStatus', r.payload ->> 'SmsStatus', 'received') IN ('received', 'receiving'))`,
};

/**
 * Instagram: an item or a whole webhook body (`entry[].messaging[]`, one interaction per message
 * item; `standby` items are not read). Messages with text or attachments only: postbacks,
 * reactions and read receipts are skipped; `is_deleted` withdrawals and messages withdrawn before
 * they arrived are not handled; text is trimmed, not cleaned.
 */
const instagram: Mapping = {
  select: `CASE WHEN (x.item -> 'message' ->> 'is_echo')::boolean THEN 'dm_sent' ELSE 'dm_received' END,
NULL,
nullif(trim(x.item -> 'message' ->> 'text'), ''),
CASE WHEN x.entry IS NULL THEN x.item ELSE x.item || jsonb_build_object('entry', jsonb_strip_nulls(jsonb_build_object('id', x.entry -> 'id', 'time', x.entry -> 'time'))) END,
to_timestamp((x.item ->> 'timestamp')::bigint / 1000.0),
jsonb_strip_nulls(jsonb_build_object(
  'direction', CASE WHEN (x.item -> 'message' ->> 'is_echo')::boolean THEN 'outbound' ELSE 'inbound' END,
  'from', jsonb_build_array(jsonb_build_object('kind', 'instagram_id', 'value', x.item -> 'sender' ->> 'id')),
  'to', jsonb_build_array(jsonb_build_object('kind', 'instagram_id', 'value', x.item -> 'recipient' ->> 'id')),
  'attachments', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('kind', a ->> 'type', 'url', a -> 'payload' -> 'url', 'name', a -> 'payload' -> 'title')))
                  FROM jsonb_array_elements(x.item -> 'message' -> 'attachments') a),
  'replyTo', x.item -> 'message' -> 'reply_to',
  'quickReply', x.item -> 'message' -> 'quick_reply' -> 'payload',
  'accountId', x.entry -> 'id'))`,
  from: `CROSS JOIN LATERAL (
  SELECT m.item, e.entry
  FROM jsonb_array_elements(CASE WHEN r.payload ? 'entry' THEN r.payload -> 'entry' ELSE '[]' END) e(entry),
       jsonb_array_elements(coalesce(e.entry -> 'messaging', '[]')) m(item)
  UNION ALL
  SELECT r.payload, NULL WHERE NOT r.payload ? 'entry') x`,
  where: `x.item -> 'message' ? 'mid' AND NOT coalesce((x.item -> 'message' ->> 'is_deleted')::boolean, false)
AND (nullif(trim(x.item -> 'message' ->> 'text'), '') IS NOT NULL OR jsonb_array_length(coalesce(x.item -> 'message' -> 'attachments', '[]')) > 0)`,
};

const MAPPINGS: Record<BenchProvider, Mapping> = { gmail, twilio, instagram, webform };

/** The interaction's source id: a message item's mid for Instagram (a body holds items), else the raw event's. */
const sourceId = (provider: BenchProvider) => (provider === 'instagram' ? `x.item -> 'message' ->> 'mid'` : 'r.source_id');

const INSERT = `INSERT INTO public.interactions (user_id, source, source_id, type, subject, body_text, body_raw, occurred_at, source_meta, batch_id, raw_event_id)`;

const selectOf = (provider: BenchProvider, m: Mapping) => `SELECT r.user_id, r.provider, ${sourceId(provider)},
${m.select},
r.batch_id, r.id`;

/** The mapping alone: every raw event of `provider` into interactions, one statement. Returns the rows written. */
export async function insertBaseline(db: Queryable, provider: BenchProvider): Promise<number> {
  const m = MAPPINGS[provider];
  const r = await db.query(
    `${INSERT}
${selectOf(provider, m)}
FROM public.raw_events r
${m.from}
WHERE r.provider = $1 AND ${m.where}
ON CONFLICT (user_id, source, source_id) DO NOTHING`,
    [provider],
  );
  return r.rowCount ?? 0;
}

/** The same work normalize does: the mapping plus taking the events off the queue. Returns the rows written. */
export async function insertBaselineTakingQueue(db: Queryable, provider: BenchProvider): Promise<number> {
  const m = MAPPINGS[provider];
  const r = await db.query(
    `WITH q AS (DELETE FROM omni_ingest.normalize_queue WHERE provider = $1 RETURNING raw_event_id)
${INSERT}
${selectOf(provider, m)}
FROM q
JOIN public.raw_events r ON r.id = q.raw_event_id
${m.from}
WHERE ${m.where}
ON CONFLICT (user_id, source, source_id) DO NOTHING`,
    [provider],
  );
  return r.rowCount ?? 0;
}
