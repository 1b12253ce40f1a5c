// Session settings a batch transaction may take for itself (SET LOCAL: this transaction only).
import type { Queryable } from './connect.js';

/**
 * A batch need not wait for its WAL to reach disk: if the server crashes before it does, the whole
 * batch is lost atomically — its queue rows with it — and the next run simply does it again.
 * Nothing is half-done or lost, and each commit saves a flush.
 */
export async function relaxCommitDurability(tx: Queryable): Promise<void> {
  await tx.query(`SET LOCAL synchronous_commit = off`);
}
