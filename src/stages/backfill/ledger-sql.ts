// The backfill's own ledger reads and writes: which stages an interrupted backfill finished.
import { z } from 'zod';
import type { Queryable } from '../../db/connect.js';

const backfillCheckpoint = z.object({
  /** Stages whose range was put back in their queue (--reprocess): not again on resume. */
  requeued: z.array(z.string()),
  /** Stages that ran to the end of their queue. */
  completed: z.array(z.string()),
});
export type BackfillCheckpoint = z.infer<typeof backfillCheckpoint>;

/**
 * The latest backfill with the same arguments that did not finish (stopped, failed, killed):
 * a re-run continues from its checkpoint. A finished one is not resumed: running the same
 * backfill again then means "do it again".
 */
export async function findResumable(
  db: Queryable,
  args: Record<string, unknown>,
): Promise<{ id: string; checkpoint: BackfillCheckpoint } | undefined> {
  const { rows } = await db.query<{ id: string; checkpoint: unknown; status: string }>(
    `
SELECT id, checkpoint, status
FROM omni_ingest.runs
WHERE command = 'backfill' AND (args - 'resumedFrom') = $1::jsonb
ORDER BY started_at DESC
LIMIT 1`,
    [JSON.stringify(args)],
  );
  const row = rows[0];
  if (!row || row.status === 'succeeded') return undefined;
  const parsed = backfillCheckpoint.safeParse(row.checkpoint ?? { requeued: [], completed: [] });
  return parsed.success ? { id: row.id, checkpoint: parsed.data } : undefined;
}
