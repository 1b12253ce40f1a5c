// The OpenAI insight provider (SPEC §8): chat completions through the official SDK with a
// json_schema structured output, the answer validated with zod before anything is written.
// Retries are ours, not the SDK's (maxRetries 0): the SDK also retries 429 insufficient_quota,
// which never succeeds, and caps Retry-After silently. Here 429/5xx/connection errors wait
// Retry-After (up to a bound, else exponential backoff) for a bounded number of attempts, and
// quota or key problems stop the run at once.
// The SDK is loaded on the first request, not at import: `--help` and the heuristic provider
// should not pay for it.
import type { ResponseFormatJSONSchema } from 'openai/resources/shared';
import { retryAfterMs, sleep as abortableSleep } from '../openai/retry.js';
import {
  channelOf,
  directionOf,
  InsightContactError,
  InsightProviderError,
  type ContactContext,
  type GenerateResult,
  type InsightProvider,
} from './provider.js';
import { insightsOutput, insightsWire, issuesOf } from './schema.js';

export const DEFAULT_INSIGHTS_MODEL = 'gpt-4o-mini';

export interface OpenAIInsightOptions {
  apiKey: string;
  baseURL?: string | undefined;
  model?: string | undefined;
  /** Tries per contact, the first included (default 5). */
  maxAttempts?: number;
  /** The longest Retry-After we wait for; a longer one ends the attempts (default 60 s). */
  maxRetryWaitMs?: number;
  /** Per request (default 60 s). */
  timeoutMs?: number;
  /** Injected by tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onRetry?: (info: { attempt: number; waitMs: number; reason: string }) => void;
}

type Sdk = typeof import('openai');
let loading: Promise<{ sdk: Sdk; responseFormat: ResponseFormatJSONSchema }> | undefined;
const loadSdk = () =>
  (loading ??= Promise.all([import('openai'), import('openai/helpers/zod')]).then(([sdk, helpers]) => ({
    sdk,
    responseFormat: helpers.zodResponseFormat(insightsWire, 'contact_insights'),
  })));

const SYSTEM_PROMPT = `You write CRM insights about one contact for the person who owns the relationship.
From the contact's interactions (newest first; dates are UTC; "inbound" means the contact wrote),
return these insights:
- exactly one "summary": what the relationship is about and where it stands;
- exactly one "next_step": the single most useful concrete action now;
- exactly one "score": engagement from 0 to 100 in "score" (recent, frequent, two-way contact scores high);
- optionally one "risk" or "opportunity" when the interactions clearly show one.
Titles: at most 120 characters and specific to this contact's situation (never a bare "Summary"),
because insights with the same kind and title are treated as the same insight.
Bodies: one to three plain sentences. "score" is null except for kind "score".
Use only facts found in the data.`;

/** What the model reads: the context as compact JSON, with directions and channels spelled out. */
function userMessage(c: ContactContext): string {
  return JSON.stringify({
    contact: { name: c.displayName, identities: c.identities.map((i) => `${i.kind}:${i.value}`) },
    totals: {
      interactions: c.totals.interactions,
      by_type: c.totals.byType,
      first_at: c.totals.firstAt?.toISOString() ?? null,
      last_at: c.totals.lastAt?.toISOString() ?? null,
    },
    recent_interactions: c.interactions.map((i) => ({
      at: i.occurredAt?.toISOString() ?? null,
      channel: channelOf(i.type),
      direction: directionOf(i.type),
      subject: i.subject,
      body: i.body,
    })),
  });
}

/** The assistant's content → validated insights, or an InsightContactError carrying the zod issues. */
function parseInsightsAnswer(content: string | null | undefined, tokens: number) {
  const excerpt = (content ?? '').slice(0, 1_000);
  let json: unknown;
  try {
    json = JSON.parse(content ?? '');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new InsightContactError(`the model's answer is not JSON: ${message}`, 'invalid_output', [{ path: '', message }], excerpt, tokens);
  }
  const parsed = insightsOutput.safeParse(json);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error);
    const message = `the model's answer does not match the insights schema: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`;
    throw new InsightContactError(message, 'invalid_output', issues, excerpt, tokens);
  }
  return parsed.data.insights;
}

/** What to do about a failed request: wait and retry, stop the run, or dead-letter this contact. */
type Verdict =
  | { kind: 'retry'; reason: string; waitMs: number | undefined }
  | { kind: 'fatal'; error: InsightProviderError }
  | { kind: 'contact'; error: InsightContactError };

