// resolve: interactions → contacts (SPEC §6). A batch is one transaction: claim queued
// interactions, work out who is on the other side, look their identities up set-based, link
// those that match exactly one contact (and their raw events), optionally create contacts for
// people nobody knows yet, move the ledger, commit. A kill at any point rolls the batch back
// whole, queue rows included.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/connect.js';
import { identityKey, identityOf } from '../identity.js';
import type { Identity } from '../providers/types.js';
import type { Counts } from './engine/ledger.js';
import { claimQueued, countQueued, peekCursor, peekQueued } from './engine/queue.js';
import type { Stage } from './engine/runner.js';
import * as sql from './resolve-sql.js';

export interface ResolveOptions {
  createContacts: boolean;
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
type Tiers = Person[][];

type Decision = { kind: 'link'; contactId: string } | { kind: 'ambiguous' } | { kind: 'none'; persons: Person[] } | { kind: 'no_identity' };

/** `user|kind:value` → contact id. */
type Lookup = Map<string, string>;

const KINDS = new Set<string>(['email', 'phone', 'instagram_id']);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const keyOf = (userId: string, i: { kind: string; value: string }) => `${userId}\u0001${i.kind}:${i.value}`;

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

function counterparts(type: string | null, meta: unknown, region?: string): Tiers {
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
function decide(userId: string, tiers: Tiers, lookup: Lookup): Decision {
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

interface Work {
  row: sql.ResolveInteractionRow;
  tiers: Tiers;
  decision: Decision;
}

interface ContactPlan {
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
function planContacts(work: Work[], lookup: Lookup, newId: () => string = randomUUID): ContactPlan[] {
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

async function lookupAll(db: Queryable, work: Work[]): Promise<Lookup> {
  const keys = new Map<string, sql.IdentityKey>();
  for (const w of work)
    for (const p of w.tiers.flat())
      for (const i of p.identities) keys.set(keyOf(w.row.user_id, i), { user_id: w.row.user_id, kind: i.kind, value: i.value });
  if (keys.size === 0) return new Map();
  const matches = await sql.lookupIdentities(db, JSON.stringify([...keys.values()]));
  return new Map(matches.map((m) => [keyOf(m.user_id, m), m.contact_id]));
}

/** Writes the plans; returns how many contacts and identities now exist that did not. */
async function writePlans(tx: Queryable, plans: ContactPlan[]): Promise<{ contacts: number; identities: number }> {
  const fresh = plans.filter((p) => p.isNew);
  if (fresh.length > 0) {
    await sql.insertContacts(
      tx,
      fresh.map((p) => ({
        id: p.contactId,
        user_id: p.userId,
        display_name: p.displayName,
        primary_email: p.primaryEmail,
        primary_phone: p.primaryPhone,
        source: p.source,
      })),
    );
  }
  const rows: sql.NewIdentityRow[] = plans.flatMap((p) =>
    p.identities.map((i) => ({ user_id: p.userId, contact_id: p.contactId, kind: i.kind, value: i.value, provider: p.source })),
  );
  const identities = await sql.insertIdentities(tx, JSON.stringify(rows));
  // A provisional contact whose identities all went to another worker's contact is not needed.
  const removed = await sql.deleteContactsWithoutIdentities(
    tx,
    fresh.map((p) => p.contactId),
  );
  return { contacts: fresh.length - removed, identities };
}

/**
 * Decides, creates (if asked) and links a batch's interactions, `db` being the batch's
 * transaction. With `simulated` (--dry-run) nothing is written: contacts are created in that
 * lookup only, which the next dry batch starts from.
 */
type ResolveCount = 'linked' | 'created_contacts' | 'created_identities' | 'unresolved' | 'ambiguous' | 'no_identity' | 'skipped';

async function resolveRows(
  db: Queryable,
  taken: number,
  rows: sql.ResolveInteractionRow[],
  options: ResolveOptions,
  simulated?: Lookup,
): Promise<Counts<ResolveCount>> {
  const write = simulated === undefined;
  // Gone, or linked since it was queued (by hand, by another tool): nothing to resolve.
  const pending = rows.filter((r) => r.contact_id === null);
  const work: Work[] = pending.map((row) => ({
    row,
    tiers: counterparts(row.type, row.source_meta, options.defaultRegion),
    decision: { kind: 'no_identity' },
  }));
  let lookup = await lookupAll(db, work);
  // A dry run remembers the contacts its earlier batches would have created.
  for (const [k, c] of simulated ?? []) if (!lookup.has(k)) lookup.set(k, c);
  for (const w of work) w.decision = decide(w.row.user_id, w.tiers, lookup);

  const created = { contacts: 0, identities: 0 };
  const plans = options.createContacts ? planContacts(work, lookup) : [];
  if (plans.length > 0) {
    if (write) {
      Object.assign(created, await writePlans(db, plans));
      // Read again rather than trust the plans: where another worker won an identity, its contact is the one.
      lookup = await lookupAll(
        db,
        work.filter((w) => w.decision.kind === 'none'),
      );
    } else {
      for (const p of plans)
        for (const i of p.identities) {
          lookup.set(keyOf(p.userId, i), p.contactId);
          simulated?.set(keyOf(p.userId, i), p.contactId);
        }
      created.contacts = plans.filter((p) => p.isNew).length;
      created.identities = plans.reduce((n, p) => n + p.identities.length, 0);
    }
    for (const w of work) if (w.decision.kind === 'none') w.decision = decide(w.row.user_id, w.tiers, lookup);
  }

  const links = work.flatMap((w) => (w.decision.kind === 'link' ? [{ id: w.row.id, contact_id: w.decision.contactId }] : []));
  const linked = !write ? links.length : links.length === 0 ? 0 : (await sql.linkInteractions(db, JSON.stringify(links))).linked;
  const tally = (kind: Decision['kind']) => work.filter((w) => w.decision.kind === kind).length;
  const counts: Counts<ResolveCount> = {
    events: taken,
    linked,
    created_contacts: created.contacts,
    unresolved: tally('none'),
    ambiguous: tally('ambiguous'),
    no_identity: tally('no_identity'),
    skipped: taken - pending.length + (links.length - linked),
  };
  if (options.createContacts) counts.created_identities = created.identities;
  return counts;
}

/** A dry run's keyset position, and the contacts its earlier batches would have created. */
interface DryCursor {
  after: string | undefined;
  simulated: Lookup;
}

export function createResolveStage(options: ResolveOptions): Stage<ResolveCount, DryCursor> {
  return {
    name: 'resolve',
    countPending: (db, range, before) => countQueued(db, ['resolve'], range, before),
    batch: (input) =>
      input.db.transaction(async (t) => {
        const items = await claimQueued(t, ['resolve'], input.range, input.size);
        if (items.length === 0) return { taken: 0, counts: {} };
        const rows = await sql.loadInteractions(
          t,
          items.map((i) => i.item_id),
        );
        const counts = await resolveRows(t, items.length, rows, options);
        await input.record(t, counts);
        return { taken: items.length, counts };
      }),
    async dryBatch(input) {
      const cursor = input.cursor ?? { after: undefined, simulated: new Map() };
      const items = await peekQueued(input.db, ['resolve'], input.range, input.size, cursor.after);
      if (items.length === 0) return { taken: 0, counts: {}, cursor };
      const rows = await sql.loadInteractions(
        input.db,
        items.map((i) => i.item_id),
      );
      const counts = await resolveRows(input.db, items.length, rows, options, cursor.simulated);
      return { taken: items.length, counts, cursor: { after: peekCursor(items), simulated: cursor.simulated } };
    },
  };
}
