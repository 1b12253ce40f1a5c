// One person, two contacts: when processes running `resolve --create-contacts` at once (or one
// after another in small batches) each created a contact for the same stranger — from the phone
// in one batch, the email in another — an interaction that names both (a web form with email and
// phone) shows they are one person. Instead of calling it ambiguous for good, the contacts the
// pipeline created are merged into the oldest (SPEC §6); contacts a person entered are never
// merged. Re-running resolve with --retry-unresolved --create-contacts repairs the splits a
// database already holds.
import type { Queryable } from '../db/connect.js';
import type { Logger } from '../logger.js';
import { decide, keyOf, type Lookup, type Work } from './resolve-plan.js';
import * as sql from './resolve-sql.js';

/**
 * The sets of contacts one person's identities lead to, when there are several: each set is a
 * person split across contacts. An identity is one person's, and so is a contact: everyone of
 * the batch sharing an identity, and every identity a contact owns, is one person (two forms
 * with one email and two phones are one person with three identities). The sets are disjoint —
 * a contact is in one at most — so one merge statement can apply them all.
 */
function splitPersons(work: Work[], lookup: Lookup): string[][] {
  // Union-find with whole-path compression and union by size: linear in the batch whatever its shape.
  const parent = new Map<string, string>();
  const size = new Map<string, number>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    for (let n = x; n !== r; ) {
      const next = parent.get(n)!;
      parent.set(n, r);
      n = next;
    }
    return r;
  };
  const node = (k: string) => {
    if (!parent.has(k)) {
      parent.set(k, k);
      size.set(k, 1);
    }
    return k;
  };
  const union = (a: string, b: string) => {
    const [ra, rb] = [find(node(a)), find(node(b))];
    if (ra === rb) return;
    const [small, big] = size.get(ra)! < size.get(rb)! ? [ra, rb] : [rb, ra];
    parent.set(small, big);
    size.set(big, size.get(big)! + size.get(small)!);
  };
  const contactNode = (c: string) => `\u0002${c}`;
  for (const w of work)
    for (const person of w.tiers.flat()) {
      const keys = person.identities.map((i) => keyOf(w.row.user_id, i));
      for (const k of keys) {
        union(k, keys[0]!);
        const c = lookup.get(k);
        if (c !== undefined) union(k, contactNode(c));
      }
    }
  const owners = new Map<string, Set<string>>();
  for (const k of parent.keys()) {
    const c = lookup.get(k);
    if (c === undefined) continue;
    const root = find(k);
    owners.set(root, (owners.get(root) ?? new Set()).add(c));
  }
  return [...owners.values()].filter((o) => o.size > 1).map((o) => [...o]);
}

/**
 * Merges each split person's contacts into one, when they are one user's and at most one of them
 * was entered by a person: into that one, or else into the oldest. Two contacts people entered
 * are never merged (their interactions stay ambiguous, for a person to decide).
 * Returns merged contact → the contact it became, and whether a contact of a split was gone: merged
 * away by another worker since the batch looked, so the caller must look again. A dry run
 * (`write` false) only reads.
 */
