// Twilio: an incoming-message webhook or a REST Message resource → one SMS / WhatsApp
// interaction (SPEC §5). The shape is told by its id key: `MessageSid` (webhook) or `sid` (REST).
import { canonicalPhone } from '../../identity.js';
import { cleanTextOrNull, jsonSafe } from '../../text.js';
import { interactions, isRecord, parsePayload, payloadError, requireId, setIfDefined, skip } from '../common.js';
import { parseRfc2822OrIso } from '../dates.js';
import type { Identity, NormalizedInteraction, NormalizeResult, Provider, RawEventInput, SourceMeta } from '../types.js';
import { restSchema, webhookSchema, type RestMessage, type Webhook } from './schema.js';

const WHAT = 'Twilio message (webhook parameters or REST Message resource)';
const WHAT_WEBHOOK = 'Twilio messaging webhook';
const WHAT_REST = 'Twilio REST Message resource';
const WEBHOOK_IDS = ['MessageSid', 'SmsMessageSid', 'SmsSid'] as const;

type Attachment = NonNullable<SourceMeta['attachments']>[number];

function shapeOf(payload: unknown): 'rest' | 'webhook' {
  if (isRecord(payload)) {
    if (payload.sid !== undefined) return 'rest';
    if (WEBHOOK_IDS.some((k) => payload[k] !== undefined)) return 'webhook';
  }
  throw payloadError(WHAT, 'payload.MessageSid', 'is missing, and so is sid: neither a webhook nor a REST Message resource');
}

const channelOf = (...addresses: (string | null | undefined)[]) =>
  addresses.some((a) => a !== null && a !== undefined && a.slice(0, 9).toLowerCase() === 'whatsapp:') ? 'whatsapp' : 'sms';

function phones(address: string | null | undefined): Identity[] {
  const value = canonicalPhone(address);
  return value === null ? [] : [{ kind: 'phone', value }];
}

const count = (v: string | number | null | undefined): number => (v === undefined || v === null ? 0 : Number(v));

/** MediaUrl0…/MediaContentType0…: Twilio numbers them from 0, at most 10 (scanned past NumMedia in case it is missing). */
function webhookMedia(payload: Webhook): Attachment[] {
  const out: Attachment[] = [];
  const declared = count(payload.NumMedia);
  for (let i = 0; i < Math.max(declared, 10); i++) {
    const url = payload[`MediaUrl${i}`];
    if (typeof url !== 'string' || url === '') continue;
    const a: Attachment = { url };
    const type = payload[`MediaContentType${i}`];
    if (typeof type === 'string' && type !== '') a.mimeType = type;
    const sid = /\/Media\/(ME[0-9a-f]{32})/i.exec(url);
    if (sid) a.id = sid[1] as string;
    out.push(a);
  }
  return out;
}

/**
 * A status callback (queued, sent, delivered, read…): the delivery report of an outbound message,
 * with no Body, whatever else it carries (Twilio may send as little as the sid and the status).
 * Its status, or undefined for anything else.
 */
function statusCallback(payload: unknown): string | undefined {
  if (!isRecord(payload) || payload.Body !== undefined) return undefined;
  const status = payload.MessageStatus ?? payload.SmsStatus;
  if (typeof status !== 'string' || status === '' || status === 'received' || status === 'receiving') return undefined;
  return status;
}

function fromWebhook(payload: Webhook, event: RawEventInput): NormalizeResult {
  if (event.occurredAt === null) {
    throw payloadError(WHAT_WEBHOOK, 'occurred_at', 'is null, and a webhook carries no time of its own');
  }
  const channel = channelOf(payload.From, payload.To);
  const from = phones(payload.From);
  const sourceMeta: SourceMeta = { direction: 'inbound', from, to: phones(payload.To), channel };
  setIfDefined(sourceMeta, 'accountSid', payload.AccountSid);
  setIfDefined(sourceMeta, 'messagingServiceSid', payload.MessagingServiceSid);
  setIfDefined(sourceMeta, 'attachments', webhookMedia(payload));
  const profile = cleanTextOrNull(payload.ProfileName);
  if (profile !== null && from[0]) sourceMeta.names = { [from[0].value]: profile };
  if (payload.Latitude !== undefined && payload.Longitude !== undefined) {
    const location: Record<string, unknown> = { latitude: payload.Latitude, longitude: payload.Longitude };
    setIfDefined(location, 'address', payload.Address);
    setIfDefined(location, 'label', payload.Label);
    sourceMeta.location = location;
  }
  setIfDefined(sourceMeta, 'replyTo', payload.OriginalRepliedMessageSid);
  const sid = (payload.MessageSid ?? payload.SmsMessageSid ?? payload.SmsSid) as string;
  return interactions([
    {
      type: `${channel}_received`,
      sourceId: sid,
      occurredAt: event.occurredAt,
      subject: null,
      bodyText: cleanTextOrNull(payload.Body),
      // All of it, Body included: a few hundred bytes, lossless (body_text is cleaned).
      bodyRaw: jsonSafe(payload),
      sourceMeta: jsonSafe(sourceMeta),
    },
  ]);
}

