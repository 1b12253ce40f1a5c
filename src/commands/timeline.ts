import type { Command } from 'commander';
import type { Context } from '../context.js';
import { providerNames } from '../providers/index.js';
import { createTimelineStage } from '../stages/timeline.js';
import { addRangeOptions, exitCodeOf, renderSummary, runStageCommand } from './batch-options.js';
import { parseFlags, parseRange, workersFlag, type RangeFlags } from './flags.js';
import { action, type RunState } from './run.js';

interface TimelineFlags extends RangeFlags {
  workers?: string;
}

async function runTimeline(ctx: Context, flags: TimelineFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames, 'adaptive');
  const { workers } = parseFlags({ workers: workersFlag }, flags);
  const summary = await runStageCommand(ctx, await ctx.db(), createTimelineStage(), { range, workers });
  ctx.out.result(summary, () => renderSummary(summary));
  return exitCodeOf(summary);
}

export function registerTimeline(cmd: Command, state: RunState): void {
  cmd.option('--workers <n>', 'parallel batches in this process (real server only; default: 1)');
  addRangeOptions(cmd)
    .addHelpText(
      'after',
      `
Takes the queued interactions (linked to a contact by resolve, or changed since) and the new
insights about contacts, narrowed by the range options (--provider selects interactions only:
insights have no provider). One entry per source row, with a readable title such as
"Email from Sofia Rossi: Re: pricing"; a re-run adds nothing and rewrites only entries whose
source changed. Sources that lost their contact are skipped and their old entries removed.
Cron-safe; SIGINT/SIGTERM stop after the batch.

Counts: written (new entries), updated, unchanged, skipped, removed.

Examples:
  omni-ingest timeline
  omni-ingest timeline --since 24h --time-budget 5m
  omni-ingest timeline --dry-run --json`,
    )
    .action(action<TimelineFlags>(state, (ctx, flags) => runTimeline(ctx, flags)));
}
