// Deciding who is on the other side of each interaction (SPEC §6), in memory: canonical
// identities of its counterparts, the contact they match, and — with --create-contacts — one new
// contact per unknown person however many interactions and identities they come with.
import { randomUUID } from 'node:crypto';
import { identityKey, identityOf } from '../identity.js';
import type { Logger } from '../logger.js';
import type { Identity } from '../providers/types.js';
import type { ResolveInteractionRow } from './resolve-sql.js';

export interface ResolveOptions {
  createContacts: boolean;
  /** Told of the contacts merged (which into which). */
  logger?: Logger | undefined;
  /** ISO 3166-1 alpha-2 region for phone numbers stored in national format. */
  defaultRegion?: string;
}

/** Someone on the other side of an interaction; every identity listed is theirs. */
interface Person {
  identities: Identity[];
  name: string | null;
}

/**
 * Who to look for, best first. Inbound: one tier holding the sender, all of whose `from`
 * identities are one person (a web form's email and phone). Outbound: the `to` recipients, then
 * the `cc` ones, each address a person of its own.
 */
export type Tiers = Person[][];

export type Decision =
  | { kind: 'link'; contactId: string }
  | { kind: 'ambiguous' }
  | { kind: 'none'; persons: Person[] }
  | { kind: 'no_identity' };

/** `user|kind:value` → contact id. */
export type Lookup = Map<string, string>;

const KINDS = new Set<string>(['email', 'phone', 'instagram_id']);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const keyOf = (userId: string, i: { kind: string; value: string }) => `${userId}\u0001${i.kind}:${i.value}`;

function namesOf(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!isRecord(value)) return out;
  for (const [k, name] of Object.entries(value)) if (typeof name === 'string' && name.trim() !== '') out.set(k, name.trim());
  return out;
}

/**
 * A source_meta identity list, canonicalized again: providers store canonical values, but rows
 * written by older tools or by hand may hold `Name <Mixed@Case>`, `whatsapp:+…` or a national
 * number that only `defaultRegion` makes E.164. Entries that are no identity are dropped.
 */
function identitiesOf(list: unknown, names: Map<string, string>, region: string | undefined): Person[] {
  if (!Array.isArray(list)) return [];
  const out: Person[] = [];
  for (const entry of list) {
    if (!isRecord(entry) || typeof entry.kind !== 'string' || !KINDS.has(entry.kind)) continue;
    const identity = identityOf(entry.kind as Identity['kind'], entry.value, { defaultRegion: region ?? null });
    if (identity === null) continue;
    const name = names.get(identity.value) ?? (typeof entry.value === 'string' ? names.get(entry.value) : undefined) ?? null;
    out.push({ identities: [identity], name });
  }
  return out;
}

