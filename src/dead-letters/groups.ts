// `errors groups` (SPEC §12): one row per signature — the stage, provider and message pattern an
// error shares with others of its kind — with its count, users, first and last seen and its
// daily counts over the last 14 days, biggest first, so the top problem shows at a glance.
import { z } from 'zod';
import type { Db } from '../db/connect.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from './select.js';

/** Days the sparkline covers, today (UTC) included. */
export const SPARK_DAYS = 14;

const groupRow = z.object({
  signature: z.string(),
  count: z.number().int(),
  users: z.number().int(),
  first_seen: z.date(),
  last_seen: z.date(),
  /** Errors last seen at or after the start of each of the last SPARK_DAYS days (cumulative). */
  since_day: z.array(z.coerce.number().int()),
  total: z.number().int(),
  stage: z.string(),
  provider: z.string().nullable(),
  pattern: z.string(),
  sample: z.string(),
  sample_id: z.string(),
});

interface ErrorGroup extends Omit<z.infer<typeof groupRow>, 'since_day' | 'total'> {
  /** Errors by the UTC day they were last seen, oldest first; the last is today. */
  daily: number[];
}

export interface GroupsResult {
  groups: ErrorGroup[];
  /** Groups in the selection, of which `groups` are the biggest. */
  total: number;
  /** The first day of `daily` (UTC, YYYY-MM-DD). */
  since: string;
}

// One count per day: the errors last seen since that day began ($10 is the oldest day, $23
// today). A comparison with a bound timestamp per row is the cheapest per-day figure there is:
// a date computed per row (a time zone lookup), or a hash on (signature, day), cost 2-4× more.
const DAY_PARAMS = Array.from({ length: SPARK_DAYS }, (_, k) => `$${10 + k}::timestamptz`);
const SINCE_DAY_COUNTS = DAY_PARAMS.map((p, k) => `count(*) FILTER (WHERE e.last_seen >= ${p}) AS c${k}`).join(',\n         ');
const SINCE_DAY_SUMS = `ARRAY[${DAY_PARAMS.map((_, k) => `sum(p.c${k})`).join(', ')}]`;
const LIMIT_PARAM = `$${10 + SPARK_DAYS}`;

/**
 * The groups of the selection. One pass over raw_event_errors_groups_idx, (status, signature,
 * user_id) INCLUDE (last_seen, first_seen): an index-only scan already in (signature, user)
 * order when one status is asked for (the equality on $9 lets the planner see it; `= ANY` would
 * not), so the rows are aggregated per (signature, user) as they come, with no sort and no hash,
 * and those few rows per signature. Only the groups shown then read one row each, the newest
 * (found by its last_seen through the list index, not by reading the group), for the sample, its
 * stage and provider. JIT is off: compiling the aggregates costs more than it saves here.
 */
export async function errorGroups(db: Db, selection: ErrorSelection, limit: number, now: Date): Promise<GroupsResult> {
  const single = selection.statuses?.length === 1 ? selection.statuses[0]! : null;
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const days = Array.from({ length: SPARK_DAYS }, (_, k) => new Date(today - (SPARK_DAYS - 1 - k) * 86_400_000));
  const rows = await db.transaction(async (tx) => {
    await tx.query('SET LOCAL jit = off');
    const { rows } = await tx.query(
      `
WITH per_user AS (
  SELECT e.signature, e.user_id, count(*) AS n, min(e.first_seen) AS first_seen, max(e.last_seen) AS last_seen,
         ${SINCE_DAY_COUNTS}
  FROM public.raw_event_errors e
  WHERE ${SELECTION_WHERE}
    AND ($9::text IS NULL OR e.status = $9)
  GROUP BY e.signature, e.user_id
), groups AS (
  SELECT p.signature, sum(p.n)::int AS count, count(p.user_id)::int AS users,
         min(p.first_seen) AS first_seen, max(p.last_seen) AS last_seen,
         ${SINCE_DAY_SUMS} AS since_day,
         (count(*) OVER ())::int AS total
  FROM per_user p
  GROUP BY p.signature
  ORDER BY count DESC, p.signature
  LIMIT ${LIMIT_PARAM}
)
SELECT g.signature, g.count, g.users, g.first_seen, g.last_seen, g.since_day, g.total,
       s.stage, s.provider, omni_ingest.error_pattern(s.error) AS pattern, s.error AS sample, s.id AS sample_id
FROM groups g
CROSS JOIN LATERAL (
  SELECT e.id, e.stage, e.provider, e.error
  FROM public.raw_event_errors e
  WHERE ${SELECTION_WHERE}
    AND ($9::text IS NULL OR e.status = $9)
    AND e.last_seen = g.last_seen
    AND e.signature = g.signature
  LIMIT 1
) s
ORDER BY g.count DESC, g.signature`,
      [...selectionParams(selection), single, ...days, limit],
    );
    return rows.map((r) => groupRow.parse(r));
  });
  return {
    total: rows[0]?.total ?? 0,
    since: days[0]!.toISOString().slice(0, 10),
    groups: rows.map(({ since_day, total: _total, ...g }) => ({
      ...g,
      daily: since_day.map((n, k) => n - (since_day[k + 1] ?? 0)),
    })),
  };
}

const BARS = '▁▂▃▄▅▆▇█';

/** Daily counts as bars scaled to the busiest day; a day with none is a dot, so it differs from a few. */
export function sparkline(daily: number[]): string {
  const max = Math.max(1, ...daily);
  return daily.map((n) => (n === 0 ? '·' : BARS[Math.max(0, Math.ceil((n / max) * BARS.length) - 1)])).join('');
}
