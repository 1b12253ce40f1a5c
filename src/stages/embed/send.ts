// Sending a batch's missing chunks: packed into requests up to the provider's limits, sent with
// the run's bounded concurrency while NO transaction is open, each rejected input isolated by
// splitting its request. As each request is answered, the items it completes are handed on
// (onReady), so writing overlaps the requests still in flight.
import { type createLimiter, EmbedProviderError, embedIsolating, packRequests, type Embedder } from '../../embed/embedder.js';
import type { Item, Pending } from './plan.js';

export interface SendTally {
  requests: number;
  tokens: number;
}

export interface SendOptions {
  embedder: Embedder;
  limit: ReturnType<typeof createLimiter>;
  /** Requests in flight at once: a small batch is spread over this many requests. */
  concurrency: number;
  signal: AbortSignal;
  /** Resolves when answers may be taken in: a request holding its slot waits for it before sending. */
  room?: ((signal: AbortSignal) => Promise<void>) | undefined;
  /** Called with the items whose last chunk was just answered, and what that request cost. */
  onAnswer(ready: Item[], tally: SendTally): void;
}

/** The number of requests `pending` packs into (for dry runs and the summary). */
export function countRequests(embedder: Embedder, pending: Pending[], concurrency: number): number {
  return packRequests(pending, { maxInputs: embedder.maxInputsPerRequest, maxTokens: embedder.maxTokensPerRequest }, concurrency).length;
}

export async function sendPending(pending: Pending[], o: SendOptions): Promise<number> {
  const { embedder } = o;
  const send = (texts: string[]) =>
    o.limit(async () => {
      await o.room?.(o.signal);
      if (o.signal.aborted) throw o.signal.reason;
      return embedder.embed(texts, o.signal);
    });
  const requests = packRequests(
    pending,
    { maxInputs: embedder.maxInputsPerRequest, maxTokens: embedder.maxTokensPerRequest },
    o.concurrency,
  );
  await Promise.all(
    requests.map(async (request) => {
      const result = await embedIsolating(
        send,
        request.map((p) => p.text),
      );
      // Every input of a sizeable request refused one by one is the setup (a model whose input
      // limit is below our chunks, a filter on everything), not bad data: stop, do not
      // dead-letter the whole queue.
      if (request.length >= 4 && result.rejected.size === request.length) {
        const first = result.rejected.values().next().value;
        throw new EmbedProviderError(
          `${embedder.name} ${embedder.model} rejected all ${request.length} inputs of a request one by one (${first?.message ?? 'no message'}); nothing was dead-lettered`,
          { hint: 'check the model and its input limit (chunks are up to 512 cl100k tokens)' },
        );
      }
      // What the provider says it counted; when it does not say, our cl100k count of the inputs.
      const tokens = result.tokens > 0 ? result.tokens : request.reduce((n, p, k) => n + (result.vectors[k] ? p.tokens : 0), 0);
      const ready: Item[] = [];
      request.forEach((p, k) => {
        p.vector = result.vectors[k];
        p.rejected = result.rejected.get(k);
        for (const item of p.waiting) {
          item.unresolved.delete(p.hash);
          if (item.unresolved.size === 0) ready.push(item);
        }
      });
      o.onAnswer(ready, { requests: result.requests, tokens });
    }),
  );
  return requests.length;
}
