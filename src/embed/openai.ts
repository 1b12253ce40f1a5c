// The OpenAI embedder (and any OpenAI-compatible server, via baseURL), through the official SDK.
// Retries are the shared policy of src/openai/retry.ts: connection errors, timeouts, 429/5xx and
// malformed answers are tried again within the limits the operator set (attempts, total time,
// the longest Retry-After), each retry a warning; insufficient_quota, bad keys and unknown models
// stop the run; a 400 about an input becomes EmbedInputRejected, which the stage isolates and
// dead-letters. The SDK is loaded on the first request, not at import: `--help` and the local
// embedder never pay for it.
import type { APIError, OpenAI } from 'openai';
import { errorMessage, OmniError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isQuota, RetriesExhausted, transientFailure, withRetries } from '../openai/retry.js';
import {
  checkVectors,
  EmbedInputRejected,
  EmbedProviderError,
  EXPECTED_DIMENSIONS,
  float32sOfBase64,
  refuseDimensions,
  type EmbedResult,
  type Embedder,
  type Vector,
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
  /** Retrying one request gives up this long after its first failure (default 5 min). */
  retryForMs?: number | undefined;
  /** First backoff step (default 500 ms), doubling up to maxBackoffMs (default 30 s). */
  retryBaseMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /** A Retry-After longer than this is an error rather than a wait (default: retryForMs). */
  maxWaitMs?: number | undefined;
  /** Per HTTP request (default 60 s). */
  timeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_RETRY_FOR_MS = 5 * 60_000;

/** `input[3]` (in param or message) → 3. */
function inputIndex(err: APIError): number | undefined {
  const m = /input\[(\d+)\]/.exec(`${err.param ?? ''} ${err.message}`);
  return m ? Number(m[1]) : undefined;
}

type Sdk = typeof import('openai');

/** What ends the attempts at once: the quota, the key, the model, a parameter. */
function fatal(model: string, err: unknown): EmbedProviderError {
  const api = err as Partial<APIError>;
  const status = api.status ?? 0;
  if (status === 429 && isQuota(err as APIError)) {
    return new EmbedProviderError(`${model}: the provider says the quota is used up (429 insufficient_quota): ${api.message}`, {
      cause: err,
      hint: 'add credit or raise the quota; retrying cannot help',
    });
  }
  if (status === 401 || status === 403)
    return new EmbedProviderError(`${model}: the provider refused the key (${status}): ${api.message}`, {
      cause: err,
      hint: 'check OPENAI_API_KEY',
    });
  return new EmbedProviderError(`${model}: ${status ? `the provider answered ${status}: ` : ''}${errorMessage(err)}`, { cause: err });
}

/**
 * A 400 about the input (its content or size) concerns that input; any other 400 (bad model,
 * bad parameter) concerns every request and must stop the run, not dead-letter everything.
 */
function rejectedInput(sdk: Sdk, err: unknown, inputs: number): EmbedInputRejected | undefined {
  if (!(err instanceof sdk.APIError) || err.status !== 400) return undefined;
  if (!(/input/i.test(err.param ?? '') || /input|token|content/i.test(err.message))) return undefined;
  return new EmbedInputRejected(err.message, inputs === 1 ? 0 : inputIndex(err), { status: err.status, code: err.code, param: err.param });
}

/**
 * One answered embedding: the SDK types it as numbers, but asked for base64 it is a string. A
 * compatible server that ignores the format and sends numbers is taken as it is.
 */
function decodeEmbedding(model: string, embedding: unknown): Vector {
  if (typeof embedding === 'string') return float32sOfBase64(embedding);
  // Its values are checked with every answer's (checkVectors: width, finite numbers).
  if (Array.isArray(embedding)) return embedding as number[];
  if (embedding instanceof Float32Array) return embedding; // should the SDK ever decode it itself
  throw new EmbedProviderError(`model ${model} answered an embedding that is neither base64 nor an array of numbers`);
}

export function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Embedder {
  const model = options.model ?? DEFAULT_OPENAI_MODEL;
  const dimensions = options.dimensions;
  if (dimensions !== undefined && dimensions !== EXPECTED_DIMENSIONS) throw refuseDimensions(model, dimensions, 'was asked for');
  const native = NATIVE_DIMENSIONS[model];
  if (native !== undefined && native !== EXPECTED_DIMENSIONS && dimensions === undefined) throw refuseDimensions(model, native, 'makes');
  if (model === 'text-embedding-ada-002' && dimensions !== undefined)
    throw new EmbedProviderError('text-embedding-ada-002 does not accept --dimensions (only text-embedding-3-* do)');
  const retryForMs = options.retryForMs ?? DEFAULT_RETRY_FOR_MS;
  const policy = {
    maxAttempts: options.maxAttempts ?? 10,
    retryForMs,
    maxWaitMs: options.maxWaitMs ?? retryForMs,
    baseMs: options.retryBaseMs ?? 500,
    maxBackoffMs: options.maxBackoffMs ?? 30_000,
    onRetry: ({ attempt, maxAttempts, waitMs, reason }: { attempt: number; maxAttempts: number; waitMs: number; reason: string }) =>
      options.logger?.warn(`${model}: ${reason}; retry ${attempt} of ${maxAttempts - 1} in ${(waitMs / 1000).toFixed(1)} s`),
  };
  let loading: Promise<{ sdk: Sdk; client: OpenAI }> | undefined;
  const load = () =>
    (loading ??= import('openai').then((sdk) => ({
      sdk,
      client: new sdk.OpenAI({
        apiKey: options.apiKey,
        baseURL: options.baseURL,
        maxRetries: 0,
        timeout: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      }),
    })));

  // Start loading now, while the first batch is leased, read and chunked, so the first requests
  // do not wait for it (a failure here surfaces on the first request, through load() again).
  load().catch(() => (loading = undefined));

  const once = async (client: OpenAI, texts: string[], signal: AbortSignal | undefined): Promise<EmbedResult> => {
    // base64 asked for explicitly: the SDK then hands the strings over as they came, and each
    // becomes a Float32Array over its decoded bytes, where the SDK's own decoding builds an array
    // of 1,536 numbers per vector (twice the memory, and CPU inside the request's slot).
    const response = await client.embeddings.create(
      { model, input: texts, encoding_format: 'base64', ...(dimensions === undefined ? {} : { dimensions }) },
      signal ? { signal } : undefined,
    );
    const vectors = new Array<Vector>(texts.length);
    for (const d of response.data) {
      if (Number.isInteger(d.index) && d.index >= 0 && d.index < texts.length) vectors[d.index] = decodeEmbedding(model, d.embedding);
    }
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
    dimensionsParam: dimensions,
    maxInputsPerRequest: Math.min(options.maxInputsPerRequest ?? 2048, 2048),
    maxTokensPerRequest: Math.min(options.maxTokensPerRequest ?? 300_000, 300_000),
    usdPerMillionTokens: PRICES[model],
    lexical: false,
    async embed(texts, signal) {
      if (texts.length === 0) return { vectors: [], tokens: 0 };
      if (texts.some((t) => t.length === 0)) throw new EmbedProviderError('an empty string cannot be embedded (the provider refuses it)');
      const { sdk, client } = await load();
      try {
        return await withRetries(
          () => once(client, texts, signal),
          (err) => transientFailure(sdk, err),
          policy,
          signal,
        );
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        if (err instanceof RetriesExhausted) {
          throw new EmbedProviderError(`${model}: ${err.message}`, {
            cause: err.cause,
            hint: 'the provider is failing or rate limiting; the interactions stay queued for the next run (see --retry-for, --request-timeout)',
          });
        }
        // Ours (dimensions, answer shape) are final; of the SDK's, an input the provider refuses is isolated.
        if (err instanceof OmniError || err instanceof EmbedInputRejected) throw err;
        throw rejectedInput(sdk, err, texts.length) ?? fatal(model, err);
      }
    },
  };
  return embedder;
}
