// The pipeline's tables by natural keys (ids are random), so two databases that did the same
// work — one straight, one killed, cut off or run in parallel — can be compared.
import type { TestTarget } from './db.js';

/**
 * Every table by natural keys (ids are random), so two databases can be compared. The score and
 * next-step texts are left out: they depend on the clock and on the order of Twilio webhooks,
 * which carry no time of their own and are stamped when imported.
 */
export async function snapshot(target: TestTarget): Promise<Record<string, string[]>> {
  const db = await target.open();
  const q = async (sql: string) => (await db.query<{ k: string }>(sql)).rows.map((r) => r.k);
  try {
    const contactKey = `(SELECT string_agg(ci.kind || ':' || ci.value, ',' ORDER BY ci.kind, ci.value) FROM public.contact_identities ci WHERE ci.contact_id = %s)`;
    const key = (col: string) => contactKey.replace('%s', col);
    return {
      contacts: await q(`SELECT ${key('c.id')} || '|' || coalesce(c.display_name, '') AS k FROM public.contacts c ORDER BY 1`),
      interactions: await q(
        `SELECT concat_ws('|', i.source, i.source_id, i.type, coalesce(${key('i.contact_id')}, '-'), (i.contact_id IS NULL OR r.contact_id IS NOT NULL)) AS k FROM public.interactions i LEFT JOIN public.raw_events r ON r.id = i.raw_event_id ORDER BY 1`,
      ),
      embeddings: await q(
        `SELECT concat_ws('|', i.source_id, e.chunk_index, e.content_hash, vector_dims(e.embedding_v)) AS k FROM public.embeddings e JOIN public.interactions i ON i.id = e.owner_id ORDER BY 1`,
      ),
      insights: await q(
        `SELECT concat_ws('|', ${key('a.subject_id')}, a.kind, CASE WHEN a.kind IN ('score', 'next_step') THEN '' ELSE a.content ->> 'title' END, a.expires_at > a.created_at + interval '364 days') AS k FROM public.ai_insights a ORDER BY 1`,
      ),
      timeline: await q(
        `SELECT concat_ws('|', t.source_type, coalesce(i.source_id, a.kind), ${key('t.contact_id')}, CASE WHEN t.event_type IN ('insight_score', 'insight_next_step') THEN '' ELSE t.title END) AS k FROM public.contact_timeline t LEFT JOIN public.interactions i ON t.source_type = 'interaction' AND i.id = t.source_id LEFT JOIN public.ai_insights a ON t.source_type = 'insight' AND a.id = t.source_id ORDER BY 1`,
      ),
      errors: await q(`SELECT concat_ws('|', stage, provider, error) AS k FROM public.raw_event_errors ORDER BY 1`),
      queues: await q(`SELECT 'normalize' AS k FROM omni_ingest.normalize_queue UNION ALL SELECT stage FROM omni_ingest.work_queue`),
    };
  } finally {
    await db.close();
  }
}
