// What writes about a contact while resolve may merge it away takes first (insights, timeline):
// neither ai_insights nor contact_timeline has a foreign key to contacts, so nothing else would
// stop a row about a contact that is gone.
import type { Queryable } from '../db/connect.js';

/**
 * Locks the contacts against a merge — FOR KEY SHARE, in id order, as a merge locks them FOR
 * UPDATE — and returns those that exist. A merge that locked them first has committed by then:
 * the one it merged away is gone. One that comes later waits for this transaction, and then
 * deletes what it wrote about the contact it merges away.
 */
export async function lockContacts(tx: Queryable, ids: string[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ id: string }>(
    `
SELECT c.id
FROM public.contacts c
WHERE c.id = ANY($1::uuid[])
ORDER BY c.id
FOR KEY SHARE`,
    [ids],
  );
  return new Set(rows.map((r) => r.id));
}
