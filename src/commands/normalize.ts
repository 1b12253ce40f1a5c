import type { Command } from 'commander';
import type { Context } from '../context.js';
import { providerNames } from '../providers/index.js';
import { normalizeStage } from '../stages/normalize.js';
import { addRangeOptions, exitCodeOf, renderSummary, runStageCommand } from './batch-options.js';
import { parseFlags, parseRange, workersFlag, type RangeFlags } from './flags.js';
import { action, type RunState } from './run.js';

interface NormalizeFlags extends RangeFlags {
  workers?: string;
}

async function runNormalize(ctx: Context, flags: NormalizeFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames, 'adaptive');
  const { workers } = parseFlags({ workers: workersFlag }, flags);
  const summary = await runStageCommand(ctx, await ctx.db(), normalizeStage, { range, workers });
  ctx.out.result(summary, () => renderSummary(summary));
  return exitCodeOf(summary);
}

export function registerNormalize(cmd: Command, state: RunState): void {
  cmd.option('--workers <n>', 'parallel batches in this process (real server only; default: 1)');
  addRangeOptions(cmd)
    .addHelpText(
      'after',
      `
Takes the events no earlier run processed, narrowed by the range options. Cron-safe: several
processes may run at once and share the work; a killed run loses nothing and a re-run goes on.
Dead-lettered events are reported, not failures (exit 0). SIGINT/SIGTERM stop after the batch.

Examples:
  omni-ingest normalize
  omni-ingest normalize --provider gmail --since 24h --time-budget 5m
  omni-ingest normalize --dry-run --json`,
    )
    .action(action<NormalizeFlags>(state, (ctx, flags) => runNormalize(ctx, flags)));
}
