// Instagram DMs: a messaging item or a whole webhook body → one dm_received / dm_sent per
// message item (SPEC §5). Reactions, read receipts and empty postbacks are skips; an unsent
// message (`is_deleted`) withdraws the stored one; in a whole body each item stands alone, so
// one bad item is one dead letter.
import { createHash } from 'node:crypto';
import { cleanTextOrNull, jsonSafe } from '../../text.js';
import { formatPath, interactions, isRecord, parsePart, parsePayload, payloadError, setIfDefined, skip } from '../common.js';
import { fromEpochMs } from '../dates.js';
import {
  PayloadError,
  type NormalizedInteraction,
  type NormalizeResult,
  type Provider,
  type RejectedItem,
  type SourceMeta,
} from '../types.js';
import { bodySchema, itemSchema, type MessagingItem } from './schema.js';

const WHAT_ITEM = 'Instagram messaging item (entry[].messaging[])';
const WHAT_BODY = 'Instagram webhook body';

type Attachment = NonNullable<SourceMeta['attachments']>[number];
type Entry = { id: string; time?: number | undefined };

/** The raw event source_id of the notice that message `mid` was unsent. */
const retractionKey = (mid: string) => `ig:deleted:${mid}`;

/** What one item makes: an interaction, the withdrawal of a message, or nothing (and why). */
type ItemResult = { interaction: NormalizedInteraction } | { retracted: string } | { skip: string };

const isBody = (payload: unknown): payload is Record<string, unknown> =>
  isRecord(payload) && (payload.entry !== undefined || payload.object !== undefined);

function attachmentsOf(item: MessagingItem): Attachment[] {
  const out: Attachment[] = [];
  for (const a of item.message?.attachments ?? []) {
    const entry: Attachment = { kind: a.type };
    if (a.payload?.url) entry.url = a.payload.url;
    if (a.payload?.title) entry.name = a.payload.title;
    out.push(entry);
  }
  return out;
}

/**
 * What an item makes. `raw` is the item as the payload holds it, at `at`; `item` is what the
 * schema made of it.
 */
function fromItem(item: MessagingItem, raw: Record<string, unknown>, at: (string | number)[], entry: Entry | null): ItemResult {
  const message = item.message;
  let sourceId: string;
  let text: string | null;
  const attachments = attachmentsOf(item);
  if (message) {
    // The sender unsent it: the customer withdrew the message, its text must go.
    if (message.is_deleted) return { retracted: message.mid };
    text = cleanTextOrNull(message.text);
    if (text === null && attachments.length === 0)
      return { skip: message.is_unsupported ? 'unsupported message (message.is_unsupported)' : 'empty message: no text, no attachments' };
    sourceId = message.mid;
  } else if (item.postback) {
    // A tapped button with a label is something the person said; without one it is noise.
    text = cleanTextOrNull(item.postback.title);
    if (text === null || !item.postback.mid) return { skip: 'postback without text' };
    sourceId = item.postback.mid;
  } else if (item.reaction) {
    const what = [item.reaction.action ?? 'react', item.reaction.emoji ?? item.reaction.reaction].filter(Boolean).join(' ');
    return { skip: `reaction (${what})` };
  } else if (item.read) {
    return { skip: 'read receipt' };
  } else {
    return { skip: 'messaging item without a message (referral, opt-in or handover)' };
  }

  const time = fromEpochMs(item.timestamp);
  if (!time.ok) throw payloadError(entry ? WHAT_BODY : WHAT_ITEM, `${formatPath(at)}.timestamp`, time.problem);
  const outbound = message?.is_echo === true;
  const sourceMeta: SourceMeta = {
    direction: outbound ? 'outbound' : 'inbound',
    from: [{ kind: 'instagram_id', value: item.sender.id }],
    to: [{ kind: 'instagram_id', value: item.recipient.id }],
  };
  setIfDefined(sourceMeta, 'attachments', attachments);
  setIfDefined(sourceMeta, 'replyTo', message?.reply_to);
  setIfDefined(sourceMeta, 'quickReply', message?.quick_reply?.payload);
  setIfDefined(sourceMeta, 'postback', item.postback?.payload);
  setIfDefined(sourceMeta, 'accountId', entry?.id);
  // body_raw: the item as it came, keys the schema does not know included, and from a whole
  // body its entry's id and time. That is a part of the payload, so the database can copy it.
  const set = entry ? { entry: entry.time === undefined ? { id: entry.id } : { id: entry.id, time: entry.time } } : undefined;
  const bodyRaw = set ? { ...raw, ...set } : raw;
  const safe = jsonSafe(bodyRaw);
  return {
    interaction: {
      type: outbound ? 'dm_sent' : 'dm_received',
      sourceId,
      occurredAt: time.date,
      subject: null,
      bodyText: text,
      bodyRaw: safe,
      ...(safe === bodyRaw ? { bodyRawAt: set ? { path: at, set } : { path: at } } : {}),
      sourceMeta: jsonSafe(sourceMeta),
    },
  };
}

/** The id an operator knows an item by: its mid, else where it is in the body. */
function itemLabel(raw: unknown, at: PropertyKey[]): string {
  return (isRecord(raw) && itemId(raw)) || formatPath(at);
}

