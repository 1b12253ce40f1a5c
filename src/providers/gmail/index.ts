// Gmail: one `users.messages` resource (format=full) → one email interaction (SPEC §5).
import { parseAddressList } from '../../identity.js';
import { cleanTextOrNull, decodeEntities, htmlToText, jsonSafe } from '../../text.js';
import { interactions, parsePayload, payloadError, requireId, setIfDefined, skip } from '../common.js';
import { fromEpochMs } from '../dates.js';
import type { Identity, NormalizedInteraction, Provider, RawEventInput, SourceMeta } from '../types.js';
import { decodeEncodedWords } from './charset.js';
import { attachments, bodyText } from './mime.js';
import { messageSchema, type GmailMessage } from './schema.js';

const WHAT = 'Gmail message (users.messages, format=full)';

// The headers normalize() reads, looked up in one pass over the top-level list.
const WANTED = new Set(['subject', 'from', 'to', 'cc', 'bcc', 'message-id']);

function topHeaders(message: GmailMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const h of message.payload.headers ?? []) {
    const name = h.name.toLowerCase();
    if (!WANTED.has(name)) continue;
    // Repeated To/Cc headers (seen from some clients) are one list; Subject: the first wins.
    const prev = found.get(name);
    if (prev === undefined) found.set(name, h.value);
    else if (name !== 'subject' && name !== 'message-id') found.set(name, `${prev}, ${h.value}`);
  }
  return found;
}

function mailboxes(header: string | undefined, names: Record<string, string>): Identity[] {
  const out: Identity[] = [];
  for (const m of parseAddressList(header)) {
    out.push({ kind: 'email', value: m.email });
    if (m.name !== null && names[m.email] === undefined) {
      const name = cleanTextOrNull(decodeEncodedWords(m.name));
      if (name !== null && name.toLowerCase() !== m.email) names[m.email] = name;
    }
  }
  return out;
}

function body(message: GmailMessage): string | null {
  const plain = bodyText(message.payload, 'text/plain');
  if (plain !== null) {
    const text = cleanTextOrNull(plain);
    if (text !== null) return text;
  }
  // html-to-text only when there is no usable text/plain part: it costs ~100× more.
  const html = bodyText(message.payload, 'text/html');
  if (html !== null) {
    const text = cleanTextOrNull(htmlToText(html));
    if (text !== null) return text;
  }
  return message.snippet === undefined ? null : cleanTextOrNull(decodeEntities(message.snippet));
}

function normalizeMessage(message: GmailMessage): NormalizedInteraction {
  const time = fromEpochMs(message.internalDate);
  if (!time.ok) throw payloadError(WHAT, 'payload.internalDate', time.problem);
  const labels = message.labelIds ?? [];
  const outbound = labels.includes('SENT');
  const headers = topHeaders(message);
  const names: Record<string, string> = {};

  const sourceMeta: SourceMeta = {
    direction: outbound ? 'outbound' : 'inbound',
    from: mailboxes(headers.get('from'), names),
    to: mailboxes(headers.get('to'), names),
  };
  setIfDefined(sourceMeta, 'cc', mailboxes(headers.get('cc'), names));
  setIfDefined(sourceMeta, 'bcc', mailboxes(headers.get('bcc'), names));
  setIfDefined(sourceMeta, 'threadId', message.threadId);
  setIfDefined(sourceMeta, 'labels', message.labelIds);
  setIfDefined(sourceMeta, 'attachments', attachments(message.payload));
  setIfDefined(sourceMeta, 'messageId', cleanTextOrNull(headers.get('message-id')));
  if (Object.keys(names).length > 0) sourceMeta.names = names;

  const bodyRaw: Record<string, unknown> = { id: message.id };
  setIfDefined(bodyRaw, 'threadId', message.threadId);
  setIfDefined(bodyRaw, 'labelIds', message.labelIds);
  setIfDefined(bodyRaw, 'historyId', message.historyId);
  bodyRaw.internalDate = String(message.internalDate);
  bodyRaw.headers = jsonSafe(message.payload.headers ?? []);

  const subject = headers.get('subject');
  return {
    type: outbound ? 'email_sent' : 'email_received',
    sourceId: message.id,
    occurredAt: time.date,
    subject: subject === undefined ? null : cleanTextOrNull(decodeEncodedWords(subject)),
    bodyText: body(message),
    bodyRaw,
    sourceMeta: jsonSafe(sourceMeta),
  };
}

export const gmail: Provider = {
  name: 'gmail',

  identify(payload) {
    const id = requireId(payload, ['id'], WHAT);
    const raw = (payload as Record<string, unknown>).internalDate;
    const time = typeof raw === 'string' || typeof raw === 'number' ? fromEpochMs(raw) : null;
    return { sourceId: id, occurredAt: time?.ok ? time.date : null };
  },

  normalize(event: RawEventInput) {
    const message = parsePayload(messageSchema, event.payload, WHAT);
    // A draft is not an interaction yet; it is imported again once sent, under a new id.
    if (message.labelIds?.includes('DRAFT')) return skip('draft (labelIds has DRAFT): not sent');
    return interactions([normalizeMessage(message)]);
  },
};
