// The Batch API of the fake OpenAI server: /v1/files (upload with purpose `batch`, content
// download) and /v1/batches (create, retrieve, list) for the `/v1/embeddings` endpoint. A batch
// completes after a number of polls or a delay; inputs containing the reject marker end in the
// error file as 400s; a batch can be made to expire with only part of its lines answered.
import type http from 'node:http';

export interface FakeBatchOptions {
  /** A batch is finished from its Nth retrieve on (default 1). */
  completeAfterPolls?: number;
  /** …and no sooner than this many ms after its creation (default 0). */
  completeAfterMs?: number;
  /** The next N batches created expire with only the first half of their lines answered. */
  expire?: number;
  /** Answers a batch line with a 500 (inside the batch) when its input contains this text. */
  failMarker?: string;
  /** Answers a batch line with a 200 whose embedding is not float32s (3 bytes) when its input contains this text. */
  garbleMarker?: string;
}

interface FakeBatchStats {
  filesUploaded: number;
  batchesCreated: number;
  batchRetrieves: number;
  batchLines: number;
}

interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  content: string;
  createdAt: number;
}

interface StoredBatch {
  id: string;
  inputFileId: string;
  status: string;
  createdAt: number;
  createdMs: number;
  polls: number;
  expire: boolean;
  metadata: Record<string, string> | null;
  outputFileId: string | null;
  errorFileId: string | null;
  counts: { total: number; completed: number; failed: number };
}

/** What an answer is written to: the response itself, or a reply held until its latency is up. */
export interface Reply {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string | Buffer): unknown;
}

type Send = (res: Reply, status: number, body: unknown) => void;

export interface FakeBatchApi {
  stats: FakeBatchStats;
  /** Answers a /files or /batches request; false when the URL is not one of them. */
  handle(req: http.IncomingMessage, res: Reply, text: string): boolean;
  /** The batches created so far (tests look at their metadata and status). */
  batches(): StoredBatch[];
}

/** The `file` part of a multipart/form-data body, and the `purpose` field. */
function multipart(contentType: string, text: string): { filename: string; content: string; purpose: string } | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (!boundary) return undefined;
  const out = { filename: 'upload.jsonl', content: '', purpose: '' };
  for (const part of text.split(`--${boundary[1] ?? boundary[2]}`)) {
    const at = part.indexOf('\r\n\r\n');
    if (at < 0) continue;
    const head = part.slice(0, at);
    const body = part.slice(at + 4).replace(/\r\n$/, '');
    const name = /name="([^"]+)"/.exec(head)?.[1];
    if (name === 'file') {
      out.content = body;
      out.filename = /filename="([^"]*)"/.exec(head)?.[1] ?? out.filename;
    } else if (name === 'purpose') out.purpose = body;
  }
  return out;
}

