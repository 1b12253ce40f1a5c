// Which insight provider a run uses (SPEC §8), decided from typed settings in one place:
// commands, the stage registry and `doctor` all ask here. The rule: an explicit choice wins;
// otherwise openai when an API key is configured, else the offline heuristic.
import type { Clock } from '../clock.js';
import type { OpenAISettings } from '../config.js';
import { ConfigError, UsageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createHeuristicInsightProvider, HEURISTIC_MODEL } from './heuristic.js';
import { createOpenAIInsightProvider, DEFAULT_INSIGHTS_MODEL } from './openai.js';
import type { InsightProvider } from './provider.js';

export const INSIGHT_PROVIDERS = ['openai', 'heuristic'] as const;
export type InsightProviderName = (typeof INSIGHT_PROVIDERS)[number];

export interface InsightProviderSettings {
  /** Explicitly chosen; undefined applies the rule. */
  provider?: InsightProviderName | undefined;
  model?: string | undefined;
  /** The model flag's name in messages (`--model`, or backfill's `--insights-model`). */
  modelFlag?: string | undefined;
  /** Per provider request (openai). */
  requestTimeoutMs?: number | undefined;
  /** Retrying one contact gives up this long after its first failure (openai). */
  retryForMs?: number | undefined;
}

/** The provider the rule picks, and its model, without building it. */
export function chooseInsightProvider(
  openai: OpenAISettings,
  settings: Pick<InsightProviderSettings, 'provider' | 'model'> = {},
): { name: InsightProviderName; model: string } {
  const name = settings.provider ?? (openai.apiKey ? 'openai' : 'heuristic');
  return { name, model: name === 'heuristic' ? HEURISTIC_MODEL : (settings.model ?? DEFAULT_INSIGHTS_MODEL) };
}

/** Builds the chosen provider; openai without a key is a configuration error (exit 2). Cheap (the SDK loads on the first request). */
export function selectInsightProvider(
  settings: InsightProviderSettings,
  openai: OpenAISettings,
  deps: { clock?: Clock | undefined; logger?: Logger | undefined } = {},
): InsightProvider {
  const modelFlag = settings.modelFlag ?? '--model';
  const { name } = chooseInsightProvider(openai, settings);
  const model = settings.model;
  if (name === 'heuristic') {
    const heuristic = createHeuristicInsightProvider(deps.clock ? { clock: deps.clock } : {});
    if (model !== undefined && model !== heuristic.model)
      throw new UsageError(`${modelFlag} "${model}" does not apply to the heuristic provider (its model is ${heuristic.model})`);
    return heuristic;
  }
  if (!openai.apiKey) {
    throw new ConfigError('--insights-provider openai needs an API key: OPENAI_API_KEY is not set', {
      hint: 'export OPENAI_API_KEY=… (and OPENAI_BASE_URL for a compatible server), or use --insights-provider heuristic',
    });
  }
  const chosen = model ?? DEFAULT_INSIGHTS_MODEL;
  return createOpenAIInsightProvider({
    apiKey: openai.apiKey,
    baseURL: openai.baseUrl,
    model: chosen,
    timeoutMs: settings.requestTimeoutMs,
    retryForMs: settings.retryForMs,
    onRetry: ({ attempt, maxAttempts, waitMs, reason }) =>
      deps.logger?.warn(`openai ${chosen}: ${reason}; retry ${attempt} of ${maxAttempts - 1} in ${(waitMs / 1000).toFixed(1)} s`),
  });
}
