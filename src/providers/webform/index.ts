// Web forms: one submission `{id, form_id, form_name?, submitted_at, fields{…}}` → one
// form_submitted interaction (SPEC §5). The people in it are found by field name.
import { z } from 'zod';
import { addIdentity, canonicalEmail, canonicalPhone } from '../../identity.js';
import { cleanText, cleanTextOrNull, jsonSafe } from '../../text.js';
import { interactions, parsePayload, payloadError, requireId, setIfDefined } from '../common.js';
import { parseIsoWithOffset } from '../dates.js';
import type { Identity, NormalizedInteraction, Provider, SourceMeta } from '../types.js';

const WHAT = 'web form submission';

const id = z.union([z.string().min(1), z.number().int()], { error: 'expected a non-empty string or an integer' });
const schema = z.object({
  id,
  form_id: id,
  form_name: z.string().nullish(),
  submitted_at: z.string(),
  fields: z.record(z.string(), z.unknown()),
});
type Submission = z.output<typeof schema>;

type Role = 'email' | 'phone' | 'name' | 'first' | 'last' | 'region' | 'message' | null;

// In order of preference when a form has several.
const MESSAGE_KEYS = ['message', 'comments', 'comment', 'body', 'enquiry', 'inquiry'];
const PHONE_TOKENS = new Set(['phone', 'telephone', 'tel', 'mobile', 'cell', 'cellphone', 'whatsapp', 'sms']);
const ROLE_BY_KEY: Record<string, Role> = {
  name: 'name',
  fullname: 'name',
  yourname: 'name',
  contactname: 'name',
  firstname: 'first',
  givenname: 'first',
  first: 'first',
  lastname: 'last',
  surname: 'last',
  familyname: 'last',
  last: 'last',
  country: 'region',
  countrycode: 'region',
};

// Forms reuse their keys for every submission: classify each key once.
const roles = new Map<string, Role>();

/** `workEmail`, `e-mail`, `Phone Number`, `whatsapp_number`… → what the field holds. */
function roleOf(key: string): Role {
  let role = roles.get(key);
  if (role !== undefined) return role;
  const tokens = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const joined = tokens.join('');
  if (MESSAGE_KEYS.includes(joined)) role = 'message';
  else if (tokens.includes('mail') || joined.includes('email')) role = 'email';
  else if (tokens.some((t) => PHONE_TOKENS.has(t)) || joined.includes('phone') || joined.includes('whatsapp')) role = 'phone';
  else role = ROLE_BY_KEY[joined] ?? null;
  if (roles.size < 10_000) roles.set(key, role);
  return role;
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' && Number.isFinite(value)) return [String(value)];
  if (Array.isArray(value)) return value.flatMap(strings);
  return [];
}

function render(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return cleanText(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value))
    return value
      .map(render)
      .filter((v) => v !== '')
      .join(', ');
  return JSON.stringify(jsonSafe(value));
}

function people(
  fields: Record<string, unknown>,
  keys: string[],
): { from: Identity[]; names: Record<string, string>; message: string | null } {
  let region: string | null = null;
  let name: string | null = null;
  let first = '';
  let last = '';
  const messages = new Map<string, string>();
  const emails: string[] = [];
  const phones: string[] = [];
  for (const key of keys) {
    const role = roleOf(key);
    if (role === null) continue;
    const value = fields[key];
    if (role === 'email') emails.push(...strings(value));
    else if (role === 'phone') phones.push(...strings(value));
    else if (typeof value !== 'string') continue;
    else if (role === 'message') messages.set(key.toLowerCase().replace(/[^a-z]/g, ''), value);
    else if (role === 'region') region = /^[A-Za-z]{2}$/.test(value.trim()) ? value.trim() : region;
    else if (role === 'name') name = value;
    else if (role === 'first') first = value;
    else last = value;
  }
  const from: Identity[] = [];
  for (const e of emails) {
    const value = canonicalEmail(e);
    addIdentity(from, value === null ? null : { kind: 'email', value });
  }
  // After the loop: `country` may come after `phone`, and a national number needs it.
  for (const p of phones) {
    const value = canonicalPhone(p, region);
    addIdentity(from, value === null ? null : { kind: 'phone', value });
  }
  const display = cleanTextOrNull(name ?? `${first} ${last}`);
  const names: Record<string, string> = {};
  if (display !== null) for (const i of from) names[i.value] = display;
  let message: string | null = null;
  for (const k of MESSAGE_KEYS) {
    message = cleanTextOrNull(messages.get(k));
    if (message !== null) break;
  }
  return { from, names, message };
}

/** Case-insensitive, then by code unit: deterministic in every locale. */
function byKey(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
}

function normalizeSubmission(s: Submission, payload: unknown): NormalizedInteraction {
  const time = parseIsoWithOffset(s.submitted_at);
  if (!time.ok) throw payloadError(WHAT, 'payload.submitted_at', time.problem);
  // Sorted: jsonb does not keep key order, and the body must not change on a re-run.
  const keys = Object.keys(s.fields).sort(byKey);
  const { from, names, message } = people(s.fields, keys);
  let body = message;
  if (body === null) {
    const lines: string[] = [];
    for (const key of keys) {
      const value = render(s.fields[key]);
      if (value !== '') lines.push(`${cleanText(key)}: ${value}`);
    }
    body = lines.length > 0 ? lines.join('\n') : null;
  }
  const formName = cleanTextOrNull(s.form_name);
  const sourceMeta: SourceMeta = { direction: 'inbound', from, to: [], formId: String(s.form_id) };
  setIfDefined(sourceMeta, 'formName', formName);
  if (Object.keys(names).length > 0) sourceMeta.names = names;
  return {
    type: 'form_submitted',
    sourceId: String(s.id),
    occurredAt: time.date,
    subject: formName,
    bodyText: body,
    bodyRaw: jsonSafe(payload as Record<string, unknown>),
    sourceMeta: jsonSafe(sourceMeta),
  };
}

export const webform: Provider = {
  name: 'webform',

  identify(payload) {
    const sourceId = requireId(payload, ['id'], WHAT, true);
    const at = (payload as Record<string, unknown>).submitted_at;
    const time = typeof at === 'string' ? parseIsoWithOffset(at) : null;
    return { sourceId, occurredAt: time?.ok ? time.date : null };
  },

  normalize(event) {
    return interactions([normalizeSubmission(parsePayload(schema, event.payload, WHAT), event.payload)]);
  },
};
