// A page of a batch's rows as their archive lines, in key order, each page in a short transaction
// of its own. The lines of a table with the columns the migrations make are put together column by
// column (LINE_OF_R); a table with any other column list is read with to_jsonb(row) as a whole,
// which gives the same bytes, slower.
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

export interface Page {
  /** Claims the page covered: 0 when the batch has no more. */
  claims: number;
  /** Did the page cover as many claims as asked (there may be more after it)? */
  full: boolean;
  /** The last claim of the page: where the next page starts. */
  next: string | null;
  /** The lines of the rows still there, each followed by '\n'. */
  data: Buffer;
  rows: number;
  first: string | null;
  last: string | null;
}

/** What reading past the batch's last claim gives. */
export const NO_PAGE: Page = { claims: 0, full: false, next: null, data: Buffer.alloc(0), rows: 0, first: null, last: null };

/** The next page of the batch: the claims after `after` (at most `limit`) and the lines of their rows. */
export async function readPage(db: Db, batchId: string, after: string | null, limit: number): Promise<Page> {
  return db.transaction(async (tx) => {
    await utcSession(tx);
    const ids = await pageIds(tx, batchId, after, limit);
    if (ids.length === 0) return NO_PAGE;
    // The columns are looked at after the rows were read: no column can be added or dropped while
    // the transaction holds the table, so lines put together column by column are whole rows.
    let lines = await rowLines(tx, ids);
    if (!knownShape(await rawEventColumns(tx))) lines = await rowsAsJsonb(tx, ids);
    return {
      claims: ids.length,
      full: ids.length >= limit,
      next: ids.at(-1)!,
      data: lines.length === 0 ? Buffer.alloc(0) : Buffer.from(`${lines.map((l) => l.line).join('\n')}\n`, 'utf8'),
      rows: lines.length,
      first: lines[0]?.id ?? null,
      last: lines.at(-1)?.id ?? null,
    };
  });
}
