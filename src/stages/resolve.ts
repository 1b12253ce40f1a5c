// resolve: interactions → contacts (SPEC §6). A batch is one transaction: claim queued
// interactions, work out who is on the other side (resolve-plan.ts), look their identities up
// set-based, link those that match exactly one contact (and their raw events), optionally create
// contacts for people nobody knows yet and merge the ones a race split (resolve-merge.ts), move
// the ledger, commit. A kill at any point rolls the batch back whole, queue rows included.
import type { Queryable } from '../db/connect.js';
import { CLASH_STATES } from '../db/pg-errors.js';
import { retryOnClash } from '../db/retry.js';
import type { Counts } from './engine/ledger.js';
import { claimQueued, countQueued, peekCursor, peekQueued } from './engine/queue.js';
import type { Stage } from './engine/runner.js';
import { mergeSplits, type Simulation, simulated } from './resolve-merge.js';
import {
  type ContactPlan,
  counterparts,
  type Decision,
  decide,
  keyOf,
  type Lookup,
  planContacts,
  type ResolveOptions,
  type Work,
} from './resolve-plan.js';
import * as sql from './resolve-sql.js';

export type { ResolveOptions } from './resolve-plan.js';

/** Deadlock, serialization failure, and a link to a contact merged away meanwhile (23503). */
const RACES: ReadonlySet<string> = new Set([...CLASH_STATES, '23503']);

async function lookupAll(db: Queryable, work: Work[]): Promise<Lookup> {
  const keys = new Map<string, sql.IdentityKey>();
  for (const w of work)
    for (const p of w.tiers.flat())
      for (const i of p.identities) keys.set(keyOf(w.row.user_id, i), { user_id: w.row.user_id, kind: i.kind, value: i.value });
  if (keys.size === 0) return new Map();
  const matches = await sql.lookupIdentities(db, JSON.stringify([...keys.values()]));
  return new Map(matches.map((m) => [keyOf(m.user_id, m), m.contact_id]));
}

