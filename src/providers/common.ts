// What every provider shares: zod issues → PayloadError (the dead letter an operator reads),
// paths written the way the payload is (`payload.payload.parts[1].body.data`), skips.
import type { z } from 'zod';
import { PayloadError, type NormalizeResult, type NormalizedInteraction, type PayloadIssue, type RejectedItem } from './types.js';

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['payload', 'parts', 1, 'body']` → `payload.payload.parts[1].body` (rooted at `payload`). */
export function formatPath(path: readonly PropertyKey[], root = 'payload'): string {
  let out = root;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const k = String(key);
      out += IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
    }
  }
  return out;
}

/** A short, safe rendering of a value for an error message (never a whole body). */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `${JSON.stringify(shown)}${value.length > 40 ? ` (${value.length} characters)` : ''}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `an ${typeof value}`;
}

// The fields of zod 4's issue union this module reads; the union itself is unwieldy to narrow.
interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  expected?: string;
  values?: unknown[];
  minimum?: number | bigint;
  origin?: string;
  format?: string;
}

const withArticle = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

function issueMessage(issue: ZodIssueLike): string {
  const got = describeValue(issue.input);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = withArticle(issue.expected === 'record' ? 'object' : (issue.expected ?? 'other'));
      return issue.input === undefined ? `is missing (expected ${expected})` : `expected ${expected}, got ${got}`;
    }
    case 'invalid_value': {
      const values = (issue.values ?? []).map((v) => JSON.stringify(v));
      return `expected ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}, got ${got}`;
    }
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      return `${issue.message.replace(/^Too small: /, '')}, got ${got}`;
    case 'invalid_union':
      return issue.input === undefined ? `is missing (${issue.message})` : `${issue.message}, got ${got}`;
    case 'invalid_format':
    case 'custom':
      return issue.input === undefined ? issue.message : `${issue.message}, got ${got}`;
    default:
      return issue.message;
  }
}

/** zod issues → PayloadIssues with payload paths and specific messages. */
function toPayloadIssues(issues: readonly unknown[]): PayloadIssue[] {
  return issues.map((raw) => {
    const issue = raw as ZodIssueLike;
    return { path: formatPath(issue.path), message: issueMessage(issue) };
  });
}

/** One PayloadError from issues: the message names the first problem and counts the rest. */
export function payloadErrorFrom(what: string, issues: PayloadIssue[]): PayloadError {
  const first = issues[0];
  const head = first ? `${first.path} ${first.message}` : 'unknown problem';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new PayloadError(`invalid ${what}: ${head}${more}`, issues);
}

/** A PayloadError about one place in the payload. */
export function payloadError(what: string, path: string, message: string): PayloadError {
  return payloadErrorFrom(what, [{ path, message }]);
}

/**
 * Validates one part of a payload (an item of a webhook body) found at `at`: its issues' paths
 * are written from the payload's root (`payload.entry[0].messaging[2].timestamp`).
 */
export function parsePart<S extends z.ZodType>(schema: S, value: unknown, what: string, at: readonly PropertyKey[]): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map((raw) => {
    const issue = raw as unknown as ZodIssueLike;
    return { path: formatPath([...at, ...issue.path]), message: issueMessage(issue) };
  });
  throw payloadErrorFrom(what, issues);
}

/**
 * Validates with a schema compiled once at module load. `what` names the expected object in
 * the message: "invalid Gmail message (users.messages, format=full): payload.id is missing …".
 */
export function parsePayload<S extends z.ZodType>(schema: S, payload: unknown, what: string): z.output<S> {
  const result = schema.safeParse(payload, { reportInput: true });
  if (result.success) return result.data;
  throw payloadErrorFrom(what, toPayloadIssues(result.error.issues));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The payload's id: the first of `keys` present, a non-empty string (or a safe integer when
 * `allowNumber`). Throws the PayloadError identify() promises when there is none.
 */
export function requireId(payload: unknown, keys: readonly [string, ...string[]], what: string, allowNumber = false): string {
  if (!isRecord(payload)) throw payloadError(what, 'payload', `expected an object, got ${describeValue(payload)}`);
  for (const key of keys) {
    const v = payload[key];
    if (v === undefined || v === null) continue;
    if (typeof v === 'string' && v.trim() !== '') return v;
    if (allowNumber && typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
    throw payloadError(what, formatPath([key]), `expected a non-empty string id, got ${describeValue(v)}`);
  }
  const others = keys.slice(1);
  return fail(what, formatPath([keys[0]]), others.length > 0 ? `is missing (and so are ${others.join(', ')})` : 'is missing');
}

function fail(what: string, path: string, message: string): never {
  throw payloadError(what, path, message);
}

export function skip(reason: string): NormalizeResult {
  return { kind: 'skip', reason };
}

export function interactions(
  list: NormalizedInteraction[],
  extra: { rejected?: RejectedItem[]; retracted?: string[]; skipped?: number } = {},
): NormalizeResult {
  return {
    kind: 'interactions',
    interactions: list,
    ...(extra.rejected?.length ? { rejected: extra.rejected } : {}),
    ...(extra.retracted?.length ? { retracted: extra.retracted } : {}),
    ...(extra.skipped ? { skipped: extra.skipped } : {}),
  };
}

/** `target[key] = value` unless value is null, undefined or []: optional keys stay out of the JSON. */
export function setIfDefined<T extends object, K extends string>(target: T, key: K, value: unknown): void {
  if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0)) {
    (target as Record<string, unknown>)[key] = value;
  }
}