async function mergeSplitPersons(
  db: Queryable,
  groups: string[][],
  write: boolean,
  logger?: Logger,
  simulation?: Simulation,
): Promise<{ moved: Map<string, string>; gone: boolean }> {
  const moved = new Map<string, string>();
  if (groups.length === 0) return { moved, gone: false };
  const found = new Map((await sql.readContacts(db, groups.flat(), write)).map((c) => [c.id, c]));
  // A dry run's contacts exist in its simulation only: the pipeline's, and younger than any.
  for (const [id, c] of simulation?.created ?? [])
    if (!found.has(id) && groups.some((g) => g.includes(id)))
      found.set(id, {
        id,
        user_id: c.userId,
        created_at: new Date(c.at),
        display_name: null,
        primary_email: null,
        primary_phone: null,
        ours: true,
      });
  const merges: sql.Merge[] = [];
  let gone = false;
  for (const group of groups) {
    const contacts = group.map((id) => found.get(id));
    if (contacts.some((c) => c === undefined)) {
      gone = true;
      continue;
    }
    // Two a person entered, or not one user's: ambiguous, for a person to decide.
    if (contacts.filter((c) => !c!.ours).length > 1 || contacts.some((c) => c!.user_id !== contacts[0]!.user_id)) continue;
    const [keep, ...others] = (contacts as sql.MergeCandidate[]).sort(
      (a, b) => Number(a.ours) - Number(b.ours) || a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1),
    );
    for (const o of others) {
      merges.push({ keep: keep!.id, other: o.id, user_id: keep!.user_id });
      moved.set(o.id, keep!.id);
    }
    logger?.info(
      `resolve: ${others.length + 1} contacts are one person: ${others.map((o) => o.id).join(', ')} merged into ${keep!.id}${write ? '' : ' (dry run)'}`,
    );
  }
  if (write) await sql.mergeContacts(db, merges);
  return { moved, gone };
}

/**
 * What a dry run's earlier batches would have written, for its later batches to start from: the
 * identities of the contacts they would have created, and the contacts they would have merged
 * away (→ the contact each became), which the database still holds.
 */
export interface Simulation {
  identities: Lookup;
  merged: Map<string, string>;
  /** The contacts it would have created: their user, and when (after every contact that exists). */
  created: Map<string, { userId: string; at: number }>;
}

/** A lookup as a dry run's earlier batches would have left it. */
export function simulated(lookup: Lookup, simulation: Simulation): void {
  // Follows chains (merged into a contact merged away later); the bound only guards the loop.
  const settle = (contact: string) => {
    let c = contact;
    for (let hops = 0; simulation.merged.has(c) && hops <= simulation.merged.size; hops++) c = simulation.merged.get(c)!;
    return c;
  };
  for (const [k, c] of lookup) lookup.set(k, settle(c));
  for (const [k, c] of simulation.identities) if (!lookup.has(k)) lookup.set(k, settle(c));
}

/** Looks at the database again this many times when merges by other workers keep overtaking a batch's. */
const MERGE_ROUNDS = 5;

export interface MergeRun {
  db: Queryable;
  work: Work[];
  lookup: Lookup;
  /** False for --dry-run: merges are only remembered, in `simulation`. */
  write: boolean;
  simulation?: Simulation | undefined;
  logger?: Logger | undefined;
  /** The batch's identities read again from the database. */
  reread: () => Promise<Lookup>;
}

/**
 * Merges the persons the batch shows split and decides their interactions again: the ambiguous
 * ones, and those decided for a contact merged away (they follow it). Returns how many contacts
 * were merged away, and the lookup to go on with (read again when another worker merged a
 * contact of a split away since the batch looked: its merge had our lock).
 */
export async function mergeSplits(r: MergeRun): Promise<{ merged: number; lookup: Lookup }> {
  let { lookup } = r;
  let merged = 0;
  for (let round = 1; ; round++) {
    const { moved, gone } = await mergeSplitPersons(r.db, splitPersons(r.work, lookup), r.write, r.logger, r.simulation);
    merged += moved.size;
    for (const w of r.work)
      if (w.decision.kind === 'link' && moved.has(w.decision.contactId))
        w.decision = { kind: 'link', contactId: moved.get(w.decision.contactId)! };
    if (moved.size > 0) for (const [k, c] of lookup) if (moved.has(c)) lookup.set(k, moved.get(c)!);
    if (r.simulation && moved.size > 0) {
      for (const [k, c] of r.simulation.identities) if (moved.has(c)) r.simulation.identities.set(k, moved.get(c)!);
      for (const [other, keep] of moved) r.simulation.merged.set(other, keep);
    }
    const again = gone && r.write && round < MERGE_ROUNDS;
    if (again) lookup = await r.reread();
    if (again || moved.size > 0)
      for (const w of r.work) if (w.decision.kind === 'ambiguous') w.decision = decide(w.row.user_id, w.tiers, lookup);
    if (!again) return { merged, lookup };
  }
}
