// Bytes in a declared charset → string. Node's TextDecoder (full ICU) knows the WHATWG
// encodings: ISO-8859-*, windows-125x, Shift_JIS, ISO-2022-JP, EUC-*, GBK, Big5, KOI8…
// Decoders are cached: constructing one costs more than decoding a typical body.

import { TextDecoder } from 'node:util';

// Names mail software writes that are not WHATWG labels.
const ALIASES: Record<string, string> = {
  cp932: 'shift_jis',
  ms932: 'shift_jis',
  'windows-31j': 'shift_jis',
  cp936: 'gbk',
  ms936: 'gbk',
  cp949: 'euc-kr',
  ms949: 'euc-kr',
  cp950: 'big5',
  'utf-8-sig': 'utf-8',
};

// Node's TextDecoder decodes windows-1252 (and so every label WHATWG maps to it: iso-8859-1,
// latin1, us-ascii…) as ISO-8859-1, turning € ‘ ’ “ ” into C1 controls (nodejs/node#56542).
// Bytes 0x80–0x9F per the WHATWG table; the five it leaves undefined map to themselves.
const CP1252_C1 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

function decodeWindows1252(bytes: Uint8Array): string {
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return latin1.replace(/[\u0080-\u009f]/g, (c) => CP1252_C1[c.charCodeAt(0) - 0x80] as string);
}

/** A decoder, or 'windows-1252' for the labels Node gets wrong, or null for an unknown charset. */
const decoders = new Map<string, TextDecoder | 'windows-1252' | null>();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decoderFor(charset: string): TextDecoder | 'windows-1252' | null {
  const label = charset.trim().toLowerCase().replace(/^"|"$/g, '');
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    try {
      const d = new TextDecoder(ALIASES[label] ?? label);
      decoder = d.encoding === 'windows-1252' ? 'windows-1252' : d;
    } catch {
      decoder = null; // unknown charset: the caller falls back
    }
    if (decoders.size < 256) decoders.set(label, decoder);
  }
  return decoder;
}

const hasHighBytes = (bytes: Uint8Array): boolean => {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return true;
  return false;
};

/** The bytes as UTF-8 if they are valid UTF-8, else null. */
function asUtf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Decodes `bytes` in `charset` (SPEC §5). Bytes that are valid UTF-8 and not all 7-bit stay UTF-8
 * whatever the charset says: Gmail delivers 8-bit parts already converted to UTF-8 while the
 * part's header still names the original charset, and decoding them again would turn `ü` into
 * `Ã¼`. Otherwise the declared charset applies (7-bit ones such as ISO-2022-JP included). No
 * charset, US-ASCII or one Node does not know: UTF-8 if valid, else windows-1252 (which maps
 * every byte).
 */
export function decodeBytes(bytes: Uint8Array, charset: string | null): string {
  if (hasHighBytes(bytes)) {
    const utf8 = asUtf8(bytes);
    if (utf8 !== null) return utf8;
  }
  if (charset !== null) {
    const lower = charset.toLowerCase();
    if (lower === 'utf-8' || lower === 'utf8') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    // "us-ascii" with 8-bit bytes is mislabelled mail: guess like an unlabelled part.
    const decoder = lower === 'us-ascii' ? null : decoderFor(charset);
    if (decoder === 'windows-1252') return decodeWindows1252(bytes);
    if (decoder !== null) return decoder.decode(bytes);
  }
  return asUtf8(bytes) ?? decodeWindows1252(bytes);
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function wordBytes(encoding: string, text: string): Buffer {
  if (encoding === 'B' || encoding === 'b') return Buffer.from(text, 'base64');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '_') bytes.push(0x20);
    else if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0) & 0xff);
  }
  return Buffer.from(bytes);
}

/**
 * RFC 2047 encoded words in a header (`=?UTF-8?B?U29mw61h?=`, `=?ISO-8859-1?Q?Ren=E9?=`).
 * Adjacent words in one charset are decoded together: a multi-byte character may be split
 * between them. The whitespace between adjacent encoded words is dropped, as the RFC says.
 */
export function decodeEncodedWords(header: string): string {
  if (!header.includes('=?')) return header;
  let out = '';
  let last = 0;
  let pending: { charset: string; chunks: Buffer[] } | null = null;
  const flush = () => {
    if (pending) out += decodeBytes(Buffer.concat(pending.chunks), pending.charset);
    pending = null;
  };
  for (const m of header.matchAll(ENCODED_WORD)) {
    const between = header.slice(last, m.index);
    const charset = (m[1] as string).split('*')[0] as string; // RFC 2231 language suffix
    const bytes = wordBytes(m[2] as string, m[3] as string);
    const adjacent = pending !== null && /^\s*$/.test(between);
    if (adjacent && (pending as { charset: string }).charset.toLowerCase() === charset.toLowerCase()) {
      (pending as { chunks: Buffer[] }).chunks.push(bytes);
    } else {
      flush();
      if (!adjacent) out += between;
      pending = { charset, chunks: [bytes] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + header.slice(last);
}
