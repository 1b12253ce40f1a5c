// `omni-ingest insights`: AI insights per contact with new interactions (SPEC §8).
// `--provider` is the range filter every batch command shares, so the insight provider is
// `--insights-provider` (the same flag `backfill` uses).
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { DEFAULT_INSIGHTS_MODEL } from '../insights/openai.js';
import { INSIGHT_PROVIDERS, selectInsightProvider } from '../insights/select.js';
import { createInsightsStage } from '../stages/insights.js';
import { addRangeOptions, exitCodeOf, renderSummary, runStageCommand } from './batch-options.js';
import {
  concurrencyFlag,
  insightsProviderFlag,
  nonEmpty,
  PROVIDER_TIME_OPTIONS,
  parseFlags,
  parseRange,
  providerTimeFlags,
  type RangeFlags,
} from './flags.js';
import { action, type RunState } from './run.js';

interface InsightsFlags extends RangeFlags {
  insightsProvider?: string;
  model?: string;
  concurrency?: string;
}

/** Dry runs list at most this many contacts (the counts cover all of them). */
const LISTED_MAX = 1_000;

async function runInsights(ctx: Context, flags: InsightsFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, undefined, 'adaptive');
  const f = parseFlags(
    { insightsProvider: insightsProviderFlag, model: nonEmpty, concurrency: concurrencyFlag, ...providerTimeFlags },
    flags,
  );
  const concurrency = f.concurrency ?? 4;
  const provider = selectInsightProvider(
    { provider: f.insightsProvider, model: f.model, requestTimeoutMs: f.requestTimeout, retryForMs: f.retryFor },
    ctx.config.openai,
    {
      clock: ctx.clock,
      logger: ctx.logger,
    },
  );
  const wouldSend: { contactId: string; userId: string; displayName: string | null; interactions: number }[] = [];
  const stage = createInsightsStage({
    provider,
    concurrency,
    logger: ctx.logger,
    onWouldSend: (contacts) => wouldSend.push(...contacts.slice(0, Math.max(0, LISTED_MAX - wouldSend.length))),
  });
  const db = await ctx.db();
  const summary = await runStageCommand(ctx, db, stage, {
    range,
    args: { insightsProvider: provider.name, model: provider.model, concurrency },
  });
  const result = { ...summary, provider: { name: provider.name, model: provider.model }, ...(range.dryRun ? { wouldSend } : {}) };
  ctx.out.result(result, () => [
    ...wouldSend.map((c) => `  would send ${c.contactId} ${c.displayName ?? '(no name)'} (${c.interactions} interactions)`),
    ...(range.dryRun && (summary.counts.would_send ?? 0) > wouldSend.length
      ? [`  … and ${(summary.counts.would_send ?? 0) - wouldSend.length} more`]
      : []),
    `${renderSummary(summary)} [${provider.name} ${provider.model}]`,
  ]);
  return exitCodeOf(summary);
}

export function registerInsights(cmd: Command, state: RunState): void {
  cmd
    .option('--insights-provider <name>', `${INSIGHT_PROVIDERS.join(' or ')} (default: openai when OPENAI_API_KEY is set, else heuristic)`)
    .option('--model <model>', `the chat model for openai (default ${DEFAULT_INSIGHTS_MODEL})`)
    .option('--concurrency <n>', 'provider requests in flight (default: 4)')
    .option(...PROVIDER_TIME_OPTIONS[0]!)
    .option(...PROVIDER_TIME_OPTIONS[1]!);
  // No --provider: a contact's interactions span providers.
  addRangeOptions(cmd, ['since', 'until', 'user', 'batchSize', 'batchTarget', 'maxRate', 'limit', 'timeBudget', 'dryRun'])
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
