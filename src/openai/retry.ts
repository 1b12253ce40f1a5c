// What both OpenAI clients (embeddings, chat) share about failing requests: which failures are
// worth another try (connection errors and timeouts, 408/409/429/5xx, an answer that is not
// JSON), how long a 429/503 asks us to wait, and one retry loop with the limits an operator can
// set — attempts, total time, the longest Retry-After honoured — where every retry is a warning
// naming its attempt. The SDK's own retries are off: they retry insufficient_quota forever-ish
// and cap Retry-After silently.
import type { APIError } from 'openai';

/** The wait a 429/503 asks for: retry-after-ms, else Retry-After in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type Sdk = typeof import('openai');

/** A failure worth another try, and why (for the warning), with the wait the server asked for. */
export interface Retryable {
  reason: string;
  waitMs: number | undefined;
}

/**
 * The failures of the transport and the server that another try may cure; undefined for the
 * rest (the caller decides: a quota, a key, a rejected input).
 */
export function transientFailure(sdk: Sdk, err: unknown): Retryable | undefined {
  if (err instanceof sdk.APIUserAbortError) return undefined;
  if (err instanceof sdk.APIConnectionTimeoutError) return { reason: 'the request timed out', waitMs: undefined };
  if (err instanceof sdk.APIConnectionError) return { reason: `connection failed: ${err.message}`, waitMs: undefined };
  // The SDK parses the body itself: a truncated or garbled answer surfaces as a SyntaxError.
  if (err instanceof SyntaxError) return { reason: `the provider answered malformed JSON (${err.message})`, waitMs: undefined };
  if (!(err instanceof sdk.APIError)) return undefined;
  const status = err.status ?? 0;
  if (status === 429 && isQuota(err)) return undefined;
  if (status === 429 || status === 408 || status === 409 || status >= 500)
    return { reason: `${status} ${err.message}`, waitMs: retryAfterMs(err.headers) };
  return undefined;
}

/** A 429 that no wait can cure: the account has no quota left. */
export function isQuota(err: APIError): boolean {
  return (
    err.code === 'insufficient_quota' ||
    err.type === 'insufficient_quota' ||
    /insufficient_quota|exceeded your current quota/i.test(err.message)
  );
}

export interface RetryPolicy {
  /** Tries per request, the first included. */
  maxAttempts: number;
  /** Retrying one request stops once this much time has passed since its first failure (ms). */
  retryForMs: number;
  /** A Retry-After longer than this is not waited for (ms). */
  maxWaitMs: number;
  /** Backoff when the server names no wait: `baseMs` doubling to `maxBackoffMs`, full jitter. */
  baseMs: number;
  maxBackoffMs: number;
  /** Told of every retry (the caller logs it as a warning). */
  onRetry?: ((info: { attempt: number; maxAttempts: number; waitMs: number; reason: string }) => void) | undefined;
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
}

/** Why the retries ended: the attempts, the time, or a wait longer than allowed. */
export class RetriesExhausted extends Error {
  constructor(
    readonly reason: string,
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(reason, options);
    this.name = 'RetriesExhausted';
  }
}

/**
 * Sends until it succeeds. A failure `retryable` accepts is tried again after its wait (the
 * server's Retry-After, else backoff); any other failure is thrown as it is. Past the policy's
 * limits a RetriesExhausted is thrown with the last failure as its cause.
 */
export async function withRetries<T>(
  send: () => Promise<T>,
  retryable: (err: unknown) => Retryable | undefined,
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<T> {
  const wait = policy.sleep ?? sleep;
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const r = retryable(err);
      if (!r) throw err;
      firstFailure ??= Date.now();
      const backoff = Math.random() * Math.min(policy.maxBackoffMs, policy.baseMs * 2 ** (attempt - 1));
      const waitMs = r.waitMs === undefined ? backoff : r.waitMs + Math.random() * Math.min(r.waitMs * 0.1, 1000);
      const spent = Date.now() - firstFailure;
      if (attempt >= policy.maxAttempts)
        throw new RetriesExhausted(`still failing after ${attempt} attempts: ${r.reason}`, attempt, { cause: err });
      if (r.waitMs !== undefined && r.waitMs > policy.maxWaitMs) {
        throw new RetriesExhausted(
          `the provider asks to wait ${Math.ceil(r.waitMs / 1000)} s, longer than the ${Math.round(policy.maxWaitMs / 1000)} s allowed: ${r.reason}`,
          attempt,
          {
            cause: err,
          },
        );
      }
      if (spent + waitMs > policy.retryForMs) {
        throw new RetriesExhausted(
          `still failing after ${Math.round(spent / 1000)} s of retries (limit ${Math.round(policy.retryForMs / 1000)} s): ${r.reason}`,
          attempt,
          {
            cause: err,
          },
        );
      }
      policy.onRetry?.({ attempt, maxAttempts: policy.maxAttempts, waitMs, reason: r.reason });
      await wait(waitMs, signal);
    }
  }
}
