// `backfill --reprocess`: put the range's rows back in each stage's queue, so the stages walk
// the whole range again whatever earlier runs did (every stage is idempotent).
import type { Queryable } from '../../db/connect.js';
import { rangeParams, rangeWhere, type RangeOptions } from '../engine/range.js';
import type { StageName } from '../names.js';
import { enqueueRawEvents } from '../normalize-sql.js';

const INTERACTION_IN_RANGE = rangeWhere({ at: 'i.occurred_at', user: 'i.user_id', provider: 'i.source', item: 'i.id' });

/** Interactions of the range, into the queue of `stage` (resolve: unlinked; timeline: linked). */
async function requeueInteractions(db: Queryable, stage: 'resolve' | 'embed' | 'timeline', range: RangeOptions): Promise<number> {
  const { rowCount } = await db.query(
    `
INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
SELECT $6, i.id, i.user_id, i.source, i.occurred_at
FROM public.interactions i
WHERE ${INTERACTION_IN_RANGE}
  AND CASE $6 WHEN 'resolve' THEN i.contact_id IS NULL WHEN 'timeline' THEN i.contact_id IS NOT NULL ELSE true END
ON CONFLICT (stage, item_id) DO NOTHING`,
    [...rangeParams(range), stage],
  );
  return rowCount ?? 0;
}

/** The contacts with interactions in the range, into the insights queue. */
async function requeueContacts(db: Queryable, range: RangeOptions): Promise<number> {
  const { rowCount } = await db.query(
    `
INSERT INTO omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
SELECT 'insights', i.contact_id, i.user_id, max(i.occurred_at)
FROM public.interactions i
WHERE ${INTERACTION_IN_RANGE}
  AND i.contact_id IS NOT NULL
GROUP BY i.contact_id, i.user_id
ON CONFLICT (stage, item_id) DO NOTHING`,
    rangeParams(range),
  );
  return rowCount ?? 0;
}

export async function requeueRange(db: Queryable, stage: StageName, range: RangeOptions): Promise<number> {
  switch (stage) {
    case 'normalize':
      return enqueueRawEvents(db, range);
    case 'insights':
      return requeueContacts(db, range);
    default:
      return requeueInteractions(db, stage, range);
  }
}
