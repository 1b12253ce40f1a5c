// The records of an import file (SPEC §5), decoded: each with the line it starts on, its value,
// the text kept for an operator (capped) and the SHA-256 of its bytes — or, for a record that
// cannot be read, why. One bad record never stops the ones after it.
import { createHash } from 'node:crypto';
import type { Piece, ProblemKind } from './json-scan.js';
import { splitRecords } from './split.js';

/** The text of a record kept with its dead letter (for `errors show` and `errors export`). */
const KEPT_RECORD_BYTES = 64 * 1024;

export interface KeptRecord {
  /** The record's text, at most KEPT_RECORD_BYTES of it. */
  text: string;
  /** Its full size in bytes. */
  bytes: number;
  /** SHA-256 (hex) of its bytes as they are in the file. */
  sha256: string;
  truncated: boolean;
}

type RecordKind = ProblemKind;

export type RecordResult =
  | {
      line: number;
      value: unknown;
      /**
       * The record as its dead letter keeps it, made on demand: most records never become one,
       * and hashing and copying each record's text cost an import as much CPU as writing it.
       */
      kept: () => KeptRecord;
      /** The bytes were not valid UTF-8 (decoded with U+FFFD in their place). */
      invalidUtf8: boolean;
    }
  | { line: number; error: string; kind: RecordKind; record: KeptRecord };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function keep(bytes: Buffer): KeptRecord {
  const kept = bytes.subarray(0, KEPT_RECORD_BYTES);
  return {
    text: kept.toString('utf8'),
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    truncated: bytes.length > kept.length,
  };
}

/** `keep(bytes)` the first time it is asked for, the same object after. */
function keeper(bytes: Buffer | (() => Buffer)): () => KeptRecord {
  let kept: KeptRecord | undefined;
  return () => (kept ??= keep(typeof bytes === 'function' ? bytes() : bytes));
}

function decode(bytes: Buffer): { text: string; invalidUtf8: boolean } {
  try {
    return { text: strictUtf8.decode(bytes), invalidUtf8: false };
  } catch {
    return { text: bytes.toString('utf8'), invalidUtf8: true };
  }
}

function fromPiece(piece: Piece): RecordResult[] {
  if ('problem' in piece) {
    // The excerpt is all that is kept: its size and hash are those of the whole record.
    const kept = piece.excerpt.subarray(0, KEPT_RECORD_BYTES);
    const record = { text: kept.toString('utf8'), bytes: piece.size, sha256: piece.sha256, truncated: piece.size > kept.length };
    return [{ line: piece.line, error: piece.problem, kind: piece.kind, record }];
  }
  const { text, invalidUtf8 } = decode(piece.bytes);
  if (text.trim() === '') return []; // a blank line (spaces, a CR)
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const excerpt = text.trim().length > 80 ? `${text.trim().slice(0, 80)}…` : text.trim();
    return [
      {
        line: piece.line,
        error: `not JSON (${err instanceof Error ? err.message : String(err)}): ${excerpt}`,
        kind: 'not_json',
        record: keep(piece.bytes),
      },
    ];
  }
  // A line holding an array (NDJSON written as arrays, or `[a]` then `[b, c]`): its elements.
  if (Array.isArray(value) && piece.lineMode) {
    return value.map((element: unknown) => ({
      line: piece.line,
      value: element,
      kept: keeper(() => Buffer.from(JSON.stringify(element) ?? 'null')),
      invalidUtf8,
    }));
  }
  return [{ line: piece.line, value, kept: keeper(piece.bytes), invalidUtf8 }];
}

/** The records of a file's text; `damage` as splitRecords takes it (a gzip file cut short). */
export async function* readRecords(chunks: AsyncIterable<Buffer>, damage?: () => string | undefined): AsyncGenerator<RecordResult> {
  for await (const piece of splitRecords(chunks, damage)) yield* fromPiece(piece);
}
