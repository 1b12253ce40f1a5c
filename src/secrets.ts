// One scrubber for every path that leaves the process or reaches the database: log lines at
// every level, the command's result (text and --json), the error report, the run ledger and the
// dead letters. Providers and proxies echo keys back in their errors ("Incorrect API key
// provided: sk-…"), and such a message travels through retries, ledgers and dead letters long
// after the request. The secrets are the process's configuration, so they are registered once
// (commands/run.ts) and every sink consults the same list: a writer cannot forget to pass it.

const MASK = '****';

let patterns: string[] = [];

/**
 * Every form a secret may take in text we write: as configured, URL-encoded (in a URL or a
 * query string an error quotes) and JSON-escaped (inside a serialized body an error quotes).
 */
function formsOf(secret: string): string[] {
  const forms = new Set([secret, JSON.stringify(secret).slice(1, -1)]);
  try {
    forms.add(encodeURIComponent(secret));
  } catch {
    // A lone surrogate cannot be URL-encoded; no URL can then carry it either.
  }
  return [...forms];
}

/** Adds secrets to the process's list (the configured ones: API keys, the database password, S3's). */
export function registerSecrets(secrets: readonly string[]): void {
  const all = new Set(patterns);
  for (const secret of secrets) if (secret.length > 0) for (const form of formsOf(secret)) all.add(form);
  // Longest first, so a secret that contains another is masked whole.
  patterns = [...all].sort((a, b) => b.length - a.length);
}

/** The text with every known secret masked. */
export function scrub(text: string): string {
  let out = text;
  for (const p of patterns) if (out.includes(p)) out = out.split(p).join(MASK);
  return out;
}

/** A JSON-ready value with every string in it (keys included) scrubbed; the shape is kept. */
export function scrubValue<T>(value: T): T {
  if (patterns.length === 0) return value;
  return walk(value) as T;
}

function walk(value: unknown): unknown {
  if (typeof value === 'string') return scrub(value);
  if (Array.isArray(value)) return value.map(walk);
  if (value instanceof Date || value === null || typeof value !== 'object') return value;
  // Objects with their own serialisation (Buffer, Decimal-like) are left to it.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrub(k), walk(v)]));
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  patterns = [];
}
