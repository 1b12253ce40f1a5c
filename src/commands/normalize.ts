import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { providerNames } from '../providers/index.js';
import { createProgress } from '../stages/engine/progress.js';
import { parseRange, type RangeFlags } from '../stages/engine/range.js';
import { runStage, type RunSummary } from '../stages/engine/runner.js';
import { normalizeStage } from '../stages/normalize.js';
import { addRangeOptions, withStopSignal } from './batch-options.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

interface NormalizeFlags extends RangeFlags {
  workers?: string;
}

export function renderSummary(s: RunSummary): string {
  const c = s.counts;
  const stop = s.stopReason === 'done' ? '' : ` (stopped: ${s.stopReason})`;
  const parts = Object.entries(c).filter(([k]) => k !== 'events').map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`);
  return `${s.stage}${s.dryRun ? ' (dry run)' : ''}: ${c.events ?? 0} events in ${(s.elapsedMs / 1000).toFixed(1)} s (${s.eventsPerSecond}/s)${parts.length ? `: ${parts.join(', ')}` : ''}${stop}`;
}

async function runNormalize(ctx: Context, flags: NormalizeFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames);
  const workers = flags.workers === undefined ? 1 : Number(flags.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 32) throw new UsageError(`--workers "${flags.workers}" must be a whole number between 1 and 32`);
  const db = await ctx.db();
  const progress = createProgress({ enabled: ctx.config.progress && !ctx.config.quiet });
  let summary: RunSummary;
  try {
    summary = await withStopSignal(ctx.logger, (signal) =>
      runStage(normalizeStage, { db, clock: ctx.clock, logger: ctx.logger, range, workers, signal, bar: progress.start('normalize', 0) }),
    );
  } finally {
    progress.stop();
  }
  ctx.out.result(summary, () => renderSummary(summary));
  return ExitCode.ok;
}

export function registerNormalize(program: Command, state: RunState): void {
  const cmd = program
    .command('normalize')
    .description(descriptionOf('normalize'))
    .option('--workers <n>', 'parallel batches in this process (real server only)', '1');
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