export function counterparts(type: string | null, meta: unknown, region?: string): Tiers {
  const m = isRecord(meta) ? meta : {};
  const names = namesOf(m.names);
  // Rows without a direction (legacy) are told by their type: email_sent, sms_sent, dm_sent…
  const outbound = m.direction === 'outbound' || (m.direction !== 'inbound' && /_sent$/.test(type ?? ''));
  const seen = new Set<string>();
  if (!outbound) {
    const sender: Person = { identities: [], name: null };
    for (const p of identitiesOf(m.from, names, region)) {
      const identity = p.identities[0] as Identity;
      if (seen.has(identityKey(identity))) continue;
      seen.add(identityKey(identity));
      sender.identities.push(identity);
      sender.name ??= p.name;
    }
    return sender.identities.length > 0 ? [[sender]] : [];
  }
  // Our own addresses are not the counterpart (someone who copies themselves).
  for (const p of identitiesOf(m.from, names, region)) seen.add(identityKey(p.identities[0] as Identity));
  const tiers: Tiers = [];
  for (const list of [m.to, m.cc]) {
    const tier = identitiesOf(list, names, region).filter((p) => {
      const key = identityKey(p.identities[0] as Identity);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (tier.length > 0) tiers.push(tier);
  }
  return tiers;
}

/**
 * The first tier with any known identity decides: one contact links, several are ambiguous
 * (never guessed). So a mail to a known client copying a known colleague goes to the client.
 */
export function decide(userId: string, tiers: Tiers, lookup: Lookup): Decision {
  if (tiers.length === 0) return { kind: 'no_identity' };
  for (const tier of tiers) {
    const found = new Set<string>();
    for (const p of tier)
      for (const i of p.identities) {
        const c = lookup.get(keyOf(userId, i));
        if (c !== undefined) found.add(c);
      }
    if (found.size > 1) return { kind: 'ambiguous' };
    for (const only of found) return { kind: 'link', contactId: only };
  }
  return { kind: 'none', persons: tiers[0] ?? [] };
}

export interface Work {
  row: ResolveInteractionRow;
  tiers: Tiers;
  decision: Decision;
}

export interface ContactPlan {
  userId: string;
  /** An existing contact gaining identities, or a new one (a provisional id until it owns one). */
  contactId: string;
  isNew: boolean;
  /** The identities to insert (none of them owned yet). */
  identities: Identity[];
  displayName: string | null;
  primaryEmail: string | null;
  primaryPhone: string | null;
  source: string | null;
}

/**
 * With --create-contacts: one contact per distinct unknown person of the batch. The same person
 * may appear in several interactions with different identities (a web form with email and
 * phone, then an SMS from that phone): identities are merged transitively (union-find), so
 * they become one contact. A person whose other identities already belong to one contact (the
 * known email of a web form) gives that contact the unknown ones instead. A group touching two
 * contacts is left alone: merging contacts is for a person to decide.
 */
export function planContacts(work: Work[], lookup: Lookup, newId: () => string = randomUUID): ContactPlan[] {
  const parent = new Map<string, string>();
  const info = new Map<string, { userId: string; identity: Identity; name: string | null; source: string | null }>();
  const find = (k: string): string => {
    let root = k;
    for (let up = parent.get(root); up !== undefined && up !== root; up = parent.get(root)) root = up;
    for (let n = k; n !== root; ) {
      const next = parent.get(n) as string;
      parent.set(n, root); // path compression: later finds are one step
      n = next;
    }
    return root;
  };
  const add = (userId: string, source: string | null, person: Person) => {
    let first: string | undefined;
    for (const identity of person.identities) {
      const key = keyOf(userId, identity);
      if (!parent.has(key)) {
        parent.set(key, key);
        info.set(key, { userId, identity, name: person.name, source });
      } else if (person.name !== null) {
        const known = info.get(key);
        if (known && known.name === null) known.name = person.name;
      }
      if (first === undefined) first = key;
      else parent.set(find(key), find(first));
    }
  };
  for (const w of work) {
    const d = w.decision;
    if (d.kind === 'none') for (const p of d.persons) add(w.row.user_id, w.row.source, p);
    if (d.kind !== 'link') continue;
    for (const p of w.tiers.flat()) {
      const owners = new Set(p.identities.map((i) => lookup.get(keyOf(w.row.user_id, i))));
      if (owners.size === 2 && owners.has(d.contactId) && owners.has(undefined)) add(w.row.user_id, w.row.source, p);
    }
  }
  const groups = new Map<string, string[]>();
  for (const key of info.keys()) {
    const root = find(key);
    groups.set(root, [...(groups.get(root) ?? []), key]);
  }
  const plans: ContactPlan[] = [];
  for (const keys of groups.values()) {
    const owners = new Set(keys.map((k) => lookup.get(k)).filter((c): c is string => c !== undefined));
    const members = keys.map((k) => info.get(k)).filter((m) => m !== undefined);
    const unowned = members.filter((m) => lookup.get(keyOf(m.userId, m.identity)) === undefined);
    const head = members[0];
    if (owners.size > 1 || unowned.length === 0 || head === undefined) continue;
    const first = (kind: Identity['kind']) => members.find((m) => m.identity.kind === kind)?.identity.value ?? null;
    const [existing] = owners;
    plans.push({
      userId: head.userId,
      contactId: existing ?? newId(),
      isNew: existing === undefined,
      identities: unowned.map((m) => m.identity),
      displayName: members.find((m) => m.name !== null)?.name ?? first('email') ?? first('phone') ?? head.identity.value,
      primaryEmail: first('email'),
      primaryPhone: first('phone'),
      source: head.source,
    });
  }
  return plans;
}
