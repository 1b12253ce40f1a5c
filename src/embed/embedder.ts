// What the embed stage needs from a provider, and the provider-independent parts of talking to
// one: the 1536-dimension guard, request packing, a concurrency limit shared by every request of
// a run, and isolating the input a provider rejects so its neighbours still get embedded.
import os from 'node:os';
import { ExitCode, OmniError } from '../errors.js';

/** The width of embeddings.embedding_v (SPEC §3.2). Anything else is refused before a write. */
export const EXPECTED_DIMENSIONS = 1536;

/**
 * One embedding. The OpenAI embedder keeps the float32s the provider sent as they came (6 KB for
 * 1536 dimensions; a `number[]` of the same is ~12 KB and costs an array build per vector).
 */
export type Vector = Float32Array | readonly number[];

export interface EmbedResult {
  /** One vector per input, in input order. */
  vectors: Vector[];
  /** Tokens the provider counted (what it bills); 0 when it does not say (the stage then counts). */
  tokens: number;
}

export interface Embedder {
  /** `openai`, `local`: stored in each row's meta.provider. */
  readonly name: string;
  readonly model: string;
  readonly dimensions: number;
  /** The `dimensions` the provider is asked for, when it is (a Batch API request line says it too). */
  readonly dimensionsParam?: number | undefined;
  readonly maxInputsPerRequest: number;
  readonly maxTokensPerRequest: number;
  /** USD per million tokens (0 when free, undefined when unknown), for cost reports. */
  readonly usdPerMillionTokens: number | undefined;
  /** True when vectors capture words, not meaning (the offline embedder): said in every summary. */
  readonly lexical: boolean;
  embed(texts: string[], signal?: AbortSignal): Promise<EmbedResult>;
}

/** The provider refused one input of a request (400). `index` is its position when the provider said. */
export class EmbedInputRejected extends Error {
  constructor(
    message: string,
    readonly index: number | undefined,
    readonly providerError: { status?: number | undefined; code?: string | null | undefined; param?: string | null | undefined } = {},
  ) {
    super(message);
    this.name = 'EmbedInputRejected';
  }
}

/** A model or provider whose vectors are not 1536 wide: nothing may be written (exit 1). */
export class EmbeddingDimensionError extends OmniError {
  override readonly code = 'embedding_dimensions';
  override readonly exitCode = ExitCode.failed;
}

/** The provider cannot be used (quota, key, model, retries exhausted): the run stops (exit 1). */
export class EmbedProviderError extends OmniError {
  override readonly code = 'embed_provider';
}

export function refuseDimensions(model: string, dimensions: number, where: string): EmbeddingDimensionError {
  return new EmbeddingDimensionError(
    `model ${model} ${where} ${dimensions}-dimensional vectors; embeddings.embedding_v is vector(${EXPECTED_DIMENSIONS}), so nothing was written`,
    {
      hint: `use a ${EXPECTED_DIMENSIONS}-dimensional model (text-embedding-3-small, or text-embedding-3-large with --dimensions ${EXPECTED_DIMENSIONS})`,
    },
  );
}

/** Checks a response before anything of it is kept: count, width and finite values. */
export function checkVectors(embedder: Pick<Embedder, 'model'>, inputs: number, vectors: Vector[]): void {
  if (vectors.length !== inputs)
    throw new EmbedProviderError(`model ${embedder.model} answered ${vectors.length} vectors for ${inputs} inputs`);
  for (const v of vectors) {
    if (v.length !== EXPECTED_DIMENSIONS) throw refuseDimensions(embedder.model, v.length, 'returned');
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new EmbedProviderError(`model ${embedder.model} returned a vector with a non-finite value`);
    }
  }
}

/**
 * A base64 embedding (what OpenAI sends for `encoding_format: 'base64'`): little-endian float32s,
 * viewed where they were decoded rather than copied into an array of numbers.
 */
export function float32sOfBase64(base64: string): Float32Array {
  return float32sOfBytes(Buffer.from(base64, 'base64'));
}

/** Little-endian float32s as a Float32Array: a view when offset and byte order allow, else a copy. */
export function float32sOfBytes(bytes: Buffer, platformLittleEndian = os.endianness() === 'LE'): Float32Array {
  if (bytes.length % 4 !== 0) throw new EmbedProviderError(`a base64 embedding of ${bytes.length} bytes is not a run of float32s`);
  if (bytes.byteOffset % 4 === 0 && platformLittleEndian) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const copy = Buffer.from(bytes);
  if (!platformLittleEndian) copy.swap32();
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(copy);
  return out;
}

/** At most `n` calls at once; the others wait their turn in order. */
export function createLimiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next)
        next(); // the slot passes straight to the next caller
      else active--;
    }
  };
}

export interface PackLimits {
  maxInputs: number;
  maxTokens: number;
}

/**
 * Packs inputs into requests in order, each within the provider's input and token limits.
 * When there are fewer inputs than `spread` full requests, they are spread evenly over `spread`
 * requests instead, so a small batch still uses every concurrent slot.
 */
export function packRequests<T extends { tokens: number }>(items: T[], limits: PackLimits, spread = 1): T[][] {
  const cap = Math.max(1, Math.min(limits.maxInputs, Math.ceil(items.length / Math.max(1, spread))));
  const requests: T[][] = [];
  let current: T[] = [];
  let tokens = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= cap || tokens + item.tokens > limits.maxTokens)) {
      requests.push(current);
      current = [];
      tokens = 0;
    }
    current.push(item);
    tokens += item.tokens;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

export interface IsolatedResult {
  /** Per input: its vector, or undefined when it was rejected. */
  vectors: (Vector | undefined)[];
  /** Rejected inputs by index, with the provider's message. */
  rejected: Map<number, EmbedInputRejected>;
  tokens: number;
  /** Requests made, the failed ones included. */
  requests: number;
}

/**
 * Sends `texts`; when the provider rejects an input, splits the request and sends the parts
 * again until each rejected input stands alone, so only those are lost. When the provider names
 * the index the split is around it (three parts); otherwise it is a binary split.
 */
export async function embedIsolating(send: (texts: string[]) => Promise<EmbedResult>, texts: string[]): Promise<IsolatedResult> {
  const out: IsolatedResult = { vectors: new Array<Vector | undefined>(texts.length), rejected: new Map(), tokens: 0, requests: 0 };
  const run = async (offset: number, part: string[]): Promise<void> => {
    out.requests++;
    try {
      const { vectors, tokens } = await send(part);
      out.tokens += tokens;
      vectors.forEach((v, i) => {
        out.vectors[offset + i] = v;
      });
      return;
    } catch (err) {
      if (!(err instanceof EmbedInputRejected)) throw err;
      if (part.length === 1) {
        out.rejected.set(offset, err);
        return;
      }
      const at = err.index;
      const cuts = at !== undefined && at >= 0 && at < part.length ? [0, at, at + 1, part.length] : [0, part.length >> 1, part.length];
      const pieces: Promise<void>[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [from, to] = [cuts[k]!, cuts[k + 1]!];
        if (to > from) pieces.push(run(offset + from, part.slice(from, to)));
      }
      await Promise.all(pieces);
    }
  };
  await run(0, texts);
  return out;
}
