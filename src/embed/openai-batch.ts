// The OpenAI Batch API for embeddings (half the price of direct requests, a 24 h window): upload a
// JSONL file of `/v1/embeddings` requests (purpose `batch`), create a batch of it, poll it,
// download its output and error files. Through the official SDK, with the retry policy every
// OpenAI call of the tool shares (src/openai/retry.ts). The SDK loads on first use.
import type { OpenAI } from 'openai';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { isQuota, RetriesExhausted, transientFailure, withRetries } from '../openai/retry.js';
import { EmbedProviderError } from './embedder.js';

/** The provider's limits for one input file (FIELD-NOTES: Batch API). */
export const BATCH_LIMITS = {
  /** Requests per file, and embedding inputs per batch: one input per line, so one limit. */
  maxLines: 50_000,
  /** Bytes per input file. */
  maxBytes: 200 * 1024 * 1024,
} as const;

/** The Batch API bills half the direct price. */
export const BATCH_PRICE_FACTOR = 0.5;

/** What the metadata of a provider batch carries, to find it again after a crash. */
export const BATCH_METADATA_KEY = 'omni_ingest_batch';

interface ProviderBatch {
  id: string;
  status: string;
  outputFileId: string | null;
  errorFileId: string | null;
  /** The batch's own errors (a file it could not validate), joined. */
  errors: string | null;
}

export interface BatchApi {
  upload(name: string, content: Buffer): Promise<string>;
  create(inputFileId: string, metadata: Record<string, string>): Promise<ProviderBatch>;
  /** The newest batch whose metadata carries `key`=`value`, if the provider still lists it. */
  find(key: string, value: string): Promise<ProviderBatch | undefined>;
  retrieve(id: string): Promise<ProviderBatch>;
  download(fileId: string): Promise<string>;
}

export interface BatchApiOptions {
  apiKey: string;
  baseURL?: string | undefined;
  timeoutMs?: number | undefined;
  retryForMs?: number | undefined;
  retryBaseMs?: number | undefined;
  logger?: Logger | undefined;
}

type Sdk = typeof import('openai');

function toBatch(b: OpenAI.Batches.Batch): ProviderBatch {
  const errors = b.errors?.data?.map((e) => `${e.code ?? 'error'}: ${e.message ?? ''}${e.line ? ` (line ${e.line})` : ''}`).join('; ');
  return {
    id: b.id,
    status: b.status,
    outputFileId: b.output_file_id ?? null,
    errorFileId: b.error_file_id ?? null,
    errors: errors || null,
  };
}

export function createBatchApi(options: BatchApiOptions): BatchApi {
  const retryForMs = options.retryForMs ?? 5 * 60_000;
  const policy = {
    maxAttempts: 10,
    retryForMs,
    maxWaitMs: retryForMs,
    baseMs: options.retryBaseMs ?? 500,
    maxBackoffMs: 30_000,
    onRetry: ({ attempt, maxAttempts, waitMs, reason }: { attempt: number; maxAttempts: number; waitMs: number; reason: string }) =>
      options.logger?.warn(`batch api: ${reason}; retry ${attempt} of ${maxAttempts - 1} in ${(waitMs / 1000).toFixed(1)} s`),
  };
  let loading: Promise<{ sdk: Sdk; client: OpenAI }> | undefined;
  const load = () =>
    (loading ??= import('openai').then((sdk) => ({
      sdk,
      client: new sdk.OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 120_000 }),
    })));

  const call = async <T>(what: string, fn: (client: OpenAI, sdk: Sdk) => Promise<T>): Promise<T> => {
    const { sdk, client } = await load();
    try {
      return await withRetries(
        () => fn(client, sdk),
        (err) => transientFailure(sdk, err),
        policy,
      );
    } catch (err) {
      const status = (err as { status?: number }).status;
      const hint =
        err instanceof RetriesExhausted
          ? 'the provider is failing; the batches stay recorded and the next run continues'
          : status === 429 && isQuota(err as never)
            ? 'add credit or raise the quota; retrying cannot help'
            : status === 401 || status === 403
              ? 'check OPENAI_API_KEY'
              : undefined;
      throw new EmbedProviderError(`batch api: ${what}: ${errorMessage(err)}`, { cause: err, ...(hint ? { hint } : {}) });
    }
  };

  return {
    upload: (name, content) =>
      call('upload', async (client, sdk) => (await client.files.create({ file: await sdk.toFile(content, name), purpose: 'batch' })).id),
    create: (inputFileId, metadata) =>
      call('create', async (client) =>
        toBatch(
          await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/embeddings', completion_window: '24h', metadata }),
        ),
      ),
    find: (key, value) =>
      call('list', async (client) => {
        // Newest first: a batch created moments before a crash is on the first page.
        const page = await client.batches.list({ limit: 100 });
        const hit = page.data.find((b) => b.metadata?.[key] === value);
        return hit ? toBatch(hit) : undefined;
      }),
    retrieve: (id) => call('retrieve', async (client) => toBatch(await client.batches.retrieve(id))),
    download: (fileId) => call('download', async (client) => (await client.files.content(fileId)).text()),
  };
}
