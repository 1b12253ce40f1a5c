// A batch's interactions as the upsert takes them (normalize-sql.ts): thirteen columns, each one
// JSON array, built once per batch; and, when the database refused a row, the columns of the
// parts written again, taken from the batch's own.
import type { BodyRawAt } from '../providers/types.js';
import { cleanJson } from '../text.js';

/** One interaction as the batch maps it; the upsert reads it column by column (interactionColumns). */
export interface InteractionRow {
  user_id: string;
  source: string;
  source_id: string;
  type: string;
  subject: string | null;
  body_text: string | null;
  body_raw: Record<string, unknown>;
  occurred_at: string;
  source_meta: Record<string, unknown>;
  batch_id: string | null;
  raw_event_id: string;
  /** Where body_raw is in the raw event's payload, if it is a part of it: then never sent itself (see COLUMNS). */
  body_at?: BodyRawAt | undefined;
}

const NEEDS_ESCAPE = /[\\"]/;

/**
 * `{"entry","0","messaging","1"}`: every element quoted, so no key can end or split it. A loop,
 * not map and join: one per Instagram row, the array and strings of each were 4% of everything
 * a normalize run allocated.
 */
function textArrayLiteral(path: (string | number)[]): string {
  let out = '{';
  for (let k = 0; k < path.length; k++) {
    const p = String(path[k]);
    out += `${k === 0 ? '"' : ',"'}${NEEDS_ESCAPE.test(p) ? p.replace(/[\\"]/g, '\\$&') : p}"`;
  }
  return `${out}}`;
}

/** Positions in COLUMNS of what names a row's origin (rowRef). */
const SOURCE_ID = 2;
const RAW_EVENT_ID = 10;

/**
 * The upsert's columns, in the order of its parameters ($1 … $13), each with what it holds of a
 * row. body_raw is sent itself, or as where the server finds it in the stored payload (body_path,
 * with body_set's keys put over it): parsing body_raw again was a third of the upsert on
 * Instagram's events; copying it from the row the server reads anyway costs next to nothing.
 */
const COLUMNS: ((i: InteractionRow) => unknown)[] = [
  (i) => i.user_id,
  (i) => i.source,
  (i) => i.source_id,
  (i) => i.type,
  (i) => i.subject,
  (i) => i.body_text,
  (i) => (i.body_at ? null : i.body_raw),
  (i) => i.occurred_at,
  (i) => i.source_meta,
  (i) => i.batch_id,
  (i) => i.raw_event_id,
  (i) => (i.body_at ? textArrayLiteral(i.body_at.path) : null),
  (i) => i.body_at?.set ?? null,
];

/**
 * The upsert's parameters: each column of the batch as one JSON array, so their number stays
 * constant whatever the batch size and the server parses them in C. Columns rather than an array
 * of row objects: json_to_recordset builds a hash of every object's keys (~18 ms a batch of 2,700
 * Instagram rows, against ~10 ms for the thirteen arrays), and the keys repeated in every row were
 * a fifth of the text. jsonb and text reject NUL and lone surrogates; what a provider builds from
 * a jsonb payload rarely holds either, so the copy-and-clean pass runs only when a column's text
 * shows one (JSON.stringify escapes both, which makes them cheap to spot).
 */
export function interactionColumns(rows: InteractionRow[]): string[] {
  return COLUMNS.map((of) => {
    const values = new Array<unknown>(rows.length);
    for (let k = 0; k < rows.length; k++) values[k] = of(rows[k]!);
    const text = JSON.stringify(values);
    return text.includes('\\u0000') || /\\ud[89a-f]/i.test(text) ? JSON.stringify(cleanJson(values)) : text;
  });
}

/** The values of columns interactionColumns made, read back (rare: a part of a batch that had a row refused). */
export function columnValues(columns: string[]): unknown[][] {
  return columns.map((c) => JSON.parse(c) as unknown[]);
}

/** The columns of the rows at positions `at` of a batch whose column values are `values`. */
export function partColumns(values: unknown[][], at: number[]): string[] {
  return values.map((column) => JSON.stringify(at.map((k) => column[k])));
}

/** Where the row at position `k` comes from: its raw event and its key (COLUMNS' order). */
export function rowRef(values: unknown[][], k: number): { raw_event_id: string; source_id: string } {
  return { raw_event_id: values[RAW_EVENT_ID]![k] as string, source_id: values[SOURCE_ID]![k] as string };
}
