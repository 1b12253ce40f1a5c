// Cuts the bytes of an import file into records without loading it (SPEC §5), working on bytes so
// that a record's exact bytes are kept (an id with invalid UTF-8 must not silently collide with
// another after decoding). Two layouts:
// - line mode, when the first line is a whole JSON value: every line stands alone (NDJSON; a
//   line holding an array gives its elements), so a broken line costs that line only;
// - value mode otherwise: top-level JSON values one after another, whatever their layout (one
//   pretty-printed object, an array, concatenated values, an array followed by objects), the
//   elements of a top-level array each a record.
// A record nested deeper than MAX_DEPTH or larger than MAX_RECORD_BYTES is not kept whole: it
// comes out as a problem of its own, with its start, and the records after it still come out.

/** Nesting no provider payload comes near; deeper records are refused before any recursive code sees them. */
const MAX_DEPTH = 1000;
/** A record larger than this is refused (a provider object is kilobytes, a Gmail message with inline parts a few MB). */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** What a record's bytes are kept of when it is refused whole (too deep, too large, not closed). */
const EXCERPT_BYTES = 64 * 1024;

export type Piece =
  /** `lineMode`: the record is a whole line, and a line holding an array stands for its elements. */
  | { line: number; bytes: Buffer; lineMode?: boolean }
  /** A record that cannot be kept whole, with the start of its bytes. */
  | { line: number; problem: string; excerpt: Buffer };

const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const NL = 0x0a;
const isSpace = (b: number) => b === 0x20 || b === NL || b === 0x0d || b === 0x09;

/** The bytes of one record as they stream past, capped, with its nesting. */
class Record {
  parts: Buffer[] = [];
  size = 0;
  depth = 0;
  maxDepth = 0;
  inString = false;
  escaped = false;
  constructor(
    readonly line: number,
    /** A scalar element of a top-level array ends at `,` or `]` rather than at its own bracket. */
    readonly scalar: boolean,
  ) {}
  add(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.size < MAX_RECORD_BYTES) this.parts.push(chunk.subarray(from, Math.min(to, from + MAX_RECORD_BYTES - this.size + 1)));
    this.size += to - from;
  }
  finish(): Piece {
    const bytes = Buffer.concat(this.parts);
    if (this.maxDepth > MAX_DEPTH)
      return {
        line: this.line,
        problem: `the record is nested ${this.maxDepth} levels deep (at most ${MAX_DEPTH})`,
        excerpt: bytes.subarray(0, EXCERPT_BYTES),
      };
    if (this.size > MAX_RECORD_BYTES) {
      return {
        line: this.line,
        problem: `the record is ${this.size} bytes (at most ${MAX_RECORD_BYTES})`,
        excerpt: bytes.subarray(0, EXCERPT_BYTES),
      };
    }
    return { line: this.line, bytes };
  }
  unclosed(): Piece {
    return {
      line: this.line,
      problem: 'the JSON is not closed at the end of the file (truncated?)',
      excerpt: Buffer.concat(this.parts).subarray(0, EXCERPT_BYTES),
    };
  }
}

/**
 * Tracks strings and nesting over bytes: returns the index just past the byte that closes the
 * record (depth back to 0), or -1 if the record goes on past `to`.
 */
function scan(rec: Record, chunk: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const b = chunk[i]!;
    if (rec.inString) {
      if (rec.escaped) rec.escaped = false;
      else if (b === BACKSLASH) rec.escaped = true;
      else if (b === QUOTE) rec.inString = false;
      continue;
    }
    if (b === QUOTE) rec.inString = true;
    else if (b === OPEN_OBJ || b === OPEN_ARR) {
      rec.depth++;
      if (rec.depth > rec.maxDepth) rec.maxDepth = rec.depth;
    } else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
      rec.depth--;
      if (rec.depth <= 0 && !rec.scalar) return i + 1;
    }
  }
  return -1;
}

/** Line mode: each line a record (or, if it is an array, a record per element, split later). */
async function* lines(chunks: AsyncIterable<Buffer>, first: Buffer[]): AsyncGenerator<Piece> {
  let line = 1;
  // `scalar`: scanned to the end of the line whatever it holds (only its depth is wanted here).
  let rec = new Record(1, true);
  const all = (async function* () {
    yield* first;
    yield* chunks;
  })();
  for await (const chunk of all) {
    let start = 0;
    for (let nl = chunk.indexOf(NL, start); nl !== -1; nl = chunk.indexOf(NL, start)) {
      rec.add(chunk, start, nl);
      scan(rec, chunk, start, nl);
      if (rec.size > 0) yield wholeLine(rec.finish());
      line++;
      rec = new Record(line, true);
      start = nl + 1;
    }
    rec.add(chunk, start, chunk.length);
    scan(rec, chunk, start, chunk.length);
  }
  if (rec.size > 0) yield wholeLine(rec.finish());
}

