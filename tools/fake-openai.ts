// A local HTTP server that speaks enough of the OpenAI API for tests and benchmarks:
// POST /v1/embeddings and POST /v1/chat/completions, with injectable latency, 429s with
// Retry-After, 500s and rejected inputs, and the Batch API (/v1/files, /v1/batches: see
// fake-openai-batch.ts). Driven through the real `openai` SDK via baseURL.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFakeBatchApi, type FakeBatchApi, type FakeBatchOptions, type Reply } from './fake-openai-batch.js';

export interface FakeOpenAIOptions {
  /** Vector size returned by /v1/embeddings (default 1536). */
  dimensions?: number;
  /** Added before every answer, in ms. */
  latencyMs?: number;
  /** Added before chat-completion answers instead of `latencyMs`, in ms. */
  chatLatencyMs?: number;
  /** The next N requests (any endpoint) get 429 with this Retry-After (seconds, may be fractional). */
  rateLimit?: { count: number; retryAfterSeconds: number };
  /** The next N requests get a 500. */
  serverErrors?: number;
  /** An embedding input containing this text makes the request fail with 400 naming its index. */
  rejectMarker?: string;
  /** The assistant message content for chat completions (default: a valid insights JSON). */
  chatContent?: (messages: { role: string; content: string }[]) => string;
  /** Never answer (a provider that hangs): requests stay open until the client gives up or the server closes. */
  hang?: boolean;
  /** The next N requests get a 200 whose body is cut off mid-JSON. */
  malformedAnswers?: number;
  /** The next N requests get a 401 (invalid key). */
  unauthorized?: number;
  /** Every error message quotes the API key the request carried, as some proxies and compatible servers do. */
  echoKey?: boolean;
  /** How Batch API batches behave (completion, expiry). */
  batch?: FakeBatchOptions;
  /** Embeddings always as arrays of numbers, even when base64 is asked for (as some compatible servers do). */
  floatsOnly?: boolean;
}

interface FakeOpenAIStats {
  requests: number;
  embeddingRequests: number;
  embeddingInputs: number;
  chatRequests: number;
  rateLimited: number;
  serverErrors: number;
  rejected: number;
  /** Inputs per embeddings request, in arrival order. */
  batchSizes: number[];
  /** Largest number of requests in flight at once. */
  maxConcurrent: number;
}

export interface FakeOpenAI {
  url: string;
  options: FakeOpenAIOptions;
  stats: FakeOpenAIStats;
  batchApi: FakeBatchApi;
  close(): Promise<void>;
}

/** A deterministic unit vector from the text (so equal texts get equal vectors), cheap to make. */
export function fakeVector(text: string, dimensions: number): number[] {
  let a = createHash('sha256').update(text).digest().readUInt32LE(0);
  const out = new Array<number>(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    // mulberry32: one hash per vector, not per element, keeps the fake server off the CPU.
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const v = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
    out[i] = v;
    norm += v * v;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) out[i] = out[i]! * scale;
  return out;
}

const defaultChat = () =>
  JSON.stringify({
    insights: [
      { kind: 'summary', title: 'Summary', body: 'A short summary of the conversation.' },
      { kind: 'next_step', title: 'Follow up', body: 'Reply to the last message.' },
      { kind: 'score', title: 'Engagement', body: 'Engaged contact.', score: 70 },
    ],
  });

/**
 * A reply made now and sent later: the answer is worked out when the request arrives and sent when
 * its latency is up, so the latency is the whole round trip, as a provider's is — not the delay
 * plus this server's own work, which, done after the delay for requests that arrived together,
 * made the last of them wait for the others' (64 vectors, ~0.5 MB of JSON each).
 */
function heldReply(): Reply & { sendTo(res: http.ServerResponse): void } {
  let head: [number, Record<string, string>] = [200, {}];
  let body: string | Buffer = '';
  return {
    writeHead(status, headers) {
      head = [status, headers];
    },
    end(b) {
      body = b;
    },
    sendTo(res) {
      res.writeHead(head[0], head[1]);
      res.end(body);
    },
  };
}

