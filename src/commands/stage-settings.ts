// The providers and settings of the stages, from flags, for the commands that build several
// stages (backfill, errors retry): chosen up front, so a missing key fails before any work.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { chooseEmbedder, LOCAL_BY_DEFAULT_NOTICE, selectEmbedder } from '../embed/select.js';
import { selectInsightProvider } from '../insights/select.js';
import type { StageSettings } from '../stages/registry.js';
import {
  concurrencyFlag,
  embedderFlag,
  insightsProviderFlag,
  nonEmpty,
  PROVIDER_TIME_OPTIONS,
  parseFlags,
  providerTimeFlags,
  regionFlag,
} from './flags.js';

export interface StageSettingFlags {
  createContacts?: boolean;
  defaultRegion?: string;
  embedder?: string;
  embeddingModel?: string;
  insightsProvider?: string;
  insightsModel?: string;
  concurrency?: string;
  requestTimeout?: string;
  retryFor?: string;
}

/** The embed and insights provider flags. */
export function addProviderOptions(cmd: Command): Command {
  return cmd
    .option('--embedder <name>', 'embed: openai or local (default: openai when OPENAI_API_KEY is set, else local)')
    .option('--embedding-model <model>', 'embed: the embedding model (default text-embedding-3-small)')
    .option('--insights-provider <name>', 'insights: openai or heuristic (default: openai when OPENAI_API_KEY is set, else heuristic)')
    .option('--insights-model <model>', 'insights: the chat model (default gpt-4o-mini)')
    .option('--concurrency <n>', 'embed/insights: provider requests in flight (default: 4)')
    .option(...PROVIDER_TIME_OPTIONS[0]!)
    .option(...PROVIDER_TIME_OPTIONS[1]!);
}

/** Every provider and setting the stages need, chosen up front so a missing key fails before any work (exit 2). */
export function stageSettings(ctx: Context, flags: StageSettingFlags): StageSettings {
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
  const chosen = chooseEmbedder(ctx.config.openai, { embedder: f.embedder });
  return {
    createContacts: flags.createContacts === true,
    defaultRegion: f.defaultRegion,
    embedder: selectEmbedder(
      { embedder: f.embedder, model: f.embeddingModel, modelFlag: '--embedding-model', ...times },
      ctx.config.openai,
      ctx.logger,
    ),
    // Said by the embed stage when it is built to run: not for a backfill without it, nor before
    // the database turned out not to be migrated.
    embedderNotice: chosen.byDefault && chosen.name === 'local' ? LOCAL_BY_DEFAULT_NOTICE : undefined,
    insights: selectInsightProvider(
      { provider: f.insightsProvider, model: f.insightsModel, modelFlag: '--insights-model', ...times },
      ctx.config.openai,
      { clock: ctx.clock, logger: ctx.logger },
    ),
    concurrency: f.concurrency ?? 4,
  };
}