function restTime(message: RestMessage, event: RawEventInput): Date {
  const key = message.date_sent ? 'date_sent' : message.date_created ? 'date_created' : null;
  if (key === null) {
    if (event.occurredAt !== null) return event.occurredAt;
    throw payloadError(WHAT_REST, 'payload.date_sent', 'is missing, and so is date_created: the message has no time');
  }
  const time = parseRfc2822OrIso(message[key] as string);
  if (!time.ok) throw payloadError(WHAT_REST, `payload.${key}`, time.problem);
  return time.date;
}

function fromRest(message: RestMessage, payload: Record<string, unknown>, event: RawEventInput): NormalizeResult {
  // Never sent: a scheduled message may still be canceled, a canceled one never left.
  if (message.status === 'scheduled' || message.status === 'canceled') return skip(`message not sent (status=${message.status})`);
  const outbound = message.direction !== 'inbound';
  const channel = channelOf(message.from, message.to);
  const sourceMeta: SourceMeta = {
    direction: outbound ? 'outbound' : 'inbound',
    from: phones(message.from),
    to: phones(message.to),
    channel,
  };
  setIfDefined(sourceMeta, 'status', message.status);
  setIfDefined(sourceMeta, 'accountSid', message.account_sid);
  setIfDefined(sourceMeta, 'messagingServiceSid', message.messaging_service_sid);
  setIfDefined(sourceMeta, 'errorCode', message.error_code);
  const media = count(message.num_media);
  if (media > 0) {
    // A REST resource names no media: they are listed at the subresource URI.
    sourceMeta.numMedia = media;
    setIfDefined(sourceMeta, 'mediaListUri', message.subresource_uris?.media);
  }
  const interaction: NormalizedInteraction = {
    type: `${channel}_${outbound ? 'sent' : 'received'}`,
    sourceId: message.sid,
    occurredAt: restTime(message, event),
    subject: null,
    bodyText: cleanTextOrNull(message.body),
    bodyRaw: jsonSafe(payload),
    sourceMeta: jsonSafe(sourceMeta),
  };
  return interactions([interaction]);
}

export const twilio: Provider = {
  name: 'twilio',

  /**
   * A message: its sid. A status callback: `<sid>:status:<status>`, a key of its own, so a
   * delivery report never takes the key of the message it reports on, whichever arrives first.
   */
  identify(payload) {
    if (shapeOf(payload) === 'webhook') {
      const sid = requireId(payload, [...WEBHOOK_IDS], WHAT_WEBHOOK);
      const status = statusCallback(payload);
      return { sourceId: status === undefined ? sid : `${sid}:status:${status}`, occurredAt: null };
    }
    const sourceId = requireId(payload, ['sid'], WHAT_REST);
    const p = payload as Record<string, unknown>;
    const raw = typeof p.date_sent === 'string' && p.date_sent !== '' ? p.date_sent : p.date_created;
    const time = typeof raw === 'string' ? parseRfc2822OrIso(raw) : null;
    return { sourceId, occurredAt: time?.ok ? time.date : null };
  },

  normalize(event) {
    // Before validation: a bare callback (sid and status only) is still a delivery report.
    const status = statusCallback(event.payload);
    if (status !== undefined) return skip(`status callback (MessageStatus=${status}): a delivery report, not a message`);
    if (shapeOf(event.payload) === 'webhook') return fromWebhook(parsePayload(webhookSchema, event.payload, WHAT_WEBHOOK), event);
    return fromRest(parsePayload(restSchema, event.payload, WHAT_REST), event.payload as Record<string, unknown>, event);
  },
};
