// `omni-ingest purge insights`: deletes AI insights past their expires_at (SPEC §4, §11).
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { countExpiredInsights } from '../stages/insights-sql.js';
import { purgeInsightsStage } from '../stages/purge-insights.js';
import { addRangeOptions, exitCodeOf, leftNote, runStageCommand } from './batch-options.js';
import { parseRange, type RangeFlags } from './flags.js';
import { action, type RunState } from './run.js';

async function runPurgeInsights(ctx: Context, flags: RangeFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, undefined, 'adaptive');
  const db = await ctx.db();
  if (range.dryRun) {
    const expired = await countExpiredInsights(db, range.userId);
    const result = { dryRun: true, expired: expired.n, oldestExpiry: expired.oldest, newestExpiry: expired.newest };
    ctx.out.result(
      result,
      () =>
        `purge insights (dry run): ${expired.n} expired insight(s) would be deleted${expired.oldest && expired.newest ? ` (expired ${expired.oldest.toISOString()} … ${expired.newest.toISOString()})` : ''}`,
    );
    return ExitCode.ok;
  }
  const summary = await runStageCommand(ctx, db, purgeInsightsStage, { range });
  const deleted = summary.counts.deleted ?? 0;
  ctx.out.result(
    { ...summary, deleted },
    () =>
      `purge insights: ${deleted} expired insight(s) deleted in ${(summary.elapsedMs / 1000).toFixed(1)} s${summary.stopReason === 'done' ? '' : ` (stopped: ${summary.stopReason})`}${leftNote(summary)}`,
  );
  return exitCodeOf(summary);
}

export function registerPurge(purge: Command, state: RunState): void {
  const insights = purge.command('insights').description('delete AI insights past their expires_at (a year after creation by default)');
  addRangeOptions(insights, ['user', 'batchSize', 'batchTarget', 'maxRate', 'limit', 'timeBudget', 'dryRun'])
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
    .action(action<RangeFlags>(state, (ctx, flags) => runPurgeInsights(ctx, flags)));
}
