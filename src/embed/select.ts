// Which embedder a run uses (SPEC §7), decided from typed settings in one place: commands,
// the stage registry and `doctor` all ask here. The rule: an explicit choice wins; otherwise
// openai when an API key is configured, else the offline lexical embedder.
import type { OpenAISettings } from '../config.js';
import { ConfigError, UsageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Embedder } from './embedder.js';
import { createLocalEmbedder, LOCAL_MODEL } from './local.js';
import { createOpenAIEmbedder, DEFAULT_OPENAI_MODEL } from './openai.js';
import { type BatchApi, createBatchApi } from './openai-batch.js';

export const EMBEDDERS = ['openai', 'local'] as const;
export type EmbedderName = (typeof EMBEDDERS)[number];

export interface EmbedderSettings {
  /** Explicitly chosen; undefined applies the rule. */
  embedder?: EmbedderName | undefined;
  model?: string | undefined;
  dimensions?: number | undefined;
  inputsPerRequest?: number | undefined;
  /** The model flag's name in messages (`--model`, or backfill's `--embedding-model`). */
  modelFlag?: string | undefined;
  /** Per provider request (openai). */
  requestTimeoutMs?: number | undefined;
  /** Retrying one request gives up this long after its first failure (openai). */
  retryForMs?: number | undefined;
}

/**
 * Said when the rule picked the local embedder for want of a key. The caller says it when a stage
 * that uses the embedder is about to run, not when the flags are read: a command that stops
 * first (an un-migrated database, a backfill without embed) has nothing to say about it.
 */
export const LOCAL_BY_DEFAULT_NOTICE =
  'no OPENAI_API_KEY: using the local embedder (lexical: hashed words and character trigrams, not meaning)';

/** The embedder the rule picks, and its model, without building it. */
export function chooseEmbedder(
  openai: OpenAISettings,
  settings: Pick<EmbedderSettings, 'embedder' | 'model'> = {},
): { name: EmbedderName; model: string; byDefault: boolean } {
  const name = settings.embedder ?? (openai.apiKey ? 'openai' : 'local');
  return {
    name,
    model: name === 'local' ? LOCAL_MODEL : (settings.model ?? DEFAULT_OPENAI_MODEL),
    byDefault: settings.embedder === undefined,
  };
}

/**
 * Builds the chosen embedder. openai without a key is a configuration error (exit 2); a width
 * other than 1536 is refused before anything runs. Cheap and synchronous (the SDK and the
 * tokenizer load on first use).
 */
export function selectEmbedder(settings: EmbedderSettings, openai: OpenAISettings, logger?: Logger): Embedder {
  const modelFlag = settings.modelFlag ?? '--model';
  const { name } = chooseEmbedder(openai, settings);
  const model = settings.model;
  if (name === 'local') {
    if (model !== undefined)
      throw new UsageError(`${modelFlag} "${model}" does not apply to the local embedder (it has one lexical model)`);
    const local = createLocalEmbedder({ maxInputsPerRequest: settings.inputsPerRequest });
    if (settings.dimensions !== undefined && settings.dimensions !== local.dimensions) {
      throw new UsageError(`--dimensions ${settings.dimensions}: the local embedder makes ${local.dimensions}-dimensional vectors`);
    }
    return local;
  }
  if (!openai.apiKey) {
    throw new ConfigError('--embedder openai needs an API key: OPENAI_API_KEY is not set', {
      hint: 'export OPENAI_API_KEY=… (and OPENAI_BASE_URL for a compatible server), or use --embedder local',
    });
  }
  return createOpenAIEmbedder({
    apiKey: openai.apiKey,
    baseURL: openai.baseUrl,
    model: model ?? DEFAULT_OPENAI_MODEL,
    dimensions: settings.dimensions,
    maxInputsPerRequest: settings.inputsPerRequest,
    timeoutMs: settings.requestTimeoutMs,
    retryForMs: settings.retryForMs,
    logger,
  });
}

/**
 * The Batch API of the chosen embedder: openai only (the offline embedder has none). Every openai
 * embed run gets it, so any run collects the batches an earlier `embed --via batch` submitted.
 */
export function selectBatchApi(
  embedder: Embedder,
  openai: OpenAISettings,
  settings: Pick<EmbedderSettings, 'requestTimeoutMs' | 'retryForMs'> = {},
  logger?: Logger,
): BatchApi | undefined {
  if (embedder.name !== 'openai' || !openai.apiKey) return undefined;
  return createBatchApi({
    apiKey: openai.apiKey,
    baseURL: openai.baseUrl,
    timeoutMs: settings.requestTimeoutMs,
    retryForMs: settings.retryForMs,
    logger,
  });
}
