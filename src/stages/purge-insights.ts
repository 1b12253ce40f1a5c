// purge insights: deletes AI insights past their expires_at (SPEC §4, §11), a batch per short
// transaction recorded in the run ledger, so a large purge neither holds locks for long nor runs
// into statement_timeout, and stops cleanly on a signal.
import type { Stage } from './engine/runner.js';
import { countExpiredInsights, deleteExpiredInsights } from './insights-sql.js';

type PurgeCount = 'deleted';

export const purgeInsightsStage: Stage<PurgeCount, undefined> = {
  name: 'purge_insights',
  countPending: async (db, range, before) => (await countExpiredInsights(db, range.userId, before)).n,
  batch: (input) =>
    input.db.transaction(async (tx) => {
      const deleted = await deleteExpiredInsights(tx, input.range.userId, input.size);
      if (deleted === 0) return { taken: 0, counts: {} };
      const counts = { events: deleted, deleted };
      await input.record(tx, counts);
      return { taken: deleted, counts };
    }),
  // A dry run only counts: nothing to walk.
  dryBatch: async (input) => ({ taken: 0, counts: {}, cursor: input.cursor }),
};
