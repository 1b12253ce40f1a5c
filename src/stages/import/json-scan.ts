// The byte-level JSON scanner under splitRecords (split.ts): a record's bytes as they stream
// past, its strings and nesting followed byte by byte, and where a value may start, so that a
// record can be cut out without parsing it and kept whole up to its bounds.

import { createHash, type Hash } from 'node:crypto';

/** Nesting no provider payload comes near; deeper records are refused before any recursive code sees them. */
const MAX_DEPTH = 1000;
/** A record larger than this is refused (a provider object is kilobytes, a Gmail message with inline parts a few MB). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** What a record's bytes are kept of when it is refused whole (too deep, too large, not closed). */
const EXCERPT_BYTES = 64 * 1024;

export type ProblemKind = 'not_json' | 'too_deep' | 'too_large' | 'unclosed';

export type Piece =
  /** `lineMode`: the record is a whole line, and a line holding an array stands for its elements. */
  | { line: number; bytes: Buffer; lineMode?: boolean }
  /** A record that cannot be kept whole: the start of its bytes, how many there were in all, and their SHA-256. */
  | { line: number; problem: string; kind: ProblemKind; excerpt: Buffer; size: number; sha256: string };

export const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
export const OPEN_ARR = 0x5b;
export const CLOSE_ARR = 0x5d;
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
const COLON = 0x3a;
export const NL = 0x0a;
export const isSpace = (b: number) => b === 0x20 || b === NL || b === 0x0d || b === 0x09;

/** The bytes of one record as they stream past, with its nesting: all of them up to MAX_RECORD_BYTES, then a hash and an excerpt. */
export class Record {
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
export function bare(line: number, problem: string, kind: ProblemKind): Piece {
  return { line, problem, kind, excerpt: Buffer.alloc(0), size: 0, sha256: createHash('sha256').digest('hex') };
}

/**
 * Tracks strings and nesting over bytes: returns the index just past the byte that closes the
 * record (depth back to 0), or -1 if the record goes on past `to`.
 */
export function scan(rec: Record, chunk: Buffer, from: number, to: number): number {
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
export function scanValue(rec: Record, chunk: Buffer, from: number, to: number): Scanned {
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
