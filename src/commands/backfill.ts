import type { Command } from 'commander';
import type { Context } from '../context.js';
import { selectEmbedder } from '../embed/select.js';
import { UsageError } from '../errors.js';
import { selectInsightProvider } from '../insights/select.js';
import { providerNames } from '../providers/index.js';
import { runBackfill, type BackfillSummary } from '../stages/backfill/backfill.js';
import { STAGE_ORDER, type StageName } from '../stages/names.js';
import { buildStage, describeSettings, type StageSettings } from '../stages/registry.js';
import { addRangeOptions, exitCodeOf, withRunControls } from './batch-options.js';
import {
  concurrencyFlag,
  embedderFlag,
  insightsProviderFlag,
  nonEmpty,
  parseFlags,
  parseRange,
  regionFlag,
  PROVIDER_TIME_OPTIONS,
  providerTimeFlags,
  workersFlag,
  type RangeFlags,
} from './flags.js';
import { action, type RunState } from './run.js';

interface BackfillFlags extends RangeFlags {
  stages?: string;
  reprocess?: boolean;
  workers?: string;
  createContacts?: boolean;
  defaultRegion?: string;
  embedder?: string;
  embeddingModel?: string;
  insightsProvider?: string;
  insightsModel?: string;
  concurrency?: string;
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

/** Every provider and setting the stages need, chosen up front so a missing key fails before any work (exit 2). */
function stageSettings(ctx: Context, flags: BackfillFlags): StageSettings {
  const f = parseFlags(
    {
      defaultRegion: regionFlag,
      embedder: embedderFlag,
      embeddingModel: nonEmpty,
      insightsProvider: insightsProviderFlag,
      insightsModel: nonEmpty,
      concurrency: concurrencyFlag,
      ...providerTimeFlags,
    },
    flags,
  );
  const times = { requestTimeoutMs: f.requestTimeout, retryForMs: f.retryFor };
  return {
    createContacts: flags.createContacts === true,
    defaultRegion: f.defaultRegion,
    embedder: selectEmbedder(
      { embedder: f.embedder, model: f.embeddingModel, modelFlag: '--embedding-model', ...times },
      ctx.config.openai,
      ctx.logger,
    ),
    insights: selectInsightProvider(
      { provider: f.insightsProvider, model: f.insightsModel, modelFlag: '--insights-model', ...times },
      ctx.config.openai,
      { clock: ctx.clock, logger: ctx.logger },
    ),
    concurrency: f.concurrency ?? 4,
  };
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
  const range = parseRange(flags, ctx.clock, providerNames);
  const stages = parseStages(flags.stages);
  const { workers } = parseFlags({ workers: workersFlag }, flags);
  const settings = stageSettings(ctx, flags);
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
    .option('--default-region <CC>', 'resolve: region for national-format phone numbers (e.g. US, IT)')
    .option('--embedder <name>', 'embed: openai or local (default: openai when OPENAI_API_KEY is set, else local)')
    .option('--embedding-model <model>', 'embed: the embedding model (default text-embedding-3-small)')
    .option('--insights-provider <name>', 'insights: openai or heuristic (default: openai when OPENAI_API_KEY is set, else heuristic)')
    .option('--insights-model <model>', 'insights: the chat model (default gpt-4o-mini)')
    .option('--concurrency <n>', 'embed/insights: provider requests in flight (default: 4)')
    .option(...PROVIDER_TIME_OPTIONS[0]!)
    .option(...PROVIDER_TIME_OPTIONS[1]!)
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