const wholeLine = (piece: Piece): Piece => ('bytes' in piece ? { ...piece, lineMode: true } : piece);

/** Value mode: top-level values in sequence, top-level arrays opened into their elements. */
async function* values(chunks: AsyncIterable<Buffer>, first: Buffer[]): AsyncGenerator<Piece> {
  let line = 1;
  let inArray = false; // directly inside a top-level array, between elements
  let rec: Record | undefined;
  let garbage: { line: number; bytes: Buffer[] } | undefined;
  const all = (async function* () {
    yield* first;
    yield* chunks;
  })();
  for await (const chunk of all) {
    let i = 0;
    while (i < chunk.length) {
      if (rec) {
        if (rec.scalar) {
          // A scalar element: up to the next , or ] outside a string.
          const start = i;
          let end = -1;
          for (; i < chunk.length; i++) {
            const b = chunk[i]!;
            if (b === NL) line++;
            if (rec.inString) {
              if (rec.escaped) rec.escaped = false;
              else if (b === BACKSLASH) rec.escaped = true;
              else if (b === QUOTE) rec.inString = false;
            } else if (b === QUOTE) rec.inString = true;
            else if (b === COMMA || b === CLOSE_ARR) {
              end = i;
              break;
            }
          }
          rec.add(chunk, start, end === -1 ? chunk.length : end);
          if (end !== -1) {
            yield rec.finish();
            rec = undefined;
          }
          continue;
        }
        const end = scan(rec, chunk, i, chunk.length);
        const stop = end === -1 ? chunk.length : end;
        for (let k = i; k < stop; k++) if (chunk[k] === NL) line++;
        rec.add(chunk, i, stop);
        i = stop;
        if (end !== -1) {
          yield rec.finish();
          rec = undefined;
        }
        continue;
      }
      const b = chunk[i]!;
      if (garbage) {
        // Text that is no JSON value, up to the end of its line.
        if (b === NL) {
          yield { line: garbage.line, problem: 'not JSON: text outside any value', excerpt: Buffer.concat(garbage.bytes).subarray(0, 200) };
          garbage = undefined;
          line++;
        } else garbage.bytes.push(chunk.subarray(i, i + 1));
        i++;
        continue;
      }
      if (b === NL) line++;
      if (isSpace(b) || b === COMMA) {
        i++;
        continue;
      }
      if (!inArray && b === OPEN_ARR) inArray = true;
      else if (inArray && b === CLOSE_ARR) inArray = false;
      else if (b === OPEN_OBJ || (inArray && b === OPEN_ARR)) {
        rec = new Record(line, false);
        continue; // the bracket is scanned as the record's first byte
      } else if (inArray) {
        rec = new Record(line, true);
        continue;
      } else garbage = { line, bytes: [chunk.subarray(i, i + 1)] };
      i++;
    }
  }
  if (garbage)
    yield { line: garbage.line, problem: 'not JSON: text outside any value', excerpt: Buffer.concat(garbage.bytes).subarray(0, 200) };
  if (rec && !rec.scalar) yield rec.unclosed();
  else {
    if (rec) yield rec.finish();
    if (inArray) yield { line, problem: 'the JSON array is not closed at the end of the file (truncated?)', excerpt: Buffer.alloc(0) };
  }
}

/** Whether the first non-blank line is a whole JSON value (then every line stands alone). */
function firstLineIsWhole(head: Buffer): boolean {
  let start = 0;
  for (;;) {
    const nl = head.indexOf(NL, start);
    const text = head
      .subarray(start, nl === -1 ? head.length : nl)
      .toString('utf8')
      .trim();
    if (text !== '') {
      if (nl === -1) return false; // one line in all: value mode reads it the same
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false;
      }
    }
    if (nl === -1) return false;
    start = nl + 1;
  }
}

/** The records of a file's text (its byte chunks), each with the line it starts on. */
export async function* splitRecords(chunks: AsyncIterable<Buffer>): AsyncGenerator<Piece> {
  // Look at enough of the start to see its first non-blank line whole (or its first megabyte).
  const iterator = chunks[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  for (;;) {
    const content = head.findIndex((b) => !isSpace(b));
    if (head.length >= 1 << 20 || (content !== -1 && head.indexOf(NL, content) !== -1)) break;
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) head = head.subarray(3); // a UTF-8 byte order mark
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator };
  yield* firstLineIsWhole(head) ? lines(rest, [head]) : values(rest, [head]);
}
