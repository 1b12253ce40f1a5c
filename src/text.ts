// Text that is safe to store: PostgreSQL rejects NUL in `text` and `jsonb`, and `jsonb` rejects
// lone surrogates (JSON.stringify writes them as `\udXXX` escapes). Every provider runs its
// strings through here. Each function has a fast path because it runs for every event.
import { compile } from 'html-to-text';

// lib is ES2023 but Node 20 has the ES2024 well-formedness methods; typed locally so the
// project's lib setting stays as it is.
type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };
const wellFormed = (s: string): string => {
  const w = s as unknown as WellFormed;
  return w.isWellFormed() ? s : w.toWellFormed();
};

/**
 * Text for a column: valid UTF-16/UTF-8 (lone surrogates → U+FFFD), no NUL, `\r\n` and lone `\r`
 * → `\n`, trimmed. Other characters (Unicode, emoji, tabs) are kept as they are.
 */
export function cleanText(s: string): string {
  let out = wellFormed(s);
  if (out.includes('\0')) out = out.replaceAll('\0', '');
  if (out.includes('\r')) out = out.replace(/\r\n?/g, '\n');
  return out.trim();
}

/** cleanText, but null for an absent or (once cleaned) empty value. */
export function cleanTextOrNull(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  const out = cleanText(s);
  return out === '' ? null : out;
}

/** A string jsonb accepts, otherwise untouched (no trimming: body_raw is kept losslessly). */
function cleanJsonString(s: string): string {
  const out = wellFormed(s);
  return out.includes('\0') ? out.replaceAll('\0', '') : out;
}

/**
 * A deep copy of a JSON value in which every string, keys included, is acceptable to jsonb.
 * Non-JSON values (undefined, functions) are dropped the way JSON.stringify drops them; Dates
 * become ISO strings.
 */
export function cleanJson<T>(value: T): T {
  return copy(value) as T;
}

/**
 * `value` itself when jsonb would accept every string in it (the common case: no allocation),
 * else a cleaned deep copy. For values nobody mutates afterwards, e.g. what a provider returns.
 */
export function jsonSafe<T>(value: T): T {
  return isClean(value) ? value : cleanJson(value);
}

// NUL or any surrogate; a match is rare (emoji) and then checked properly.
const SUSPECT = /[\0\uD800-\uDFFF]/;
const isCleanString = (s: string): boolean => !SUSPECT.test(s) || (!s.includes('\0') && (s as unknown as WellFormed).isWellFormed());

function isClean(value: unknown): boolean {
  if (typeof value === 'string') return isCleanString(value);
  if (value === null || typeof value !== 'object') return typeof value !== 'number' || Number.isFinite(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isClean(value[i])) return false;
    return true;
  }
  if (value instanceof Date) return false;
  // for…in, not Object.keys: no array of keys allocated per object (~4% of what normalize allocated).
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (!isCleanString(key) || !isClean((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

function copy(value: unknown): unknown {
  if (typeof value === 'string') return cleanJsonString(value);
  if (value === null || typeof value !== 'object') {
    return typeof value === 'number' && !Number.isFinite(value) ? null : value;
  }
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = copy(value[i]);
      out[i] = v === undefined ? null : v;
    }
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  let taken: Set<string> | undefined; // the keys written, once a key needs cleaning
  for (const key of keys) {
    const v = copy((value as Record<string, unknown>)[key]);
    if (v === undefined || typeof v === 'function') continue;
    let k = cleanJsonString(key);
    if (k !== key) {
      // A cleaned key never takes the place of another key of the object: it keeps U+FFFD where
      // it had NUL, and more U+FFFD after it until it is a key of its own.
      taken ??= new Set(keys.filter((other) => cleanJsonString(other) === other));
      if (taken.has(k)) {
        k = wellFormed(key).replaceAll('\0', '\ufffd');
        while (taken.has(k)) k += '\ufffd';
      }
      taken.add(k);
    }
    // A plain assignment to "__proto__" would set the copy's prototype and lose the key.
    if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}

// Compiled once: html-to-text's option processing is far more expensive than a conversion.
// Link targets are dropped: in mail they are mostly tracking redirects, noise in a CRM timeline
// and in embeddings, and the HTML stays in reach through the message id. No word wrap (the UI
// wraps); headings keep their case.
const convert = compile({
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'h4', options: { uppercase: false } },
    { selector: 'h5', options: { uppercase: false } },
    { selector: 'h6', options: { uppercase: false } },
  ],
});

/** HTML → readable plain text (cleaned). */
export function htmlToText(html: string): string {
  return cleanText(convert(html));
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/**
 * Decodes the HTML entities found in plain-text snippets (Gmail's `snippet` escapes `&`, `<`,
 * `>`, quotes and apostrophes). Full HTML goes through htmlToText instead.
 */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '\ufffd';
    }
    return NAMED[ref.toLowerCase()] ?? whole;
  });
}

// C0 controls but tab and newline, DEL, and C1 controls: what can move a terminal's cursor,
// change its colours or its title when printed raw.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text safe to print on a terminal: control characters from the input (an escape sequence in a
 * payload, a stray carriage return) shown as `\xNN` instead of acted upon.
 */
export function printable(s: string): string {
  return s.replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
