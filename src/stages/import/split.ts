// Cuts the bytes of an import file into records without loading it (SPEC §5), working on bytes so
// that a record's exact bytes are kept (an id with invalid UTF-8 must not silently collide with
// another after decoding). Two layouts:
// - line mode, when the first value of the file ends on its first line with nothing after it:
//   every line stands alone (NDJSON; a line holding an array gives its elements), so a broken
//   line costs that line only. The first line is followed as it streams, however long it is;
// - value mode otherwise: top-level JSON values one after another, whatever their layout (one
//   pretty-printed object, an array, concatenated values, an array followed by objects), the
//   elements of a top-level array each a record. A value left open where a new one plainly
//   starts — a { or [ at the start of a line, at the column the open value started at, where
//   JSON could not have one (after a value and no comma, or with a string left open at the end
//   of a line) — is a problem of its own, and reading goes on with the new value.
// A record nested deeper than MAX_DEPTH or larger than MAX_RECORD_BYTES is not kept whole: it
// comes out as a problem of its own, with its start, its size and the SHA-256 of all its bytes,
// and the records after it still come out.

import { createHash, type Hash } from 'node:crypto';

/** Nesting no provider payload comes near; deeper records are refused before any recursive code sees them. */
const MAX_DEPTH = 1000;
/** A record larger than this is refused (a provider object is kilobytes, a Gmail message with inline parts a few MB). */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** What a record's bytes are kept of when it is refused whole (too deep, too large, not closed). */
const EXCERPT_BYTES = 64 * 1024;

export type ProblemKind = 'not_json' | 'too_deep' | 'too_large' | 'unclosed';

export type Piece =
  /** `lineMode`: the record is a whole line, and a line holding an array stands for its elements. */
  | { line: number; bytes: Buffer; lineMode?: boolean }
  /** A record that cannot be kept whole: the start of its bytes, how many there were in all, and their SHA-256. */
  | { line: number; problem: string; kind: ProblemKind; excerpt: Buffer; size: number; sha256: string };

const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const NL = 0x0a;
const isSpace = (b: number) => b === 0x20 || b === NL || b === 0x0d || b === 0x09;

/** The bytes of one record as they stream past, with its nesting: all of them up to MAX_RECORD_BYTES, then a hash and an excerpt. */
class Record {
  parts: Buffer[] = [];
  size = 0;
  /** Started once the record is over MAX_RECORD_BYTES: from then on `parts` holds the excerpt only. */
  hash: Hash | undefined;
  depth = 0;
  maxDepth = 0;
  inString = false;
  escaped = false;
  // Value mode's view of the JSON, to see where a new value starts inside one left open:
  /** The containers open, innermost last: true for an array (up to MAX_DEPTH; deeper ones are refused anyway). */
  arrays: boolean[] = [];
  /** The last byte outside strings that is not blank (a string's closing quote counts). */
  last = 0;
  /** A line break met inside a string: the record is not JSON, whatever follows. */
  broken = false;
  /** The column of the line being read, while only blanks have been met on it; -1 after. */
  col = -1;
  constructor(
    readonly line: number,
    /** A scalar element of a top-level array ends at `,` or `]` rather than at its own bracket. */
    readonly scalar: boolean,
    /** The column its first byte is at (value mode). */
    readonly startCol = 0,
  ) {}
  add(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const bytes = chunk.subarray(from, to);
    this.size += bytes.length;
    if (this.hash) {
      this.hash.update(bytes);
      this.keepExcerpt(bytes);
      return;
    }
    this.parts.push(bytes);
    if (this.size > MAX_RECORD_BYTES) {
      // Too large to be kept: hash what there is and keep its start only.
      this.hash = createHash('sha256');
      for (const part of this.parts) this.hash.update(part);
      const all = this.parts;
      this.parts = [];
      for (const part of all) this.keepExcerpt(part);
    }
  }
  private keepExcerpt(bytes: Buffer): void {
    const kept = this.parts.reduce((n, p) => n + p.length, 0);
    if (kept < EXCERPT_BYTES) this.parts.push(bytes.subarray(0, EXCERPT_BYTES - kept));
  }
  /** The record as a problem: the start of its bytes, their number and hash. */
  problem(problem: string, kind: ProblemKind): Piece {
    const bytes = Buffer.concat(this.parts);
    const sha256 = (this.hash ?? createHash('sha256').update(bytes)).digest('hex');
    return { line: this.line, problem, kind, excerpt: bytes.subarray(0, EXCERPT_BYTES), size: this.size, sha256 };
  }
  finish(): Piece {
    if (this.maxDepth > MAX_DEPTH)
      return this.problem(`the record is nested ${this.maxDepth} levels deep (at most ${MAX_DEPTH})`, 'too_deep');
    if (this.size > MAX_RECORD_BYTES) return this.problem(`the record is ${this.size} bytes (at most ${MAX_RECORD_BYTES})`, 'too_large');
    return { line: this.line, bytes: Buffer.concat(this.parts) };
  }
  unclosed(): Piece {
    return this.problem('the JSON is not closed at the end of the file (truncated?)', 'unclosed');
  }
}

