// One person, two contacts: when processes running `resolve --create-contacts` at once (or one
// after another in small batches) each created a contact for the same stranger — from the phone
// in one batch, the email in another — an interaction that names both (a web form with email and
// phone) shows they are one person. Instead of calling it ambiguous for good, the contacts the
// pipeline created are merged into the oldest (SPEC §6); contacts a person entered are never
// merged. Re-running resolve with --retry-unresolved --create-contacts repairs the splits a
// database already holds.
import type { Queryable } from '../db/connect.js';
import type { Logger } from '../logger.js';
import { keyOf, type Lookup, type Work } from './resolve-plan.js';
import * as sql from './resolve-sql.js';

/**
 * The sets of contacts one person's identities lead to, when there are several: each set is a
 * person split across contacts. Sets sharing a contact are one set.
 */
export function splitPersons(work: Work[], lookup: Lookup): string[][] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  for (const w of work) {
    for (const person of w.tiers.flat()) {
      const contacts = [
        ...new Set(person.identities.map((i) => lookup.get(keyOf(w.row.user_id, i))).filter((c): c is string => c !== undefined)),
      ];
      if (contacts.length < 2) continue;
      for (const c of contacts) if (!parent.has(c)) parent.set(c, c);
      for (const c of contacts.slice(1)) union(contacts[0]!, c);
    }
  }
  const groups = new Map<string, string[]>();
  for (const c of parent.keys()) groups.set(find(c), [...(groups.get(find(c)) ?? []), c]);
  return [...groups.values()].filter((g) => g.length > 1);
}

/**
 * Merges each split person's contacts into the oldest, when every one of them is the pipeline's
 * own and the same user's (otherwise the interactions stay ambiguous, for a person to decide).
 * Returns merged contact → the contact it became, and whether a contact of a split was gone: merged
 * away by another worker since the batch looked, so the caller must look again. A dry run
 * (`write` false) only reads.
 */
export async function mergeSplitPersons(
  db: Queryable,
  groups: string[][],
  write: boolean,
  logger?: Logger,
): Promise<{ moved: Map<string, string>; gone: boolean }> {
  const moved = new Map<string, string>();
  if (groups.length === 0) return { moved, gone: false };
  const found = new Map((await sql.readContacts(db, groups.flat(), write)).map((c) => [c.id, c]));
  const merges: sql.Merge[] = [];
  let gone = false;
  for (const group of groups) {
    const contacts = group.map((id) => found.get(id));
    if (contacts.some((c) => c === undefined)) {
      gone = true;
      continue;
    }
    // Not all ours, or not one user's: ambiguous, for a person to decide.
    if (contacts.some((c) => !c!.ours || c!.user_id !== contacts[0]!.user_id)) continue;
    const [keep, ...others] = (contacts as sql.MergeCandidate[]).sort(
      (a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1),
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
