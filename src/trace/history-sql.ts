// The history side of `trace`: every dead letter about the event (its import record, its
// normalize, its interactions' chunks, its contact's insights) and the runs that touched it.
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';

const errorRow = z.object({
  id: z.string(),
  stage: z.string(),
  status: z.string(),
  attempts: z.number().int(),
  first_seen: z.date(),
  last_seen: z.date(),
  signature: z.string(),
  error: z.string(),
  closed_at: z.date().nullable(),
  closed_by: z.string().nullable(),
  close_reason: z.string().nullable(),
});
export type TraceError = z.infer<typeof errorRow>;

export interface ErrorKeys {
  rawEventIds: string[];
  interactionIds: string[];
  contactIds: string[];
  /** The provider's id: import errors name no raw event (none was stored), only this. */
  source: { provider: string; sourceId: string; userId: string | null } | null;
}

const ERROR_COLUMNS = `e.id, e.stage, e.status, e.attempts, e.first_seen, e.last_seen, e.signature, e.error,
       e.closed_at, e.closed_by, e.close_reason`;

/**
 * Oldest first. Each arm of the union has an index: by raw event (normalize and embed letters
 * name it), the open errors of its interactions and contact (open-item index: an insights error
 * is about the whole contact, so only the open ones are shown), and by the provider's id
 * (import letters, which name no raw event).
 */
export async function errorsAbout(db: Queryable, k: ErrorKeys): Promise<TraceError[]> {
  const { rows } = await db.query(
    `
SELECT ${ERROR_COLUMNS} FROM public.raw_event_errors e WHERE e.raw_event_id = ANY($1::uuid[])
UNION
SELECT ${ERROR_COLUMNS} FROM public.raw_event_errors e WHERE e.status = 'open' AND e.stage = 'embed' AND e.item_id = ANY($2::uuid[])
UNION
SELECT ${ERROR_COLUMNS} FROM public.raw_event_errors e WHERE e.status = 'open' AND e.stage = 'insights' AND e.item_id = ANY($3::uuid[])
UNION
SELECT ${ERROR_COLUMNS} FROM public.raw_event_errors e WHERE e.provider = $4 AND e.source_id = $5 AND ($6::uuid IS NULL OR e.user_id = $6)
ORDER BY first_seen, id`,
    [k.rawEventIds, k.interactionIds, k.contactIds, k.source?.provider ?? null, k.source?.sourceId ?? null, k.source?.userId ?? null],
  );
  return rows.map((r) => errorRow.parse(r));
}

const runRow = z.object({
  id: z.string(),
  command: z.string(),
  status: z.string(),
  started_at: z.date(),
  finished_at: z.date().nullable(),
  /** What it did to the event, as far as it is known. */
  what: z.string(),
  /** True when the ledger names it (the import's run, a run that closed an error); false when inferred from times. */
  exact: z.boolean(),
});
export type TraceRun = z.infer<typeof runRow>;

export interface Touch {
  /** When a row was written. */
  at: Date;
  what: string;
  /** The commands that write such rows. */
  commands: string[];
}

/**
 * The runs that touched the event. Some are named by a row (the import's run in sync_audit,
 * the run that closed an error); the stages' runs are not recorded per row, so a row's writer is
 * inferred: a run of a command that writes such rows, live when the row was written.
 */
export async function runsOf(db: Queryable, exact: { id: string; what: string }[], touches: Touch[]): Promise<TraceRun[]> {
  const { rows } = await db.query(
    `
WITH named AS (
  SELECT r.id, r.command, r.status, r.started_at, r.finished_at, x.what, true AS exact
  FROM unnest($1::uuid[], $2::text[]) AS x(id, what)
  JOIN omni_ingest.runs r ON r.id = x.id
), inferred AS (
  SELECT r.id, r.command, r.status, r.started_at, r.finished_at, x.what, false AS exact
  FROM unnest($3::timestamptz[], $4::text[], $5::text[]) AS x(at, what, commands)
  JOIN omni_ingest.runs r
    ON r.command = ANY(string_to_array(x.commands, ','))
   AND r.started_at <= x.at
   AND x.at <= coalesce(r.finished_at, r.heartbeat_at)
  WHERE r.id NOT IN (SELECT id FROM named)
)
SELECT DISTINCT ON (u.id, u.what) u.*
FROM (SELECT * FROM named UNION ALL SELECT * FROM inferred) u
ORDER BY u.id, u.what`,
    [
      exact.map((e) => e.id),
      exact.map((e) => e.what),
      touches.map((t) => t.at),
      touches.map((t) => t.what),
      touches.map((t) => t.commands.join(',')),
    ],
  );
  return rows.map((r) => runRow.parse(r)).sort((a, b) => a.started_at.getTime() - b.started_at.getTime() || a.id.localeCompare(b.id));
}
