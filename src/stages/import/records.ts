// Streams the records of an import file without loading it: NDJSON (one JSON document per line)
// or a JSON array (each element), with the line each record starts on, so a bad record can be
// reported by file and line and the rest of the file still imported.
import fs from 'node:fs';
import readline from 'node:readline';

export type RecordResult = { line: number; value: unknown } | { line: number; error: string };

async function firstSignificantChar(file: string): Promise<string | undefined> {
  const stream = fs.createReadStream(file, { encoding: 'utf8', start: 0, end: 64 * 1024 });
  try {
    for await (const chunk of stream) {
      const m = /[^\s\uFEFF]/.exec(chunk as string);
      if (m) return m[0];
    }
    return undefined;
  } finally {
    stream.destroy();
  }
}

function parse(text: string, line: number): RecordResult {
  try {
    return { line, value: JSON.parse(text) };
  } catch (err) {
    const excerpt = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    return { line, error: `not JSON (${err instanceof Error ? err.message : String(err)}): ${excerpt}` };
  }
}

async function* ndjson(file: string): AsyncGenerator<RecordResult> {
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of lines) {
    n++;
    const text = n === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (text.trim() === '') continue;
    yield parse(text, n);
  }
}

/**
 * Splits a top-level JSON array into element texts by tracking nesting and strings, one chunk
 * at a time. Elements are parsed one by one, so memory holds one element, not the file.
 */
async function* jsonArray(file: string): AsyncGenerator<RecordResult> {
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let started = false; // seen the opening '['
  let element: string[] = [];
  let elementLine = 0;
  let sawContent = false; // the current element has begun (for its line number)
  let segmentStart = 0;
  const flush = (chunk: string, end: number): RecordResult | undefined => {
    element.push(chunk.slice(segmentStart, end));
    const text = element.join('').trim();
    element = [];
    return text === '' ? undefined : parse(text, elementLine);
  };
  for await (const chunk of fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }) as AsyncIterable<string>) {
    segmentStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];
      if (ch === '\n') line++;
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === '\\') escaped = true;
        else if (ch === '"') inString = false;
        continue;
      }
      if (!started) {
        if (ch === '[') {
          started = true;
          depth = 1;
          segmentStart = i + 1;
        }
        continue;
      }
      if (
        !sawContent &&
        ch !== ' ' &&
        ch !== '\n' &&
        ch !== '\r' &&
        ch !== '\t' &&
        !(ch === ',' && depth === 1) &&
        !(ch === ']' && depth === 1)
      ) {
        sawContent = true;
        elementLine = line;
      }
      if (ch === '"') inString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) {
          const last = flush(chunk, i);
          if (last) yield last;
          return;
        }
      } else if (ch === ',' && depth === 1) {
        const rec = flush(chunk, i);
        if (rec) yield rec;
        segmentStart = i + 1;
        sawContent = false;
      }
    }
    if (started) element.push(chunk.slice(segmentStart));
  }
  if (started) yield { line, error: 'the JSON array is not closed (file truncated?)' };
}

/** The records of one file, each with its line; a record that is not JSON comes as an error. */
export async function* readRecords(file: string): AsyncGenerator<RecordResult> {
  const first = await firstSignificantChar(file);
  if (first === undefined) return;
  yield* first === '[' ? jsonArray(file) : ndjson(file);
}