/** A problem with no bytes of its own (an array left open at the end of the file). */
function bare(line: number, problem: string, kind: ProblemKind): Piece {
  return { line, problem, kind, excerpt: Buffer.alloc(0), size: 0, sha256: createHash('sha256').digest('hex') };
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

/** What `scanValue` found: the record closed just before `end`, or a new value starts at `next`. */
type Scanned = { end: number } | { next: number } | undefined;

/**
 * `scan` for value mode, which also sees a new value start inside one left open: a { or [ first
 * on a line, at the record's own column, where the JSON so far allows no value.
 */
function scanValue(rec: Record, chunk: Buffer, from: number, to: number): Scanned {
  for (let i = from; i < to; i++) {
    const b = chunk[i]!;
    if (b === NL) {
      rec.col = 0;
      if (rec.inString) rec.broken = true;
      continue;
    }
    if (rec.col !== -1) {
      if (b === 0x20 || b === 0x09 || b === 0x0d) {
        rec.col++;
        continue;
      }
      const col = rec.col;
      rec.col = -1;
      if ((b === OPEN_OBJ || b === OPEN_ARR) && col === rec.startCol && (rec.broken || rec.inString || !valueMayFollow(rec))) {
        return { next: i };
      }
    }
    if (rec.inString) {
      if (rec.escaped) rec.escaped = false;
      else if (b === BACKSLASH) rec.escaped = true;
      else if (b === QUOTE) {
        rec.inString = false;
        rec.last = QUOTE;
      }
      continue;
    }
    if (b === 0x20 || b === 0x09 || b === 0x0d) continue;
    rec.last = b;
    if (b === QUOTE) rec.inString = true;
    else if (b === OPEN_OBJ || b === OPEN_ARR) {
      rec.depth++;
      if (rec.depth > rec.maxDepth) rec.maxDepth = rec.depth;
      if (rec.depth <= MAX_DEPTH) rec.arrays.push(b === OPEN_ARR);
    } else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
      if (rec.depth <= MAX_DEPTH) rec.arrays.pop();
      rec.depth--;
      if (rec.depth <= 0) return { end: i + 1 };
    }
  }
  return undefined;
}

/** Whether JSON allows a value where the record stands: after `[` or `,` in an array, after `:` in an object. */
function valueMayFollow(rec: Record): boolean {
  if (rec.depth > MAX_DEPTH) return true; // not followed that deep: never split there
  const inArray = rec.arrays[rec.arrays.length - 1];
  return inArray ? rec.last === OPEN_ARR || rec.last === COMMA : rec.last === COLON;
}

/** Why the text ended before the end of the file (a gzip file cut short), asked once it has ended. */
type Damage = () => string | undefined;

const cutShort = (why: string, within: boolean) =>
  `the file's data stops here, cut short or damaged (${why}): nothing after this point can be read${within ? ', and this record is incomplete' : ''}`;

/** Line mode: each line a record (or, if it is an array, a record per element, split later). */
async function* lines(chunks: AsyncIterable<Buffer>, first: Buffer[], damage: Damage): AsyncGenerator<Piece> {
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
  const cut = damage();
  if (cut !== undefined) yield rec.problem(cutShort(cut, rec.size > 0), 'unclosed');
  else if (rec.size > 0) yield wholeLine(rec.finish());
}

const wholeLine = (piece: Piece): Piece => ('bytes' in piece ? { ...piece, lineMode: true } : piece);

