// The OpenAI embedder (and any OpenAI-compatible server, via baseURL), through the official SDK.
// The SDK's own retries are off (maxRetries: 0) because they are wrong for a backfill: they
// retry a 429 `insufficient_quota` that can never succeed, cap Retry-After at 60 s and give up
// after 2 attempts. Here: 429/5xx/connection errors are retried with exponential backoff and
// full jitter, honouring Retry-After / retry-after-ms whatever their size (within maxWaitMs),
// for at most `maxAttempts`; insufficient_quota, bad keys and unknown models stop the run; a 400
// about an input becomes EmbedInputRejected, which the stage isolates and dead-letters.
// The SDK is loaded on the first request, not at import: `--help` and the local embedder never pay for it.
import type { APIError, OpenAI } from 'openai';
import { retryAfterMs, sleep as abortableSleep } from '../openai/retry.js';
import { errorMessage, OmniError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  checkVectors,
  EmbedInputRejected,
  EmbedProviderError,
  EXPECTED_DIMENSIONS,
  refuseDimensions,
  type EmbedResult,
  type Embedder,
} from './embedder.js';

export const DEFAULT_OPENAI_MODEL = 'text-embedding-3-small';

/** USD per million input tokens (standard API; the Batch API is half). */
const PRICES: Record<string, number> = {
  'text-embedding-3-small': 0.02,
  'text-embedding-3-large': 0.13,
  'text-embedding-ada-002': 0.1,
};

/** Native widths of OpenAI's models; other servers' models are checked on their first answer. */
const NATIVE_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

