// `omni-ingest purge insights`: deletes AI insights past their expires_at (SPEC §4, §11), in
// batches — each one short transaction recorded in the run ledger — so a large purge neither
// holds locks for long nor runs into statement_timeout, and stops cleanly on a signal.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { parseRange } from '../stages/engine/range.js';
import type { Stage } from '../stages/engine/runner.js';
import { countExpiredInsights, deleteExpiredInsights } from '../stages/insights-sql.js';
import { runStageCommand } from './batch-options.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

interface PurgeFlags {
  user?: string;
  batchSize?: string;
  limit?: string;
  timeBudget?: string;
  dryRun?: boolean;
}

const purgeInsightsStage: Stage = {
  name: 'purge_insights',
  countPending: async (db, range) => (await countExpiredInsights(db, range.userId)).n,
  batch: async (input) =>
    input.db.transaction(async (tx) => {
      const deleted = await deleteExpiredInsights(tx, input.range.userId, input.size);
      if (deleted === 0) return { taken: 0, counts: {} };
      const counts = { events: deleted, deleted };
      await input.record(tx, counts);
      return { taken: deleted, counts };
    }),
};

async function runPurgeInsights(ctx: Context, flags: PurgeFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock);
  const db = await ctx.db();
  if (range.dryRun) {
    const expired = await countExpiredInsights(db, range.userId);
    const result = { dryRun: true, expired: expired.n, oldestExpiry: expired.oldest, newestExpiry: expired.newest };
    ctx.out.result(result, () =>
      `purge insights (dry run): ${expired.n} expired insight(s) would be deleted${expired.oldest && expired.newest ? ` (expired ${expired.oldest.toISOString()} … ${expired.newest.toISOString()})` : ''}`,
    );
    return ExitCode.ok;
  }
  const summary = await runStageCommand(ctx, db, purgeInsightsStage, { range });
  const deleted = summary.counts.deleted ?? 0;
  ctx.out.result({ ...summary, deleted }, () =>
    `purge insights: ${deleted} expired insight(s) deleted in ${(summary.elapsedMs / 1000).toFixed(1)} s${summary.stopReason === 'done' ? '' : ` (stopped: ${summary.stopReason}; run again to finish)`}`,
  );
  return ExitCode.ok;
}

export function registerPurge(program: Command, state: RunState): void {
  const purge = program.command('purge').description(descriptionOf('purge'));
  purge
    .command('insights')
    .description('delete AI insights past their expires_at (a year after creation by default)')
    .option('--user <uuid>', "only this user's insights")
    .option('--batch-size <n>', 'insights deleted per transaction', '1000')
    .option('--limit <n>', 'at most this many in this run')
    .option('--time-budget <duration>', 'stop cleanly between batches after this long (e.g. 5m)')
    .option('--dry-run', 'count the expired insights, delete nothing')
    .addHelpText(
      'after',
      `
Each batch is one short transaction recorded in the run ledger (runs list --command purge_insights);
a signal or --time-budget stops between batches, and running it again finishes the job.

Examples:
  omni-ingest purge insights --dry-run
  omni-ingest purge insights
  omni-ingest purge insights --user 11111111-1111-4111-8111-111111111111 --json`,
    )
    .action(action<PurgeFlags>(state, (ctx, flags) => runPurgeInsights(ctx, flags)));
}