function fromBody(payload: unknown): NormalizeResult {
  const body = parsePayload(bodySchema, payload, WHAT_BODY);
  const out: NormalizedInteraction[] = [];
  const retracted: string[] = [];
  const rejected: RejectedItem[] = [];
  const reasons = new Map<string, number>();
  body.entry.forEach((entry, e) => {
    const items = [
      ...(entry.messaging ?? []).map((raw, i) => ({ raw, at: ['entry', e, 'messaging', i] })),
      ...(entry.standby ?? []).map((raw, i) => ({ raw, at: ['entry', e, 'standby', i] })),
    ];
    items.forEach(({ raw, at }) => {
      try {
        const r = fromItem(parsePart(itemSchema, raw, WHAT_BODY, at), raw as Record<string, unknown>, at, entry);
        if ('interaction' in r) out.push(r.interaction);
        else if ('retracted' in r) retracted.push(r.retracted);
        else reasons.set(r.skip, (reasons.get(r.skip) ?? 0) + 1);
      } catch (err) {
        if (!(err instanceof PayloadError)) throw err;
        rejected.push({ item: itemLabel(raw, at), error: err });
      }
    });
  });
  const skipped = [...reasons.values()].reduce((a, b) => a + b, 0);
  if (out.length + retracted.length + rejected.length > 0) return interactions(out, { rejected, retracted, skipped });
  const summary = [...reasons].map(([r, n]) => (n > 1 ? `${n}× ${r}` : r)).join(', ');
  return skip(`no message in the webhook body${summary ? `: ${summary}` : ''}`);
}

/** JSON with sorted keys: the same body hashes the same after a jsonb round trip. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (isRecord(value))
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(value[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

function itemId(item: Record<string, unknown>): string | null {
  const message = item.message;
  if (isRecord(message) && typeof message.mid === 'string' && message.mid !== '') {
    return message.is_deleted === true ? retractionKey(message.mid) : message.mid;
  }
  const postback = item.postback;
  if (isRecord(postback) && typeof postback.mid === 'string' && postback.mid !== '') return postback.mid;
  return null;
}

function timeOf(value: unknown): Date | null {
  if (typeof value !== 'number') return null;
  const t = fromEpochMs(value);
  return t.ok ? t.date : null;
}

export const instagram: Provider = {
  name: 'instagram',

  /**
   * An item: its message (or postback) mid; a reaction or read receipt, which has none of its
   * own, `ig:<kind>:<sender>:<recipient>:<timestamp>`. A body with exactly one message item:
   * that message's mid, so the same message imported as an item or a body is one raw event.
   * Any other body: `ig:<entry[0].id>:<entry[0].time>:<sha256 of the sorted-key JSON, 16 hex>`.
   */
  identify(payload) {
    if (isBody(payload)) {
      const entries = Array.isArray(payload.entry) ? payload.entry.filter(isRecord) : [];
      const first = entries[0];
      if (!first) throw payloadError(WHAT_BODY, 'payload.entry', 'is missing or empty: nothing to import');
      const items = entries.flatMap((e) => [e.messaging, e.standby].flatMap((list) => (Array.isArray(list) ? list.filter(isRecord) : [])));
      const withId = items.filter((i) => itemId(i) !== null);
      const only = withId.length === 1 ? withId[0] : undefined;
      if (only) return { sourceId: itemId(only) as string, occurredAt: timeOf(only.timestamp) };
      let canonical: string;
      try {
        canonical = stableJson(payload);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        throw payloadError(WHAT_BODY, 'payload', 'is nested too deeply to be identified');
      }
      const hash = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
      return {
        sourceId: `ig:${String(first.id)}:${first.time === undefined ? '-' : String(first.time)}:${hash}`,
        occurredAt: timeOf(items[0]?.timestamp) ?? timeOf(first.time),
      };
    }
    if (!isRecord(payload)) throw payloadError(WHAT_ITEM, 'payload', 'expected an object');
    const occurredAt = timeOf(payload.timestamp);
    const id = itemId(payload);
    if (id !== null) return { sourceId: id, occurredAt };
    const sender = isRecord(payload.sender) ? payload.sender.id : undefined;
    const recipient = isRecord(payload.recipient) ? payload.recipient.id : undefined;
    const kind = ['reaction', 'read', 'postback', 'referral'].find((k) => payload[k] !== undefined);
    if (kind === undefined || typeof sender !== 'string' || typeof recipient !== 'string' || typeof payload.timestamp !== 'number') {
      throw payloadError(
        WHAT_ITEM,
        'payload.message.mid',
        'is missing: the item has no message id, and is not a reaction or read receipt with sender, recipient and timestamp',
      );
    }
    return { sourceId: `ig:${kind}:${sender}:${recipient}:${payload.timestamp}`, occurredAt };
  },

  normalize(event) {
    if (isBody(event.payload)) return fromBody(event.payload);
    const r = fromItem(parsePayload(itemSchema, event.payload, WHAT_ITEM), event.payload as Record<string, unknown>, [], null);
    if ('interaction' in r) return interactions([r.interaction]);
    return 'retracted' in r ? interactions([], { retracted: [r.retracted] }) : skip(r.skip);
  },

  retractionKey,
};
