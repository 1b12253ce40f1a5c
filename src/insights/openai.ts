// The OpenAI insight provider (SPEC §8): chat completions through the official SDK with a
// json_schema structured output, the answer validated with zod before anything is written.
// Retries are the shared policy of src/openai/retry.ts (connection errors, timeouts, 429/5xx and
// malformed answers, within the operator's limits, each retry a warning); quota or key problems
// stop the run at once. The SDK is loaded on the first request, not at import: `--help` and the
// heuristic provider should not pay for it.
import type { ResponseFormatJSONSchema } from 'openai/resources/shared';
import { errorMessage } from '../errors.js';
import { isQuota, RetriesExhausted, sleep as abortableSleep, transientFailure, withRetries } from '../openai/retry.js';
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
  maxAttempts?: number | undefined;
  /** The longest Retry-After we wait for; a longer one ends the attempts (default 60 s). */
  maxRetryWaitMs?: number | undefined;
  /** Retrying one contact gives up this long after its first failure (default 5 min). */
  retryForMs?: number | undefined;
  /** Per request (default 60 s). */
  timeoutMs?: number | undefined;
  /** Injected by tests. */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  onRetry?: ((info: { attempt: number; maxAttempts: number; waitMs: number; reason: string }) => void) | undefined;
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

/**
 * A failure that is not worth another try, as what it means for the run: one contact's request
 * the API refuses (too long, filtered: dead-letter it, go on), or the provider unusable for
 * everyone (quota, key, model: stop the run; the contacts stay queued).
 */
function finalFailure(sdk: Sdk, err: unknown): InsightContactError | InsightProviderError {
  if (!(err instanceof sdk.APIError)) return new InsightProviderError(`openai: ${errorMessage(err)}`, false, { cause: err });
  const status = err.status ?? 0;
  if (status === 429 && isQuota(err)) {
    return new InsightProviderError(`openai: insufficient quota (${err.message})`, false, {
      cause: err,
      hint: 'add credit to the OpenAI account or use --insights-provider heuristic; the contacts stay queued',
    });
  }
  if (status === 401 || status === 403) {
    return new InsightProviderError(`openai: ${status} ${err.message}`, false, {
      cause: err,
      hint: 'check OPENAI_API_KEY (and OPENAI_BASE_URL)',
    });
  }
  if (status === 404)
    return new InsightProviderError(`openai: ${err.message}`, false, { cause: err, hint: 'check --model and OPENAI_BASE_URL' });
  // 400/413/422: this contact's request (too long, filtered); the others may well pass.
  return new InsightContactError(`openai rejected the request: ${status} ${err.message}`, 'rejected');
}

export function createOpenAIInsightProvider(options: OpenAIInsightOptions): InsightProvider {
  const model = options.model ?? DEFAULT_INSIGHTS_MODEL;
  const retryForMs = options.retryForMs ?? 5 * 60_000;
  const policy = {
    maxAttempts: options.maxAttempts ?? 5,
    retryForMs,
    maxWaitMs: options.maxRetryWaitMs ?? 60_000,
    baseMs: 500,
    maxBackoffMs: 8_000,
    onRetry: options.onRetry,
    sleep: options.sleep ?? abortableSleep,
  };
  let client: InstanceType<Sdk['OpenAI']> | undefined;

  async function ask(c: ContactContext, signal: AbortSignal | undefined, spent: { tokens: number }): Promise<GenerateResult> {
    const completion = await client!.chat.completions.create(
      {
        model,
        temperature: 0.2,
        response_format: (await loadSdk()).responseFormat,
        messages: [
          { role: 'system', content: SYSTEM_PROMPT },
          { role: 'user', content: userMessage(c) },
        ],
      },
      { signal },
    );
    spent.tokens += completion.usage?.total_tokens ?? 0;
    const tokens = spent.tokens;
    const choice = completion.choices[0];
    if (choice?.message.refusal) {
      throw new InsightContactError(
        `the model refused: ${choice.message.refusal}`,
        'refused',
        [],
        choice.message.refusal.slice(0, 1_000),
        tokens,
      );
    }
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
  }

  async function generate(c: ContactContext, signal?: AbortSignal): Promise<GenerateResult> {
    const { sdk } = await loadSdk();
    client ??= new sdk.OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 60_000 });
    const spent = { tokens: 0 };
    try {
      return await withRetries(
        () => ask(c, signal, spent),
        (err) => transientFailure(sdk, err),
        policy,
        signal,
      );
    } catch (err) {
      if (err instanceof InsightContactError || err instanceof sdk.APIUserAbortError || signal?.aborted) throw err;
      if (err instanceof RetriesExhausted) {
        throw new InsightProviderError(`openai: ${err.message}`, true, {
          cause: err.cause,
          hint: 'run again later; the contacts stay queued (see --retry-for, --request-timeout)',
        });
      }
      throw finalFailure(sdk, err);
    }
  }

  return { name: 'openai', model, generate };
}