function send(res: Reply, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The key a request was sent with (its bearer token). */
function keyOf(req: http.IncomingMessage): string {
  return (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
}

type Answer = (
  res: Reply,
  status: number,
  body: { error: { message: string } & Record<string, unknown> },
  headers?: Record<string, string>,
) => void;

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const stats: FakeOpenAIStats = {
    requests: 0,
    embeddingRequests: 0,
    embeddingInputs: 0,
    chatRequests: 0,
    rateLimited: 0,
    serverErrors: 0,
    rejected: 0,
    batchSizes: [],
    maxConcurrent: 0,
  };
  let inFlight = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stats.requests++;
      inFlight++;
      stats.maxConcurrent = Math.max(stats.maxConcurrent, inFlight);
      const finish = () => {
        inFlight--;
      };
      if (options.hang) return; // held open: closeAllConnections ends it
      const arrived = performance.now();
      const latency = (req.url?.includes('/chat/') ? options.chatLatencyMs : undefined) ?? options.latencyMs ?? 0;
      const reply = heldReply();
      try {
        handle(req, reply, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        finish(); // as when it was answered in the timer: the count stays true, the error surfaces
        throw err;
      }
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          try {
            reply.sendTo(res);
          } finally {
            finish();
          }
        },
        Math.max(0, latency - (performance.now() - arrived)),
      );
      timers.add(timer);
    });
  });

  function handle(req: http.IncomingMessage, res: Reply, text: string): void {
    const key = keyOf(req);
    // Errors quote the key when asked, the way a leaky proxy does: the client must not repeat it.
    const echo = (message: string) => (options.echoKey ? `${message} (request made with key ${key})` : message);
    const answer = (
      target: Reply,
      status: number,
      body: { error: { message: string } & Record<string, unknown> },
      headers?: Record<string, string>,
    ) => send(target, status, { error: { ...body.error, message: echo(body.error.message) } }, headers);
    if (options.unauthorized && options.unauthorized > 0) {
      options.unauthorized--;
      answer(res, 401, {
        error: { message: `Incorrect API key provided: ${key}.`, type: 'invalid_request_error', code: 'invalid_api_key' },
      });
      return;
    }
    if (options.rateLimit && options.rateLimit.count > 0) {
      options.rateLimit.count--;
      stats.rateLimited++;
      answer(
        res,
        429,
        { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
        { 'retry-after': String(options.rateLimit.retryAfterSeconds) },
      );
      return;
    }
    if (options.malformedAnswers && options.malformedAnswers > 0) {
      options.malformedAnswers--;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, ');
      return;
    }
    if (options.serverErrors && options.serverErrors > 0) {
      options.serverErrors--;
      stats.serverErrors++;
      answer(res, 500, { error: { message: 'The server had an error', type: 'server_error' } });
      return;
    }
    if (req.method === 'GET' && req.url?.endsWith('/models')) {
      send(res, 200, { object: 'list', data: [{ id: 'text-embedding-3-small', object: 'model' }] });
      return;
    }
    if (batchApi.handle(req, res, text)) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      send(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error' } });
      return;
    }
    if (req.url?.endsWith('/embeddings')) embeddings(res, body, answer);
    else if (req.url?.endsWith('/chat/completions')) chat(res, body);
    else send(res, 404, { error: { message: `Unknown request URL: ${req.method} ${req.url}`, type: 'invalid_request_error' } });
  }

  /** The answer to an embeddings request body: a 400 naming a rejected input, or the vectors. */
  function embedAnswer(input: string[], body: Record<string, unknown>): { status: number; body: unknown } {
    const bad = options.rejectMarker ? input.findIndex((s) => s.includes(options.rejectMarker!)) : -1;
    if (bad >= 0) {
      stats.rejected++;
      return {
        status: 400,
        body: {
          error: {
            message: `Invalid 'input[${bad}]': the input was rejected by the content filter.`,
            type: 'invalid_request_error',
            param: `input[${bad}]`,
            code: 'invalid_value',
          },
        },
      };
    }
    if (input.length === 0 || input.some((s) => s.length === 0)) {
      return {
        status: 400,
        body: { error: { message: "'$.input' is invalid: empty strings are not allowed.", type: 'invalid_request_error' } },
      };
    }
    stats.embeddingInputs += input.length;
    const dimensions = typeof body.dimensions === 'number' ? body.dimensions : (options.dimensions ?? 1536);
    const tokens = input.reduce((n, s) => n + Math.ceil(s.length / 4), 0);
    // The SDK asks for base64 by default; answer in the format asked for.
    const asBase64 = body.encoding_format === 'base64' && !options.floatsOnly;
    return {
      status: 200,
      body: {
        object: 'list',
        model: body.model,
        data: input.map((s, index) => {
          const vector = fakeVector(s, dimensions);
          return {
            object: 'embedding',
            index,
            embedding: asBase64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
          };
        }),
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      },
    };
  }

  function embeddings(res: Reply, body: Record<string, unknown>, answer: Answer = send): void {
    stats.embeddingRequests++;
    const input = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? (body.input as unknown[]).map(String) : [];
    stats.batchSizes.push(input.length);
    const r = embedAnswer(input, body);
    if (r.status === 200) send(res, r.status, r.body);
    else answer(res, r.status, r.body as { error: { message: string } });
  }

  function chat(res: Reply, body: Record<string, unknown>): void {
    stats.chatRequests++;
    const messages = (Array.isArray(body.messages) ? body.messages : []) as { role: string; content: string }[];
    const content = (options.chatContent ?? defaultChat)(messages);
    send(res, 200, {
      id: `chatcmpl-${stats.chatRequests}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150 },
    });
  }

  options.batch ??= {};
  const batchApi = createFakeBatchApi(options.batch, (input, body) => embedAnswer([input], body), send);

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    options,
    stats,
    batchApi,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