/** Value mode: top-level values in sequence, top-level arrays opened into their elements. */
async function* values(chunks: AsyncIterable<Buffer>, first: Buffer[], damage: Damage): AsyncGenerator<Piece> {
  let line = 1;
  let col = 0; // of the byte about to be read
  let inArray = false; // directly inside a top-level array, between elements
  let rec: Record | undefined;
  let garbage: Record | undefined;
  /** Moves `line` and `col` over bytes read. */
  const pass = (chunk: Buffer, from: number, to: number) => {
    for (let k = from; k < to; k++) {
      if (chunk[k] === NL) {
        line++;
        col = 0;
      } else col++;
    }
  };
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
          const stop = end === -1 ? chunk.length : end;
          pass(chunk, start, stop);
          rec.add(chunk, start, stop);
          if (end !== -1) {
            yield rec.finish();
            rec = undefined;
          }
          continue;
        }
        const found = scanValue(rec, chunk, i, chunk.length);
        const stop = found === undefined ? chunk.length : 'end' in found ? found.end : found.next;
        rec.add(chunk, i, stop);
        pass(chunk, i, stop);
        i = stop;
        if (found && 'end' in found) {
          yield rec.finish();
          rec = undefined;
        } else if (found) {
          yield rec.problem(`the JSON value is not closed where a new one starts on line ${line} (a missing } or ]?)`, 'unclosed');
          rec = new Record(line, false, col);
        }
        continue;
      }
      const b = chunk[i]!;
      if (garbage) {
        // Text that is no JSON value, up to the end of its line.
        const nl = chunk.indexOf(NL, i);
        const stop = nl === -1 ? chunk.length : nl;
        garbage.add(chunk, i, stop);
        pass(chunk, i, stop);
        i = stop;
        if (nl !== -1) {
          yield garbage.problem('not JSON: text outside any value', 'not_json');
          garbage = undefined;
        }
        continue;
      }
      if (isSpace(b) || b === COMMA) {
        pass(chunk, i, i + 1);
        i++;
        continue;
      }
      if (!inArray && b === OPEN_ARR) inArray = true;
      else if (inArray && b === CLOSE_ARR) inArray = false;
      else if (b === OPEN_OBJ || (inArray && b === OPEN_ARR)) {
        rec = new Record(line, false, col);
        continue; // the bracket is scanned as the record's first byte
      } else if (inArray) {
        rec = new Record(line, true);
        continue;
      } else {
        garbage = new Record(line, true);
        continue;
      }
      pass(chunk, i, i + 1);
      i++;
    }
  }
  if (garbage) yield garbage.problem('not JSON: text outside any value', 'not_json');
  const cut = damage();
  if (cut !== undefined) yield rec ? rec.problem(cutShort(cut, true), 'unclosed') : bare(line, cutShort(cut, false), 'unclosed');
  else if (rec && !rec.scalar) yield rec.unclosed();
  else {
    if (rec) yield rec.finish();
    if (inArray) yield bare(line, 'the JSON array is not closed at the end of the file (truncated?)', 'unclosed');
  }
}

/**
 * Reads the start of the file until its layout is plain: the first value ends on the first line
 * with only blanks after it (line mode), or a line ends inside it or more follows it (value mode).
 * The bytes read are handed on; a first value over MAX_RECORD_BYTES on one line is taken as an
 * NDJSON line if it is an object (too large either way) and read element by element if an array.
 */
async function sniff(iterator: AsyncIterator<Buffer>): Promise<{ mode: 'lines' | 'values'; head: Buffer[] }> {
  const head: Buffer[] = [];
  let size = 0;
  let rec: Record | undefined; // the first value, while it is read
  let opener = 0;
  let closed = false; // the first value has ended; blanks until the end of the line say line mode
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { mode: 'values', head }; // one line in all: value mode reads it the same
    let chunk = next.value;
    if (head.length === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3); // a UTF-8 byte order mark
    head.push(chunk);
    size += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      const b = chunk[i]!;
      if (closed) {
        if (b === NL) return { mode: 'lines', head };
        if (!isSpace(b)) return { mode: 'values', head };
        i++;
        continue;
      }
      if (!rec) {
        if (isSpace(b)) {
          i++;
          continue;
        }
        if (b !== OPEN_OBJ && b !== OPEN_ARR) return { mode: 'values', head };
        opener = b;
        rec = new Record(1, false);
      }
      const nl = chunk.indexOf(NL, i);
      const to = nl === -1 ? chunk.length : nl;
      const end = scan(rec, chunk, i, to);
      if (end !== -1) {
        closed = true;
        i = end;
      } else if (nl !== -1) return { mode: 'values', head };
      else i = to;
    }
    if (size > MAX_RECORD_BYTES) return { mode: closed || opener !== OPEN_ARR ? 'lines' : 'values', head };
  }
}

/**
 * The records of a file's text (its byte chunks), each with the line it starts on. `damage`
 * says, once the chunks have ended, whether they ended before the file did: the record cut there
 * (or the point, between records) is then a problem of its own.
 */
export async function* splitRecords(chunks: AsyncIterable<Buffer>, damage: Damage = () => undefined): AsyncGenerator<Piece> {
  const iterator = chunks[Symbol.asyncIterator]();
  const { mode, head } = await sniff(iterator);
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator };
  yield* mode === 'lines' ? lines(rest, head, damage) : values(rest, head, damage);
}
