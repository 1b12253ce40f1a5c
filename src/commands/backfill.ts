import type { Command } from 'commander';
import type { Context } from '../context.js';
import { selectBatchApi } from '../embed/select.js';
import { UsageError } from '../errors.js';
import { providerNames } from '../providers/index.js';
import { runBackfill, type BackfillSummary } from '../stages/backfill/backfill.js';
import { STAGE_ORDER, type StageName } from '../stages/names.js';
import { buildStage, describeSettings } from '../stages/registry.js';
import { addRangeOptions, exitCodeOf, withRunControls } from './batch-options.js';
import { parseFlags, parseRange, type RangeFlags, workersFlag } from './flags.js';
import { action, type RunState } from './run.js';
import { addProviderOptions, type StageSettingFlags, stageSettings } from './stage-settings.js';

interface BackfillFlags extends RangeFlags, StageSettingFlags {
  stages?: string;
  reprocess?: boolean;
  workers?: string;
}

export function parseStages(text: string | undefined): StageName[] {
  if (text === undefined) return [...STAGE_ORDER];
  const wanted = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((s) => !(STAGE_ORDER as readonly string[]).includes(s));
  if (unknown.length > 0 || wanted.length === 0) {
    throw new UsageError(
      `--stages "${text}": ${unknown.length ? `unknown ${unknown.join(', ')}; ` : ''}choose from ${STAGE_ORDER.join(',')}`,
    );
  }
  return STAGE_ORDER.filter((s) => wanted.includes(s));
}

export function renderBackfill(s: BackfillSummary): string[] {
  const rows = s.stages.map((st) => {
    // Every count the stage recorded that is not zero, so nothing it did is hidden.
    const detail =
      st.skipped ??
      Object.entries(st.counts)
        .filter(([k, v]) => k !== 'events' && (v ?? 0) > 0)
        .map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`)
        .join(', ');
    return [
      st.stage,
      String(st.counts.events ?? 0),
      st.status === 'incomplete' ? `incomplete (${st.left} left)` : st.stopReason === 'done' ? '' : st.stopReason,
      `${(st.elapsedMs / 1000).toFixed(1)} s`,
      detail || '-',
    ];
  });
  const header = ['stage', 'events', 'ended', 'time', 'counts'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `backfill ${s.status}${s.status === 'stopped' ? ` (${s.stopReason === 'signal' ? (s.stopSignal ?? 'signal') : s.stopReason}; run the same command again to continue)` : ''} in ${(s.elapsedMs / 1000).toFixed(1)} s${s.resumedFrom ? `, resumed from ${s.resumedFrom}` : ''}`,
  ];
}

async function runBackfillCommand(ctx: Context, flags: BackfillFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames, 'adaptive');
  const stages = parseStages(flags.stages);
  const { workers } = parseFlags({ workers: workersFlag }, flags);
  const settings = stageSettings(ctx, flags);
  // embed collects what an earlier `embed --via batch` submitted, then embeds the rest directly.
  settings.embedBatches = selectBatchApi(settings.embedder, ctx.config.openai, {}, ctx.logger);
  const db = await ctx.db();
  const summary = await withRunControls(ctx, ({ progress, signal }) =>
    runBackfill({
      db,
      clock: ctx.clock,
      logger: ctx.logger,
      range,
      stages,
      reprocess: flags.reprocess === true,
      build: (name) => buildStage(name, settings, ctx),
      progress,
      signal,
      workers,
      settings: describeSettings(settings),
      reconnectMs: ctx.config.reconnectForMs,
    }),
  );
  ctx.out.result(summary, () => renderBackfill(summary));
  return exitCodeOf(summary);
}

export function registerBackfill(cmd: Command, state: RunState): void {
  cmd
    .option('--stages <list>', `comma-separated stages to run (default all: ${STAGE_ORDER.join(',')})`)
    .option('--reprocess', 'walk the whole range again, including events earlier runs already processed')
    .option('--workers <n>', 'parallel batches per stage in this process (real server only; default: 1)');
  addRangeOptions(cmd);
  cmd
    .option('--create-contacts', 'resolve: create a contact for an unknown counterpart')
    .option('--default-region <CC>', 'resolve: region for national-format phone numbers (e.g. US, IT)');
  addProviderOptions(cmd)
    .addHelpText(
      'after',
      `
Each stage takes its pending work within the range; with --reprocess the range's rows are put
back in every stage's queue first, so the whole range is walked again (idempotently: unchanged
chunks are not re-embedded, unchanged contacts not re-sent to the model). Stopped by a signal or
--time-budget, or killed, the same command continues where it stopped (the ledger keeps which
stages finished). One progress bar per stage on a TTY; a table of counts per stage at the end.

Examples:
  omni-ingest backfill --since 2025-06-01
  omni-ingest backfill --since 90d --stages normalize,resolve --create-contacts
  omni-ingest backfill --since 2025-06-01 --reprocess --time-budget 30m --json`,
    )
    .action(action<BackfillFlags>(state, (ctx, flags) => runBackfillCommand(ctx, flags)));
}
