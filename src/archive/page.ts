// A page of a batch's rows as their archive lines, in key order. The lines of a table with the
// columns the migrations make are put together column by column (LINE_OF_R); a table with any
// other column list is read with to_jsonb(row) as a whole, which gives the same bytes, slower.
import type { Db } from '../db/connect.js';
import { pageIds, rawEventColumns, rowLines, rowsAsJsonb } from './page-sql.js';
import { utcSession } from './rows-sql.js';

/** public.raw_events as the migrations make it (names and types, in order): what rowLines spells. */
const RAW_EVENT_COLUMNS: readonly { name: string; type: string }[] = [
  { name: 'id', type: 'uuid' },
  { name: 'user_id', type: 'uuid' },
  { name: 'provider', type: 'text' },
  { name: 'source_id', type: 'text' },
  { name: 'payload', type: 'jsonb' },
  { name: 'contact_id', type: 'uuid' },
  { name: 'occurred_at', type: 'timestamp with time zone' },
  { name: 'source_meta', type: 'jsonb' },
  { name: 'batch_id', type: 'uuid' },
  { name: 'created_at', type: 'timestamp with time zone' },
];

/** Does the table have exactly the columns (names, types, order) rowLines spells? */
export function knownShape(columns: { name: string; type: string }[]): boolean {
  return (
    columns.length === RAW_EVENT_COLUMNS.length &&
    columns.every((c, i) => c.name === RAW_EVENT_COLUMNS[i]!.name && c.type === RAW_EVENT_COLUMNS[i]!.type)
  );
}

/**
 * The next page of the batch after `after`. The table's columns are looked at after its rows were
 * read, in the same transaction: no column can be added or dropped while the transaction holds
 * the table, so the lines put together column by column are whole rows, or they are read again
 * with to_jsonb.
 */
export async function readLines(db: Db, batchId: string, after: string | null, limit: number): Promise<{ id: string; line: string }[]> {
  return db.transaction(async (tx) => {
    await utcSession(tx);
    const ids = await pageIds(tx, batchId, after, limit);
    if (ids.length === 0) return [];
    const lines = await rowLines(tx, ids);
    return knownShape(await rawEventColumns(tx)) ? lines : rowsAsJsonb(tx, ids);
  });
}
