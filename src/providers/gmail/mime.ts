// Walking a Gmail MIME tree: which parts are the body, which are attachments.
// Real mail nests freely (mixed > related > alternative > text/plain; signed > mixed > …), so
// nothing here assumes a depth. A forwarded message (message/rfc822) is an attachment: its
// text is somebody else's mail, never this message's body.
import type { SourceMeta } from '../types.js';
import { decodeBytes } from './charset.js';
import type { MessagePart } from './schema.js';

type Attachment = NonNullable<SourceMeta['attachments']>[number];

/** The value of header `name` (case-insensitive) of a part, or null. */
function partHeader(part: MessagePart, name: string): string | null {
  const headers = part.headers;
  if (!headers) return null;
  for (const h of headers) if (h.name.length === name.length && h.name.toLowerCase() === name) return h.value;
  return null;
}

const paramRes = new Map<string, RegExp>();

/** A parameter of a structured header (`charset` of `text/plain; charset="ISO-8859-1"`). */
function headerParam(value: string | null, param: string): string | null {
  if (value === null) return null;
  let re = paramRes.get(param);
  if (re === undefined) {
    re = new RegExp(`;\\s*${param}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i');
    paramRes.set(param, re);
  }
  const m = re.exec(value);
  if (!m) return null;
  const v = (m[1] ?? m[2] ?? '').trim();
  return v === '' ? null : v;
}

function mimeTypeOf(part: MessagePart): string {
  if (part.mimeType) return part.mimeType.toLowerCase();
  // RFC 2045: no Content-Type means text/plain.
  const ct = partHeader(part, 'content-type');
  return ct === null ? 'text/plain' : (ct.split(';')[0] as string).trim().toLowerCase();
}

function isAttachment(part: MessagePart, mimeType: string): boolean {
  if (part.filename) return true;
  if (mimeType === 'message/rfc822') return true;
  const disposition = partHeader(part, 'content-disposition');
  return disposition !== null && /^\s*attachment\b/i.test(disposition);
}

/**
 * The parts that make up the body in `kind` (`text/plain` or `text/html`), in order:
 * in multipart/alternative the first alternative that has one; in any other multipart every
 * inline part in sequence (Apple Mail splits text around inline images; lists append footers).
 */
function bodyParts(part: MessagePart, kind: string, out: MessagePart[]): void {
  const mimeType = mimeTypeOf(part);
  if (isAttachment(part, mimeType)) return;
  if (mimeType === kind) {
    if (part.body?.data) out.push(part);
    return;
  }
  const children = part.parts;
  if (!children || !mimeType.startsWith('multipart/')) return;
  if (mimeType === 'multipart/alternative') {
    for (const child of children) {
      const found: MessagePart[] = [];
      bodyParts(child, kind, found);
      if (found.length > 0) {
        out.push(...found);
        return;
      }
    }
    return;
  }
  for (const child of children) bodyParts(child, kind, out);
}

function decodePart(part: MessagePart): string {
  const data = part.body?.data ?? '';
  const bytes = Buffer.from(data, 'base64url');
  return decodeBytes(bytes, headerParam(partHeader(part, 'content-type'), 'charset'));
}

/** The decoded text of the body parts in `kind`, or null when the message has none. */
export function bodyText(root: MessagePart, kind: 'text/plain' | 'text/html'): string | null {
  const parts: MessagePart[] = [];
  bodyParts(root, kind, parts);
  if (parts.length === 0) return null;
  if (parts.length === 1) return decodePart(parts[0] as MessagePart);
  // Pieces of one text (split around an inline image, or a list footer): paragraphs of one body.
  return parts
    .map((p) => decodePart(p).trim())
    .filter((t) => t !== '')
    .join('\n\n');
}

/** Every attachment in the tree (inline images included), without descending into forwarded messages. */
export function attachments(root: MessagePart): Attachment[] {
  const out: Attachment[] = [];
  const walk = (part: MessagePart) => {
    const mimeType = mimeTypeOf(part);
    if (isAttachment(part, mimeType)) {
      const a: Attachment = {};
      if (part.filename) a.name = part.filename;
      a.mimeType = mimeType;
      if (part.body?.size !== undefined) a.size = part.body.size;
      if (part.body?.attachmentId) a.id = part.body.attachmentId;
      out.push(a);
      return;
    }
    if (part.parts) for (const child of part.parts) walk(child);
  };
  walk(root);
  return out;
}