export interface OpenAIEmbedderOptions {
  apiKey: string;
  baseURL?: string | undefined;
  model?: string | undefined;
  /** Asked of the model (only text-embedding-3-* accept it); must be 1536. */
  dimensions?: number | undefined;
  /** Provider limits: 2048 inputs and 300,000 tokens per request. */
  maxInputsPerRequest?: number | undefined;
  maxTokensPerRequest?: number | undefined;
  /** Attempts per request, the first included (default 10). */
  maxAttempts?: number | undefined;
  /** First backoff step (default 500 ms), doubling up to maxBackoffMs (default 30 s). */
  retryBaseMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /** A Retry-After longer than this is an error rather than a wait (default 15 min). */
  maxWaitMs?: number | undefined;
  /** Per HTTP request (default 120 s). */
  timeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/** `input[3]` (in param or message) → 3. */
function inputIndex(err: APIError): number | undefined {
  const m = /input\[(\d+)\]/.exec(`${err.param ?? ''} ${err.message}`);
  return m ? Number(m[1]) : undefined;
}

type Verdict = { kind: 'retry'; waitMs: number | undefined } | { kind: 'reject' } | { kind: 'fatal'; message: string; hint?: string };

type Sdk = typeof import('openai');

function classify(sdk: Sdk, err: unknown): Verdict {
  if (err instanceof sdk.APIUserAbortError) return { kind: 'fatal', message: 'embedding request aborted' };
  if (err instanceof sdk.APIConnectionError) return { kind: 'retry', waitMs: undefined };
  if (!(err instanceof sdk.APIError)) return { kind: 'fatal', message: errorMessage(err) };
  const status = err.status ?? 0;
  if (status === 429 && (err.code === 'insufficient_quota' || /insufficient_quota|exceeded your current quota/i.test(err.message))) {
    return {
      kind: 'fatal',
      message: `the provider says the quota is used up (429 insufficient_quota): ${err.message}`,
      hint: 'add credit or raise the quota; retrying cannot help',
    };
  }
  if (status === 429 || status === 408 || status === 409 || status >= 500) return { kind: 'retry', waitMs: retryAfterMs(err.headers) };
  if (status === 401 || status === 403)
    return { kind: 'fatal', message: `the provider refused the key (${status}): ${err.message}`, hint: 'check OPENAI_API_KEY' };
  // A 400 about the input (its content or size) concerns that input; any other 400 (bad model,
  // bad parameter) concerns every request and must stop the run, not dead-letter everything.
  if (status === 400 && (/input/i.test(err.param ?? '') || /input|token|content/i.test(err.message))) return { kind: 'reject' };
  return { kind: 'fatal', message: `the provider answered ${status}: ${err.message}` };
}

export function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Embedder {
  const model = options.model ?? DEFAULT_OPENAI_MODEL;
  const dimensions = options.dimensions;
  if (dimensions !== undefined && dimensions !== EXPECTED_DIMENSIONS) throw refuseDimensions(model, dimensions, 'was asked for');
  const native = NATIVE_DIMENSIONS[model];
  if (native !== undefined && native !== EXPECTED_DIMENSIONS && dimensions === undefined) throw refuseDimensions(model, native, 'makes');
  if (model === 'text-embedding-ada-002' && dimensions !== undefined)
    throw new EmbedProviderError('text-embedding-ada-002 does not accept --dimensions (only text-embedding-3-* do)');
  const maxAttempts = options.maxAttempts ?? 10;
  const base = options.retryBaseMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  const maxWait = options.maxWaitMs ?? 15 * 60_000;
  let loading: Promise<{ sdk: Sdk; client: OpenAI }> | undefined;
  const load = () =>
    (loading ??= import('openai').then((sdk) => ({
      sdk,
      client: new sdk.OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 120_000 }),
    })));

  // Start loading now, while the first batch is leased, read and chunked, so the first requests
  // do not wait for it (a failure here surfaces on the first request, through load() again).
  load().catch(() => (loading = undefined));

  const once = async (client: OpenAI, texts: string[], signal: AbortSignal | undefined): Promise<EmbedResult> => {
    const response = await client.embeddings.create(
      { model, input: texts, ...(dimensions === undefined ? {} : { dimensions }) },
      signal ? { signal } : undefined,
    );
    const vectors = new Array<number[]>(texts.length);
    for (const d of response.data) if (Number.isInteger(d.index) && d.index >= 0 && d.index < texts.length) vectors[d.index] = d.embedding;
    for (let i = 0; i < texts.length; i++) {
      if (!vectors[i]) throw new EmbedProviderError(`model ${model} answered ${response.data.length} vectors for ${texts.length} inputs`);
    }
    // Checked here, on every answer, so a wrong model fails on its first response before any write.
    checkVectors(embedder, texts.length, vectors);
    return { vectors, tokens: response.usage?.total_tokens ?? response.usage?.prompt_tokens ?? 0 };
  };

  const embedder: Embedder = {
    name: 'openai',
    model,
    dimensions: EXPECTED_DIMENSIONS,
    maxInputsPerRequest: Math.min(options.maxInputsPerRequest ?? 2048, 2048),
    maxTokensPerRequest: Math.min(options.maxTokensPerRequest ?? 300_000, 300_000),
    usdPerMillionTokens: PRICES[model],
    lexical: false,
    async embed(texts, signal) {
      if (texts.length === 0) return { vectors: [], tokens: 0 };
      if (texts.some((t) => t.length === 0)) throw new EmbedProviderError('an empty string cannot be embedded (the provider refuses it)');
      const { sdk, client } = await load();
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(client, texts, signal);
        } catch (err) {
          if (signal?.aborted) throw signal.reason ?? err;
          // Ours (dimensions, provider) are final; only the SDK's errors are classified.
          if (err instanceof OmniError || err instanceof EmbedInputRejected || !(err instanceof Error)) throw err;
          const verdict = classify(sdk, err);
          if (verdict.kind === 'reject') {
            const api = err as APIError;
            throw new EmbedInputRejected(api.message, texts.length === 1 ? 0 : inputIndex(api), {
              status: api.status,
              code: api.code,
              param: api.param,
            });
          }
          if (verdict.kind === 'fatal')
            throw new EmbedProviderError(`${model}: ${verdict.message}`, { cause: err, ...(verdict.hint ? { hint: verdict.hint } : {}) });
          if (attempt >= maxAttempts) {
            throw new EmbedProviderError(`${model}: giving up after ${attempt} attempts: ${errorMessage(err)}`, {
              cause: err,
              hint: 'the provider is failing or rate limiting; the interactions stay queued for the next run',
            });
          }
          // Full jitter spreads concurrent clients apart; a server-given wait is honoured as is
          // (plus a little jitter), however long, up to maxWait.
          const backoff = Math.random() * Math.min(maxBackoff, base * 2 ** (attempt - 1));
          const asked = verdict.waitMs;
          if (asked !== undefined && asked > maxWait)
            throw new EmbedProviderError(
              `${model}: the provider asks to wait ${Math.round(asked / 1000)} s, longer than the ${Math.round(maxWait / 1000)} s allowed`,
              { cause: err },
            );
          const wait = asked === undefined ? backoff : asked + Math.random() * Math.min(asked * 0.1, 1000);
          const note = `${model}: ${errorMessage(err)}; retry ${attempt}/${maxAttempts - 1} in ${(wait / 1000).toFixed(1)} s`;
          if (wait >= 5_000) options.logger?.warn(note);
          else options.logger?.debug(note);
          await abortableSleep(wait, signal);
        }
      }
    },
  };
  return embedder;
}
