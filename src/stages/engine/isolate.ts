// One row the database refuses must not sink its batch (SPEC §5: "a record the database refuses
// at write time is isolated and dead-lettered; it never blocks the events around it"). A write
// runs under a savepoint; when it fails because of the data (a value out of range, a key too long
// for its index, a check the row breaks) it is rolled back to the savepoint and split in halves,
// down to the single rows that fail, which are handed back with the database's own error while
// every other row is written. A failure that is not about the data (the connection, a bug, a
// lock) still fails the whole batch, whose transaction then rolls back as usual.
import type { Queryable } from '../../db/connect.js';
import { DatabaseError } from '../../errors.js';

/**
 * SQLSTATE classes of errors caused by the values written: 22 data exception (out of range,
 * invalid text, bad encoding), 23 integrity constraint violation (a check, not null), and 54
 * program limit exceeded (an index row over the btree maximum, too many columns or arguments).
 */
const DATA_CLASSES = new Set(['22', '23', '54']);

function isDataError(err: unknown): err is DatabaseError {
  return err instanceof DatabaseError && err.sqlState !== undefined && DATA_CLASSES.has(err.sqlState.slice(0, 2));
}

export interface Rejected<T> {
  row: T;
  error: DatabaseError;
}

/**
 * Writes `rows` with `write` inside the caller's transaction, isolating the rows the database
 * refuses. `add` sums the results of the parts written.
 */
export async function writeIsolating<T, R>(
  tx: Queryable,
  rows: T[],
  write: (rows: T[]) => Promise<R>,
  add: (a: R, b: R) => R,
  zero: R,
): Promise<{ result: R; rejected: Rejected<T>[] }> {
  const rejected: Rejected<T>[] = [];
  let result = zero;
  const attempt = async (part: T[]): Promise<void> => {
    if (part.length === 0) return;
    await tx.query('SAVEPOINT omni_isolate');
    try {
      const r = await write(part);
      await tx.query('RELEASE SAVEPOINT omni_isolate');
      result = add(result, r);
      return;
    } catch (err) {
      if (!isDataError(err)) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT omni_isolate');
      await tx.query('RELEASE SAVEPOINT omni_isolate');
      if (part.length === 1) {
        rejected.push({ row: part[0]!, error: err });
        return;
      }
      const half = part.length >> 1;
      await attempt(part.slice(0, half));
      await attempt(part.slice(half));
    }
  };
  await attempt(rows);
  return { result, rejected };
}
