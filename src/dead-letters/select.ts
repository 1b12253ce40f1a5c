// Which dead letters a command is about (SPEC §12): by id, by signature, or by filters. Every
// `errors` command narrows public.raw_event_errors with this one predicate, so `errors list`
// shows exactly what `errors retry` with the same flags would retry.
import { z } from 'zod';

export const ERROR_STAGES = ['import', 'normalize', 'embed', 'insights', 'swap'] as const;
export const ERROR_STATUSES = ['open', 'resolved', 'discarded'] as const;
export type ErrorStatus = (typeof ERROR_STATUSES)[number];

export const signatureSchema = z
  .string()
  .trim()
  .regex(/^[0-9a-f]{16}$/i, 'must be a signature: 16 hexadecimal digits, as `errors groups` shows them')
  .transform((s) => s.toLowerCase());

export interface ErrorSelection {
  ids?: string[] | undefined;
  stage?: string | undefined;
  provider?: string | undefined;
  userId?: string | undefined;
  /** On last_seen: errors seen (again) since then. */
  since?: Date | undefined;
  until?: Date | undefined;
  /** Absent: every status. */
  statuses?: ErrorStatus[] | undefined;
  signature?: string | undefined;
}

/**
 * The selection predicate over `public.raw_event_errors e`, reading $1..$8 (give it
 * selectionParams first; further parameters start at $9). An absent filter is a NULL parameter.
 */
export const SELECTION_WHERE = `($1::uuid[] IS NULL OR e.id = ANY($1))
  AND ($2::text IS NULL OR e.stage = $2)
  AND ($3::text IS NULL OR e.provider = $3)
  AND ($4::uuid IS NULL OR e.user_id = $4)
  AND ($5::timestamptz IS NULL OR e.last_seen >= $5)
  AND ($6::timestamptz IS NULL OR e.last_seen < $6)
  AND ($7::text[] IS NULL OR e.status = ANY($7))
  AND ($8::text IS NULL OR e.signature = $8)`;

export function selectionParams(
  s: ErrorSelection,
): [string[] | null, string | null, string | null, string | null, Date | null, Date | null, string[] | null, string | null] {
  return [
    s.ids && s.ids.length > 0 ? s.ids : null,
    s.stage ?? null,
    s.provider ?? null,
    s.userId ?? null,
    s.since ?? null,
    s.until ?? null,
    s.statuses && s.statuses.length > 0 ? s.statuses : null,
    s.signature ?? null,
  ];
}

/** True when nothing narrows the selection (a retry or discard of everything must be asked for). */
export function selectsEverything(s: ErrorSelection): boolean {
  return !s.ids?.length && !s.stage && !s.provider && !s.userId && !s.since && !s.until && !s.signature;
}
