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

import {
  BACKSLASH,
  CLOSE_ARR,
  COMMA,
  MAX_RECORD_BYTES,
  NL,
  OPEN_ARR,
  OPEN_OBJ,
  QUOTE,
  Record,
  bare,
  isSpace,
  scan,
  scanValue,
  type Piece,
} from './json-scan.js';

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
          // The new value is read as any value is: a top-level array opened into its elements.
          rec = undefined;
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
