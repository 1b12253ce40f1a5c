// Reading dead letters (SPEC §12): `errors list` pages through them newest first, `errors show`
// reads one whole with the payload it is about. Filters are the shared selection (select.ts), so
// a list shows exactly what a retry or discard with the same flags would act on.
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';
import { UsageError } from '../errors.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from './select.js';

const listRow = z.object({
  id: z.string(),
  stage: z.string(),
  provider: z.string().nullable(),
  user_id: z.string().nullable(),
  status: z.string(),
  attempts: z.number().int(),
  first_seen: z.date(),
  last_seen: z.date(),
  raw_event_id: z.string().nullable(),
  source_id: z.string().nullable(),
  signature: z.string(),
  error: z.string(),
  /** The row's place in the order, to the microsecond: what `--after` continues from. */
  cursor: z.string(),
});
type ListedError = z.infer<typeof listRow>;

/**
 * Where a page starts: after the row a cursor names (`last_seen` to the microsecond and id, as
 * the previous page printed it), or after an error id (its position now).
 */
export type After = { at: string; id: string } | { id: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)~([0-9a-f-]{36})$/i;

/** `--after`: a cursor (`next` of the previous page) or an error id. */
export const afterSchema = z.string().transform((text, ctx): After => {
  const t = text.trim();
  const m = CURSOR.exec(t);
  if (m && UUID.test(m[2]!)) return { at: m[1]!, id: m[2]!.toLowerCase() };
  if (UUID.test(t)) return { id: t.toLowerCase() };
  ctx.addIssue({ code: 'custom', message: 'is neither a cursor (the `next` a page printed) nor an error id' });
  return z.NEVER;
});

export interface ErrorPage {
  errors: ListedError[];
  /** Give it to --after for the next page; null on the last page. */
  next: string | null;
}

/**
 * One page of the selection, newest first by (last_seen, id): keyset paging, so each page costs
 * the same wherever it starts and rows are neither skipped nor repeated across pages. With one
 * status (the default, open) the equality below lets the list index give the order.
 */
export async function listErrors(db: Queryable, selection: ErrorSelection, limit: number, after?: After): Promise<ErrorPage> {
  const single = selection.statuses?.length === 1 ? selection.statuses[0]! : null;
  let at: string | null = after && 'at' in after ? after.at : null;
  if (after && !('at' in after)) at = await positionOf(db, after.id);
  const { rows } = await db.query(
    `
SELECT e.id, e.stage, e.provider, e.user_id, e.status, e.attempts, e.first_seen, e.last_seen,
       e.raw_event_id, e.source_id, e.signature, e.error,
       to_char(e.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '~' || e.id AS cursor
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND ($9::text IS NULL OR e.status = $9)
  AND ($10::timestamptz IS NULL OR (e.last_seen, e.id) < ($10::timestamptz, $11::uuid))
ORDER BY e.last_seen DESC, e.id DESC
LIMIT $12`,
    [...selectionParams(selection), single, at, after?.id ?? null, limit + 1],
  );
  const errors = rows.slice(0, limit).map((r) => listRow.parse(r));
  return { errors, next: rows.length > limit ? (errors.at(-1)?.cursor ?? null) : null };
}

/** The position of an error named by id, for `--after <id>`. */
async function positionOf(db: Queryable, id: string): Promise<string> {
  const { rows } = await db.query<{ at: string }>(
    `
SELECT to_char(e.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
FROM public.raw_event_errors e
WHERE e.id = $1`,
    [id],
  );
  const at = rows[0]?.at;
  if (at === undefined) throw new UsageError(`--after ${id}: no such error`);
  return at;
}

const fullRow = listRow.omit({ cursor: true }).extend({
  context: z.record(z.string(), z.unknown()),
  error_at: z.date(),
  item_id: z.string().nullable(),
  item_key: z.string(),
  closed_at: z.date().nullable(),
  closed_by: z.string().nullable(),
  close_reason: z.string().nullable(),
  /** The run that closed it, when the ledger still has it. */
  closed_by_command: z.string().nullable(),
  pattern: z.string(),
  /** The raw event's payload (normalize errors, and any error naming its event); null when gone. */
  payload: z.unknown(),
  event_exists: z.boolean(),
  /** Open errors of the same signature: how big the problem this one belongs to is. */
  group_open: z.number().int(),
});
export type FullError = z.infer<typeof fullRow>;

/** One error whole, with its raw event's payload; undefined when there is no such error. */
export async function getError(db: Queryable, id: string): Promise<FullError | undefined> {
  const { rows } = await db.query(
    `
SELECT e.id, e.stage, e.provider, e.user_id, e.status, e.attempts, e.first_seen, e.last_seen,
       e.raw_event_id, e.source_id, e.signature, e.error, e.context, e.error_at, e.item_id, e.item_key,
       e.closed_at, e.closed_by, e.close_reason, run.command AS closed_by_command,
       omni_ingest.error_pattern(e.error) AS pattern,
       r.payload, r.id IS NOT NULL AS event_exists,
       (SELECT count(*)::int FROM public.raw_event_errors g WHERE g.status = 'open' AND g.signature = e.signature) AS group_open
FROM public.raw_event_errors e
LEFT JOIN public.raw_events r ON r.id = e.raw_event_id
LEFT JOIN omni_ingest.runs run ON run.id = e.closed_by
WHERE e.id = $1`,
    [id],
  );
  return rows[0] === undefined ? undefined : fullRow.parse(rows[0]);
}
