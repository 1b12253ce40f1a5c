// Dead letters as `stats` and `doctor` report them: how many are open per stage, the biggest
// open groups, and whether the open ones grew over the last day (a stage failing anew).
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';

const stageRow = z.object({ stage: z.string(), open: z.number().int() });
const topRow = z.object({
  signature: z.string(),
  stage: z.string(),
  provider: z.string().nullable(),
  count: z.number().int(),
  pattern: z.string(),
});

export interface OpenDeadLetters {
  byStage: z.infer<typeof stageRow>[];
  /** The five biggest open groups. */
  topSignatures: z.infer<typeof topRow>[];
}

export async function openDeadLetters(db: Queryable): Promise<OpenDeadLetters> {
  const byStage = await db.query(`
SELECT e.stage, count(*)::int AS open
FROM public.raw_event_errors e
WHERE e.status = 'open'
GROUP BY e.stage
ORDER BY open DESC, e.stage`);
  // Counted through the groups index (status, signature, …); one row per group read for its text.
  const top = await db.query(`
WITH g AS (
  SELECT e.signature, count(*)::int AS count, max(e.last_seen) AS last_seen
  FROM public.raw_event_errors e
  WHERE e.status = 'open'
  GROUP BY e.signature
  ORDER BY count DESC, e.signature
  LIMIT 5
)
SELECT g.signature, s.stage, s.provider, g.count, omni_ingest.error_pattern(s.error) AS pattern
FROM g
CROSS JOIN LATERAL (
  SELECT e.stage, e.provider, e.error
  FROM public.raw_event_errors e
  WHERE e.status = 'open' AND e.last_seen = g.last_seen AND e.signature = g.signature
  LIMIT 1
) s
ORDER BY g.count DESC, g.signature`);
  return { byStage: byStage.rows.map((r) => stageRow.parse(r)), topSignatures: top.rows.map((r) => topRow.parse(r)) };
}

const growthRow = z.object({ open_now: z.number().int(), open_before: z.number().int(), new_open: z.number().int() });
export type DeadLetterGrowth = z.infer<typeof growthRow>;

/**
 * Open dead letters now and 24 hours ago (rows first seen before then that were still open then:
 * open now, or closed since). Undefined before the dead-letter migration (doctor runs on any
 * database). Errors purged within the day were closed long before, so they do not skew it.
 */
export async function deadLetterGrowth(db: Queryable): Promise<DeadLetterGrowth | undefined> {
  const { rows: has } = await db.query(`
SELECT 1
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = 'raw_event_errors' AND column_name = 'first_seen'`);
  if (has.length === 0) return undefined;
  const { rows } = await db.query(`
SELECT count(*) FILTER (WHERE e.status = 'open')::int AS open_now,
       count(*) FILTER (WHERE e.first_seen < now() - interval '24 hours'
                          AND (e.status = 'open' OR e.closed_at >= now() - interval '24 hours'))::int AS open_before,
       count(*) FILTER (WHERE e.status = 'open' AND e.first_seen >= now() - interval '24 hours')::int AS new_open
FROM public.raw_event_errors e
WHERE e.status = 'open' OR e.closed_at >= now() - interval '24 hours'`);
  return growthRow.parse(rows[0]);
}
