// Canonical identities (SPEC §6). Providers use them for every participant and the resolve stage
// uses them to look up contact_identities, so the same person must always come out the same:
// emails lower-cased and trimmed without display names, phones E.164, Instagram scoped ids.
// These run several times per event: no regex backtracking on long input, phone results cached.
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/min';

/** A canonical identity (SPEC §6): emails lower-cased without display names, phones E.164. */
export interface Identity {
  kind: 'email' | 'phone' | 'instagram_id';
  value: string;
}

export type IdentityKind = Identity['kind'];

// Deliberately not RFC 5321 in full (quoted local parts, IP literals): a CRM wants addresses
// people type. Local part: no spaces, quotes, brackets or separators, no dot at either end
// or twice in a row; domain: at least two dot-separated labels.
const EMAIL_RE =
  /^[^\s@"(),:;<>[\]\\.]+(?:\.[^\s@"(),:;<>[\]\\.]+)*@[^\s@"(),:;<>[\]\\.!#$%&'*+/=?^`{|}~]+(?:\.[^\s@"(),:;<>[\]\\.!#$%&'*+/=?^`{|}~]+)+$/;

/**
 * `"Sofía Rossi" <Sofia.Rossi@Example.COM>` → `sofia.rossi@example.com`. Accepts a bare
 * address, a name-addr, `mailto:` URIs and an old-style trailing `(comment)`. Null if the
 * input holds no single valid address.
 */
export function canonicalEmail(input: unknown): string | null {
  if (typeof input !== 'string' || input.length > 1000) return null;
  let s = input;
  const lt = s.lastIndexOf('<');
  if (lt !== -1) {
    const gt = s.indexOf('>', lt);
    s = s.slice(lt + 1, gt === -1 ? undefined : gt);
  } else if (s.includes('(')) {
    s = s.replace(/\([^()]*\)/g, '');
  }
  s = s.trim().toLowerCase();
  if (s.startsWith('mailto:')) {
    s = s.slice(7);
    const q = s.indexOf('?');
    if (q !== -1) s = s.slice(0, q);
    if (s.includes('%')) {
      try {
        s = decodeURIComponent(s).toLowerCase();
      } catch {
        return null;
      }
    }
  }
  if (s.length > 254 || s.length < 3) return null;
  return EMAIL_RE.test(s) ? s : null;
}

// Characters that need the full scanner: quotes, comments, lists, groups, more than one `<`.
const SPECIALS = /["(),:;\\]|<[^>]*</;

export interface Mailbox {
  /** The display name as written (unquoted, unescaped), or null. */
  name: string | null;
  /** The canonical address. */
  email: string;
}

/**
 * An RFC 5322 address list (From/To/Cc/Bcc/Reply-To): quoted display names with commas,
 * escapes, comments, groups (`Team: a@x.com, b@x.com;`). Invalid entries (e.g. the empty group
 * `undisclosed-recipients:;`) are left out; duplicates keep their first occurrence.
 * Encoded words (`=?UTF-8?B?…?=`) are returned as they are: decoding is the mail provider's job.
 */
export function parseAddressList(header: string | null | undefined): Mailbox[] {
  const out: Mailbox[] = [];
  if (!header) return out;
  // Most headers are one plain `Name <addr>` or `addr`: no scanning needed.
  if (!SPECIALS.test(header)) {
    const email = canonicalEmail(header);
    if (email !== null) {
      const lt = header.indexOf('<');
      const name = lt > 0 ? header.slice(0, lt).replace(/\s+/g, ' ').trim() : '';
      out.push({ name: name === '' ? null : name, email });
    }
    return out;
  }
  let text = ''; // display name or bare address outside <>
  let angle: string | null = null;
  let comment = '';
  let quoted = false;
  let depth = 0; // comment nesting
  let inAngle = false;
  const seen = new Set<string>();

  const flush = () => {
    const raw = angle ?? text;
    const email = canonicalEmail(raw);
    if (email !== null && !seen.has(email)) {
      seen.add(email);
      const display = (angle !== null ? text : comment).replace(/\s+/g, ' ').trim();
      out.push({ name: display === '' ? null : display, email });
    }
    text = '';
    angle = null;
    comment = '';
  };

  for (let i = 0; i < header.length; i++) {
    const c = header[i] as string;
    if (quoted) {
      if (c === '\\' && i + 1 < header.length) text += header[++i];
      else if (c === '"') quoted = false;
      else text += c;
    } else if (depth > 0) {
      if (c === '\\' && i + 1 < header.length) comment += header[++i];
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      else comment += c;
    } else if (inAngle) {
      if (c === '>') inAngle = false;
      else angle += c;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth = 1;
    else if (c === '<') {
      inAngle = true;
      angle = '';
    } else if (c === ',') flush();
    else if (c === ';') flush();
    else if (c === ':' && angle === null) {
      // A group's name ends here; its members follow.
      text = '';
      comment = '';
    } else text += c;
  }
  flush();
  return out;
}

// Contacts repeat, and a libphonenumber parse costs ~10 µs: the cache makes it ~0.1 µs.
// Cleared wholesale when full: simpler than an LRU and the working set refills in one batch.
const PHONE_CACHE_MAX = 50_000;
const phoneCache = new Map<string, string | null>();

/**
 * A phone number in E.164 (`+14155551234`), or null if it is not a valid number. Accepts
 * `whatsapp:`, `tel:` and `sms:` prefixes and any human formatting; a number in national format
 * needs `defaultRegion` (ISO 3166-1 alpha-2, e.g. `US`, `GB`).
 */
export function canonicalPhone(input: unknown, defaultRegion?: string | null): string | null {
  if (typeof input !== 'string' || input.length > 64) return null;
  const region = defaultRegion && /^[a-z]{2}$/i.test(defaultRegion) ? defaultRegion.toUpperCase() : '';
  const key = `${region}|${input}`;
  const cached = phoneCache.get(key);
  if (cached !== undefined) return cached;
  const result = parsePhone(input, region);
  if (phoneCache.size >= PHONE_CACHE_MAX) phoneCache.clear();
  phoneCache.set(key, result);
  return result;
}

function parsePhone(input: string, region: string): string | null {
  let s = input.trim();
  const colon = s.indexOf(':');
  if (colon !== -1) {
    const scheme = s.slice(0, colon).toLowerCase();
    if (scheme !== 'whatsapp' && scheme !== 'tel' && scheme !== 'sms') return null;
    s = s.slice(colon + 1).trim();
  }
  if (!/\d/.test(s) || /[a-z@]/i.test(s.replace(/(?:ext|x)\.?\s*\d+$/i, ''))) return null;
  const country = region !== '' && isSupportedCountry(region) ? (region as CountryCode) : undefined;
  const parsed = parsePhoneNumberFromString(s, country);
  return parsed?.isValid() ? parsed.number : null;
}

/** An Instagram-scoped id (numeric, given as a string or a safe integer), or null. */
export function instagramId(id: unknown): string | null {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id > 0 ? String(id) : null;
  if (typeof id !== 'string') return null;
  const s = id.trim();
  return /^[0-9]{1,32}$/.test(s) ? s : null;
}

export interface IdentityOptions {
  /** For phone numbers in national format. */
  defaultRegion?: string | null;
}

/** The canonical identity of `raw` taken as `kind`, or null if it is not a valid one. */
export function identityOf(kind: IdentityKind, raw: unknown, opts: IdentityOptions = {}): Identity | null {
  const value = kind === 'email' ? canonicalEmail(raw) : kind === 'phone' ? canonicalPhone(raw, opts.defaultRegion) : instagramId(raw);
  return value === null ? null : { kind, value };
}

/**
 * An identity typed by a person (a CLI argument, a search box): `kind:value` (`email:`,
 * `phone:`, `instagram_id:`/`ig:`), else an email if it has an `@`, else a phone number.
 */
export function parseIdentity(raw: string, opts: IdentityOptions = {}): Identity | null {
  const m = /^(email|phone|instagram_id|ig):(.*)$/i.exec(raw.trim());
  if (m) {
    const k = (m[1] as string).toLowerCase();
    return identityOf(k === 'ig' ? 'instagram_id' : (k as IdentityKind), m[2], opts);
  }
  return raw.includes('@') ? identityOf('email', raw, opts) : identityOf('phone', raw, opts);
}

/** `kind:value`, a stable key for maps and sets. */
export function identityKey(identity: Identity): string {
  return `${identity.kind}:${identity.value}`;
}

/** Appends `identity` unless it is null or already in `list`. */
export function addIdentity(list: Identity[], identity: Identity | null): void {
  if (identity === null) return;
  for (const existing of list) if (existing.kind === identity.kind && existing.value === identity.value) return;
  list.push(identity);
}
