// `omni-ingest insights`: AI insights per contact with new interactions (SPEC §8).
// `--provider` is the range filter every batch command shares, so the insight provider is
// `--insights-provider` (the same flag `backfill` uses).
import type { Command } from 'commander';
import type { Clock, Context } from '../context.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import { createHeuristicInsightProvider } from '../insights/heuristic.js';
import { createOpenAIInsightProvider, DEFAULT_INSIGHTS_MODEL } from '../insights/openai.js';
import type { InsightProvider } from '../insights/provider.js';
import type { Logger } from '../logger.js';
import { parseRange, type RangeFlags } from '../stages/engine/range.js';
import { createInsightsStage } from '../stages/insights.js';
import { addRangeOptions, renderSummary, runStageCommand } from './batch-options.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

export const INSIGHT_PROVIDERS = ['openai', 'heuristic'] as const;

export interface InsightProviderFlags {
  insightsProvider?: string | undefined;
  model?: string | undefined;
}

interface InsightsFlags extends RangeFlags, InsightProviderFlags {
  concurrency?: string;
}

/**
 * The insight provider the flags and environment ask for: `--insights-provider`, else openai when
 * OPENAI_API_KEY is set, else the offline heuristic. openai without a key is a configuration
 * error (exit 2). Cheap and synchronous (the SDK loads on the first request), for any command.
 * `modelFlag` names the model flag in messages (`backfill` calls it --insights-model).
 */
export function createInsightProviderFromFlags(
  flags: InsightProviderFlags,
  options: { env?: Record<string, string | undefined>; clock?: Clock; logger?: Logger; modelFlag?: string } = {},
): InsightProvider {
  const env = options.env ?? process.env;
  const modelFlag = options.modelFlag ?? '--model';
  const key = env.OPENAI_API_KEY?.trim() || undefined;
  const name = flags.insightsProvider ?? (key ? 'openai' : 'heuristic');
  if (!(INSIGHT_PROVIDERS as readonly string[]).includes(name)) {
    throw new UsageError(`--insights-provider "${name}" is not one of ${INSIGHT_PROVIDERS.join(', ')}`);
  }
  const model = flags.model?.trim();
  if (flags.model !== undefined && !model) throw new UsageError(`${modelFlag} must not be empty`);
  if (name === 'heuristic') {
    const heuristic = createHeuristicInsightProvider(options.clock ? { clock: options.clock } : {});
    if (model && model !== heuristic.model) throw new UsageError(`${modelFlag} "${model}" does not apply to the heuristic provider (its model is ${heuristic.model})`);
    return heuristic;
  }
  if (!key) {
    throw new ConfigError('--insights-provider openai needs an API key: OPENAI_API_KEY is not set', {
      hint: 'export OPENAI_API_KEY=… (and OPENAI_BASE_URL for a compatible server), or use --insights-provider heuristic',
    });
  }
  const logger = options.logger;
  return createOpenAIInsightProvider({
    apiKey: key,
    baseURL: env.OPENAI_BASE_URL?.trim() || undefined,
    model: model ?? DEFAULT_INSIGHTS_MODEL,
    ...(logger ? { onRetry: ({ attempt, waitMs, reason }) => logger.warn(`openai: ${reason}; retry ${attempt} in ${(waitMs / 1000).toFixed(1)} s`) } : {}),
  });
}

export function parseConcurrency(text: string | undefined): number {
  const n = text === undefined ? 4 : Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency "${text}" must be a whole number between 1 and 64`);
  return n;
}

/** Dry runs list at most this many contacts (the counts cover all of them). */
const LISTED_MAX = 1_000;

async function runInsights(ctx: Context, flags: InsightsFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock);
  // Queued contacts carry no provider: a contact's interactions span providers.
  if (range.provider !== undefined) throw new UsageError('--provider does not apply to insights (a contact spans providers); narrow with --user, --since or --until');
  const concurrency = parseConcurrency(flags.concurrency);
  const provider = createInsightProviderFromFlags(flags, { clock: ctx.clock, logger: ctx.logger });
  const wouldSend: { contactId: string; userId: string; displayName: string | null; interactions: number }[] = [];
  const stage = createInsightsStage({
    provider,
    concurrency,
    logger: ctx.logger,
    onWouldSend: (contacts) => wouldSend.push(...contacts.slice(0, Math.max(0, LISTED_MAX - wouldSend.length))),
  });
  const db = await ctx.db();
  const summary = await runStageCommand(ctx, db, stage, { range, args: { insightsProvider: provider.name, model: provider.model, concurrency } });
  const result = { ...summary, provider: { name: provider.name, model: provider.model }, ...(range.dryRun ? { wouldSend } : {}) };
  ctx.out.result(result, () => [
    ...wouldSend.map((c) => `  would send ${c.contactId} ${c.displayName ?? '(no name)'} (${c.interactions} interactions)`),
    ...(range.dryRun && (summary.counts.would_send ?? 0) > wouldSend.length ? [`  … and ${(summary.counts.would_send ?? 0) - wouldSend.length} more`] : []),
    `${renderSummary(summary)} [${provider.name} ${provider.model}]`,
  ]);
  return ExitCode.ok;
}

export function registerInsights(program: Command, state: RunState): void {
  const cmd = program
    .command('insights')
    .description(descriptionOf('insights'))
    .option('--insights-provider <name>', `${INSIGHT_PROVIDERS.join(' or ')} (default: openai when OPENAI_API_KEY is set, else heuristic)`)
    .option('--model <model>', `the chat model for openai (default ${DEFAULT_INSIGHTS_MODEL})`)
    .option('--concurrency <n>', 'provider requests in flight', '4');
  addRangeOptions(cmd)
    .addHelpText(
      'after',
      `
Takes the contacts whose linked interactions are new or changed since their last insights.
A contact whose interactions are unchanged since its insights of the same model is not sent
again; an insight whose fingerprint (kind, contact, model, title) exists is not stored twice.
Insights expire after a year (see \`omni-ingest purge insights\`). No database transaction is
open while the model answers. An answer that fails validation dead-letters its contact
(raw_event_errors, stage insights) and the run goes on (exit 0); no quota, a bad key or an
outage that outlasts the retries stops the run (exit 1) and the contacts stay queued.
A batch takes at most 100 contacts whatever --batch-size says, so it finishes within its lease.
openai uses OPENAI_API_KEY and OPENAI_BASE_URL (any compatible server); without a key,
--insights-provider openai exits 2.

Examples:
  omni-ingest insights
  omni-ingest insights --insights-provider openai --model gpt-4o-mini --concurrency 8
  omni-ingest insights --user 11111111-1111-4111-8111-111111111111 --since 30d --json
  omni-ingest insights --dry-run`,
    )
    .action(action<InsightsFlags>(state, (ctx, flags) => runInsights(ctx, flags)));
}