/** A person of the interaction has identities some contact owns and identities nobody owns. */
function halfKnown(w: Work, lookup: Lookup): boolean {
  return w.tiers.some((tier) =>
    tier.some((p) => {
      const known = p.identities.filter((i) => lookup.has(keyOf(w.row.user_id, i))).length;
      return known > 0 && known < p.identities.length;
    }),
  );
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

type ResolveCount =
  | 'linked'
  | 'created_contacts'
  | 'created_identities'
  | 'merged_contacts'
  | 'unresolved'
  | 'ambiguous'
  | 'no_identity'
  | 'skipped';

/** The name the matched person goes by, for each linked interaction that has one. */
function namesOf(work: Work[], lookup: Lookup): { contact_id: string; name: string }[] {
  return work.flatMap((w) => {
    if (w.decision.kind !== 'link') return [];
    const contactId = w.decision.contactId;
    const person = w.tiers
      .flat()
      .find((p) => p.name !== null && p.identities.some((i) => lookup.get(keyOf(w.row.user_id, i)) === contactId));
    return person?.name ? [{ contact_id: contactId, name: person.name }] : [];
  });
}

/** When a dry run's contacts were made, for choosing the oldest: after any contact that exists. */
const SIMULATED_EPOCH = 8.64e15 - 1e9;

/**
 * Decides, creates (if asked) and links a batch's interactions, `db` being the batch's
 * transaction. With a `simulation` (--dry-run) nothing is written: the contacts created and
 * merged are remembered there, for the next dry batch to start from.
 */
async function resolveRows(
  db: Queryable,
  taken: number,
  rows: sql.ResolveInteractionRow[],
  options: ResolveOptions,
  simulation?: Simulation,
): Promise<Counts<ResolveCount>> {
  const write = simulation === undefined;
  // Gone, or linked since it was queued (by hand, by another tool): nothing to resolve.
  const pending = rows.filter((r) => r.contact_id === null);
  const work: Work[] = pending.map((row) => ({
    row,
    tiers: counterparts(row.type, row.source_meta, options.defaultRegion),
    decision: { kind: 'no_identity' },
  }));
  let lookup = await lookupAll(db, work);
  // A dry run remembers the contacts its earlier batches would have created and merged.
  if (simulation) simulated(lookup, simulation);
  for (const w of work) w.decision = decide(w.row.user_id, w.tiers, lookup);

  // One person whose identities lead to several contacts: merged, before the plans (the batch
  // shows it: two forms sharing an email, each with a phone of its own contact) and after them
  // (another worker took one of the identities meanwhile).
  let merged = 0;
  const mergeSplitsNow = async () => {
    if (!options.createContacts) return;
    const reread = () => lookupAll(db, work);
    const m = await mergeSplits({ db, work, lookup, write, simulation, logger: options.logger, reread });
    merged += m.merged;
    lookup = m.lookup;
  };
  await mergeSplitsNow();

  const created = { contacts: 0, identities: 0 };
  const plans = options.createContacts ? planContacts(work, lookup) : [];
  if (plans.length > 0) {
    // What the plans were made for, decided again once they are written: the unknown, and the
    // linked whose person gives its contact another identity — a web form linked by its phone,
    // whose email another worker's contact took meanwhile, is that person split (merged below).
    const planned = work.filter((w) => w.decision.kind === 'none' || (w.decision.kind === 'link' && halfKnown(w, lookup)));
    if (write) {
      Object.assign(created, await writePlans(db, plans));
      // Read again rather than trust the plans: where another worker won an identity, its contact is the one.
      for (const [k, c] of await lookupAll(db, planned)) lookup.set(k, c);
    } else {
      for (const p of plans)
        for (const i of p.identities) {
          lookup.set(keyOf(p.userId, i), p.contactId);
          simulation?.identities.set(keyOf(p.userId, i), p.contactId);
        }
      for (const p of plans)
        if (p.isNew) simulation?.created.set(p.contactId, { userId: p.userId, at: SIMULATED_EPOCH + (simulation?.created.size ?? 0) });
      created.contacts = plans.filter((p) => p.isNew).length;
      created.identities = plans.reduce((n, p) => n + p.identities.length, 0);
    }
    for (const w of planned) w.decision = decide(w.row.user_id, w.tiers, lookup);
    // Only what the plans changed can be split now: the pass before them merged the rest.
    await mergeSplitsNow();
  }

  const links = work.flatMap((w) => (w.decision.kind === 'link' ? [{ id: w.row.id, contact_id: w.decision.contactId }] : []));
  const linked = !write ? links.length : links.length === 0 ? 0 : (await sql.linkInteractions(db, JSON.stringify(links))).linked;
  // A contact the pipeline named after a phone or an email gets the person's name once one is known.
  if (write && links.length > 0) await sql.nameContacts(db, namesOf(work, lookup));
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
  if (options.createContacts) {
    counts.created_identities = created.identities;
    if (merged > 0) counts.merged_contacts = merged;
  }
  return counts;
}

/** A dry run's keyset position, and what its earlier batches would have written. */
interface DryCursor {
  after: string | undefined;
  simulation: Simulation;
}

export function createResolveStage(options: ResolveOptions): Stage<ResolveCount, DryCursor> {
  return {
    name: 'resolve',
    countPending: (db, range, before) => countQueued(db, ['resolve'], range, before),
    // Workers creating and merging the same people may deadlock on their locks, or one may link to
    // a contact another has just merged away (a foreign key violation): PostgreSQL aborts one,
    // which simply runs its batch again and finds the contact the person now has.
    batch: (input) =>
      retryOnClash(
        () =>
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
        5,
        RACES,
      ),
    async dryBatch(input) {
      const cursor = input.cursor ?? { after: undefined, simulation: { identities: new Map(), merged: new Map(), created: new Map() } };
      const items = await peekQueued(input.db, ['resolve'], input.range, input.size, cursor.after);
      if (items.length === 0) return { taken: 0, counts: {}, cursor };
      const rows = await sql.loadInteractions(
        input.db,
        items.map((i) => i.item_id),
      );
      const counts = await resolveRows(input.db, items.length, rows, options, cursor.simulation);
      return { taken: items.length, counts, cursor: { after: peekCursor(items), simulation: cursor.simulation } };
    },
  };
}