function classify(sdk: Sdk, err: unknown): Verdict {
  const { APIConnectionError, APIError } = sdk;
  if (err instanceof APIConnectionError) return { kind: 'retry', reason: err.message, waitMs: undefined };
  if (!(err instanceof APIError))
    return {
      kind: 'fatal',
      error: new InsightProviderError(`openai: ${err instanceof Error ? err.message : String(err)}`, false, { cause: err }),
    };
  const status = err.status ?? 0;
  const quota = err.code === 'insufficient_quota' || err.type === 'insufficient_quota';
  if (quota) {
    return {
      kind: 'fatal',
      error: new InsightProviderError(`openai: insufficient quota (${err.message})`, false, {
        cause: err,
        hint: 'add credit to the OpenAI account or use --insights-provider heuristic; the contacts stay queued',
      }),
    };
  }
  if (status === 429 || status === 408 || status === 409 || status >= 500)
    return { kind: 'retry', reason: `${status} ${err.message}`, waitMs: retryAfterMs(err.headers) };
  if (status === 401 || status === 403) {
    return {
      kind: 'fatal',
      error: new InsightProviderError(`openai: ${status} ${err.message}`, false, {
        cause: err,
        hint: 'check OPENAI_API_KEY (and OPENAI_BASE_URL)',
      }),
    };
  }
  if (status === 404)
    return {
      kind: 'fatal',
      error: new InsightProviderError(`openai: ${err.message}`, false, { cause: err, hint: 'check --model and OPENAI_BASE_URL' }),
    };
  // 400/413/422: this contact's request (too long, filtered); the others may well pass.
  return { kind: 'contact', error: new InsightContactError(`openai rejected the request: ${status} ${err.message}`, 'rejected') };
}

export function createOpenAIInsightProvider(options: OpenAIInsightOptions): InsightProvider {
  const model = options.model ?? DEFAULT_INSIGHTS_MODEL;
  const maxAttempts = options.maxAttempts ?? 5;
  const maxRetryWaitMs = options.maxRetryWaitMs ?? 60_000;
  const sleep = options.sleep ?? abortableSleep;
  let client: InstanceType<Sdk['OpenAI']> | undefined;

  async function generate(c: ContactContext, signal?: AbortSignal): Promise<GenerateResult> {
    const { sdk, responseFormat } = await loadSdk();
    client ??= new sdk.OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 60_000 });
    let tokens = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const completion = await client.chat.completions.create(
          {
            model,
            temperature: 0.2,
            response_format: responseFormat,
            messages: [
              { role: 'system', content: SYSTEM_PROMPT },
              { role: 'user', content: userMessage(c) },
            ],
          },
          { signal },
        );
        tokens += completion.usage?.total_tokens ?? 0;
        const choice = completion.choices[0];
        if (choice?.message.refusal)
          throw new InsightContactError(
            `the model refused: ${choice.message.refusal}`,
            'refused',
            [],
            choice.message.refusal.slice(0, 1_000),
            tokens,
          );
        if (choice?.finish_reason === 'length') {
          throw new InsightContactError(
            'the answer was cut off (finish_reason "length")',
            'invalid_output',
            [],
            (choice.message.content ?? '').slice(0, 1_000),
            tokens,
          );
        }
        return { insights: parseInsightsAnswer(choice?.message.content, tokens), tokens };
      } catch (err) {
        if (err instanceof InsightContactError || err instanceof sdk.APIUserAbortError || signal?.aborted) throw err;
        const verdict = classify(sdk, err);
        if (verdict.kind !== 'retry') throw verdict.error;
        // Exponential backoff with jitter when the server gives no Retry-After: 0.5 s doubling to 8 s.
        const waitMs = verdict.waitMs ?? Math.min(8_000, 500 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
        if (attempt >= maxAttempts || waitMs > maxRetryWaitMs) {
          const why = waitMs > maxRetryWaitMs ? `the server asks to wait ${Math.ceil(waitMs / 1000)} s` : `${attempt} attempts`;
          throw new InsightProviderError(`openai: still failing after ${why}: ${verdict.reason}`, true, {
            cause: err,
            hint: 'run again later; the contacts stay queued',
          });
        }
        options.onRetry?.({ attempt, waitMs, reason: verdict.reason });
        await sleep(waitMs, signal);
      }
    }
  }

  return { name: 'openai', model, generate };
}