export function createFakeBatchApi(
  o: FakeBatchOptions,
  embed: (input: string, body: Record<string, unknown>) => { status: number; body: unknown },
  send: Send,
): FakeBatchApi {
  const stats: FakeBatchStats = { filesUploaded: 0, batchesCreated: 0, batchRetrieves: 0, batchLines: 0 };
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, StoredBatch>();
  let seq = 0;
  const now = () => Math.floor(Date.now() / 1000);

  const fileObject = (f: StoredFile) => ({
    id: f.id,
    object: 'file',
    bytes: Buffer.byteLength(f.content),
    created_at: f.createdAt,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
  });
  const batchObject = (b: StoredBatch) => ({
    id: b.id,
    object: 'batch',
    endpoint: '/v1/embeddings',
    errors: null,
    input_file_id: b.inputFileId,
    completion_window: '24h',
    status: b.status,
    output_file_id: b.outputFileId,
    error_file_id: b.errorFileId,
    created_at: b.createdAt,
    request_counts: b.counts,
    metadata: b.metadata,
  });
  const store = (filename: string, purpose: string, content: string) => {
    const f = { id: `file-${++seq}`, filename, purpose, content, createdAt: now() };
    files.set(f.id, f);
    return f;
  };

  function finish(b: StoredBatch): void {
    const lines = files
      .get(b.inputFileId)!
      .content.split('\n')
      .filter((l) => l.trim() !== '');
    const answered = b.expire ? lines.slice(0, Math.floor(lines.length / 2)) : lines;
    const output: string[] = [];
    const errors: string[] = [];
    for (const [k, raw] of answered.entries()) {
      const line = JSON.parse(raw) as { custom_id: string; body: Record<string, unknown> };
      const input = String(line.body.input);
      const failed = o.failMarker !== undefined && input.includes(o.failMarker);
      const r = failed
        ? { status: 500, body: { error: { message: 'The server had an error', type: 'server_error' } } }
        : embed(input, line.body);
      if (r.status === 200 && o.garbleMarker !== undefined && input.includes(o.garbleMarker)) {
        for (const d of (r.body as { data: { embedding: unknown }[] }).data) d.embedding = Buffer.from([1, 2, 3]).toString('base64');
      }
      const result = JSON.stringify({
        id: `batch_req_${b.id}_${k}`,
        custom_id: line.custom_id,
        response: { status_code: r.status, request_id: `req_${k}`, body: r.body },
        error: null,
      });
      (r.status === 200 ? output : errors).push(result);
    }
    stats.batchLines += answered.length;
    b.counts = { total: lines.length, completed: output.length, failed: errors.length };
    b.outputFileId = output.length > 0 ? store(`${b.id}_output.jsonl`, 'batch_output', `${output.join('\n')}\n`).id : null;
    b.errorFileId = errors.length > 0 ? store(`${b.id}_error.jsonl`, 'batch_output', `${errors.join('\n')}\n`).id : null;
    b.status = b.expire ? 'expired' : 'completed';
  }

  function handle(req: http.IncomingMessage, res: Reply, text: string): boolean {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/v1/, '');
    if (req.method === 'POST' && path === '/files') {
      const upload = multipart(req.headers['content-type'] ?? '', text);
      if (upload?.purpose !== 'batch') {
        send(res, 400, { error: { message: "'purpose' must be 'batch'", type: 'invalid_request_error' } });
        return true;
      }
      stats.filesUploaded++;
      send(res, 200, fileObject(store(upload.filename, upload.purpose, upload.content)));
      return true;
    }
    const content = /^\/files\/([^/]+)\/content$/.exec(path);
    if (req.method === 'GET' && content) {
      const f = files.get(content[1]!);
      if (!f) send(res, 404, { error: { message: `No such File object: ${content[1]}`, type: 'invalid_request_error' } });
      else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(f.content);
      }
      return true;
    }
    if (req.method === 'POST' && path === '/batches') {
      const body = JSON.parse(text) as { input_file_id?: string; endpoint?: string; metadata?: Record<string, string> };
      if (!body.input_file_id || !files.has(body.input_file_id) || body.endpoint !== '/v1/embeddings') {
        send(res, 400, { error: { message: 'invalid input_file_id or endpoint', type: 'invalid_request_error' } });
        return true;
      }
      stats.batchesCreated++;
      const expire = (o.expire ?? 0) > 0;
      if (expire) o.expire = o.expire! - 1;
      const b: StoredBatch = {
        id: `batch_${++seq}`,
        inputFileId: body.input_file_id,
        status: 'validating',
        createdAt: now(),
        createdMs: Date.now(),
        polls: 0,
        expire,
        metadata: body.metadata ?? null,
        outputFileId: null,
        errorFileId: null,
        counts: { total: 0, completed: 0, failed: 0 },
      };
      batches.set(b.id, b);
      send(res, 200, batchObject(b));
      return true;
    }
    if (req.method === 'GET' && path === '/batches') {
      const data = [...batches.values()].reverse().map(batchObject);
      send(res, 200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
      return true;
    }
    const one = /^\/batches\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && one) {
      const b = batches.get(one[1]!);
      if (!b) {
        send(res, 404, { error: { message: `No batch found with id '${one[1]}'`, type: 'invalid_request_error' } });
        return true;
      }
      stats.batchRetrieves++;
      b.polls++;
      if (b.status === 'validating' || b.status === 'in_progress') {
        const due = b.polls >= (o.completeAfterPolls ?? 1) && Date.now() - b.createdMs >= (o.completeAfterMs ?? 0);
        if (due) finish(b);
        else b.status = 'in_progress';
      }
      send(res, 200, batchObject(b));
      return true;
    }
    return false;
  }

  return { stats, handle, batches: () => [...batches.values()] };
}
