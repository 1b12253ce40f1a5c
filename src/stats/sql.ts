// The design document's debug queries (SPEC §4 `stats`), plus table sizes and queue depth.
import type { Queryable } from '../db/connect.js';
import { vectorColumn } from '../db/vector-column.js';
import { STAGE_ORDER } from '../stages/names.js';

export interface Stats {
  tables: { table: string; rows: number }[];
  failures24h: { provider: string | null; stage: string; count: number }[];
  timelinePerDay: { day: string; count: number }[];
  /** Which column holds the vectors (embedding_v, or embedding after the swap). */
  vectorColumn: string;
  embeddingCoverage: { owner_type: string; chunks: number; owners: number; with_vector: number }[];
  interactionsEmbedded: { interactions: number; embedded: number };
  jobs: { status: string; count: number }[];
  queue: { stage: string; pending: number; leased: number }[];
}

export async function readStats(db: Queryable): Promise<Stats> {
  const tables = await db.query<{ table: string; rows: number }>(`
SELECT t.table, t.rows FROM (
  SELECT 'raw_events' AS table, (SELECT count(*) FROM public.raw_events)::int AS rows
  UNION ALL SELECT 'interactions', (SELECT count(*) FROM public.interactions)::int
  UNION ALL SELECT 'contacts', (SELECT count(*) FROM public.contacts)::int
  UNION ALL SELECT 'contact_identities', (SELECT count(*) FROM public.contact_identities)::int
  UNION ALL SELECT 'embeddings', (SELECT count(*) FROM public.embeddings)::int
  UNION ALL SELECT 'ai_insights', (SELECT count(*) FROM public.ai_insights)::int
  UNION ALL SELECT 'contact_timeline', (SELECT count(*) FROM public.contact_timeline)::int
  UNION ALL SELECT 'raw_event_errors', (SELECT count(*) FROM public.raw_event_errors)::int
) t`);
  const failures = await db.query<{ provider: string | null; stage: string; count: number }>(`
SELECT provider, stage, count(*)::int AS count
FROM public.raw_event_errors
WHERE error_at > now() - interval '24 hours'
GROUP BY provider, stage
ORDER BY count DESC, provider, stage`);
  const timeline = await db.query<{ day: string; count: number }>(`
SELECT to_char(date_trunc('day', created_at), 'YYYY-MM-DD') AS day, count(*)::int AS count
FROM public.contact_timeline
GROUP BY 1
ORDER BY 1 DESC
LIMIT 14`);
  const column = await vectorColumn(db);
  const coverage = await db.query<{ owner_type: string; chunks: number; owners: number; with_vector: number }>(`
SELECT owner_type, count(*)::int AS chunks, count(DISTINCT owner_id)::int AS owners, count(${column.name})::int AS with_vector
FROM public.embeddings
GROUP BY owner_type
ORDER BY owner_type`);
  const embedded = await db.query<{ interactions: number; embedded: number }>(`
SELECT count(*)::int AS interactions,
       count(*) FILTER (WHERE EXISTS (
         SELECT 1 FROM public.embeddings e WHERE e.owner_type = 'interaction' AND e.owner_id = i.id))::int AS embedded
FROM public.interactions i`);
  const jobs = await db.query<{ status: string; count: number }>(`
SELECT coalesce(status, '(null)') AS status, count(*)::int AS count
FROM public.jobs
GROUP BY 1
ORDER BY 2 DESC`);
  // Every stage in pipeline order, with nothing pending too (an operator looks for a stage by
  // name); the timeline stage works two queues (interactions and insights); other queues (the
  // embedding swap's) follow when they hold anything.
  const queue = await db.query<{ stage: string; pending: number; leased: number }>(
    `
SELECT coalesce(s.stage, q.stage) AS stage, coalesce(q.pending, 0)::int AS pending, coalesce(q.leased, 0)::int AS leased
FROM unnest($1::text[]) WITH ORDINALITY AS s(stage, position)
FULL JOIN (
  SELECT 'normalize' AS stage, count(*) AS pending, 0 AS leased FROM omni_ingest.normalize_queue
  UNION ALL
  SELECT CASE stage WHEN 'timeline_insight' THEN 'timeline' ELSE stage END, count(*), count(*) FILTER (WHERE claimed_until > now())
  FROM omni_ingest.work_queue
  GROUP BY 1
) q ON q.stage = s.stage
ORDER BY s.position NULLS LAST, 1`,
    [STAGE_ORDER],
  );
  return {
    tables: tables.rows,
    failures24h: failures.rows,
    timelinePerDay: timeline.rows,
    vectorColumn: column.name,
    embeddingCoverage: coverage.rows,
    interactionsEmbedded: embedded.rows[0] ?? { interactions: 0, embedded: 0 },
    jobs: jobs.rows,
    queue: queue.rows,
  };
}
