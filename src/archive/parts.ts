// Parts are gzip NDJSON: one line per raw event, exactly the text PostgreSQL gives for
// to_jsonb(row) (every column, by name). Writing streams the lines through gzip into the target
// while hashing the compressed bytes; reading streams them back, hashing again, and yields the
// lines. Memory holds one page of rows at a time, whatever the size of the part.
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { createGunzip, createGzip, gzipSync } from 'node:zlib';
import { errorMessage } from '../errors.js';
import type { ArchiveTarget } from './store.js';

/** gzip level 1: parts are written at the speed the database reads rows; JSON still shrinks ~5×. */
const GZIP_LEVEL = 1;

interface Tally {
  bytes: number;
  sha256: () => string;
}

/** A pass-through that counts and hashes what flows through it. */
function tally(): { tap: Transform; result: Tally } {
  const hash = createHash('sha256');
  const result = { bytes: 0, sha256: () => hash.digest('hex') };
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      result.bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { tap, result };
}

/** Writes `lines` (each ending in '\n') gzipped to `key`; returns the compressed size and SHA-256. */
export async function writePart(
  target: ArchiveTarget,
  key: string,
  lines: AsyncIterable<Buffer>,
): Promise<{ bytes: number; sha256: string }> {
  const { tap, result } = tally();
  let sourceError: unknown;
  const body = pipeline(Readable.from(lines), createGzip({ level: GZIP_LEVEL }), tap, (err) => {
    sourceError = err ?? undefined;
  });
  try {
    await target.write(key, body);
  } catch (err) {
    // A failed read of the rows surfaces as a failed write: report the read.
    throw sourceError ?? err;
  }
  if (sourceError) throw sourceError;
  return { bytes: result.bytes, sha256: result.sha256() };
}

export interface PartReading<L> {
  /** Batches of lines, in order (no trailing newline). */
  lines: AsyncGenerator<L[]>;
  /** After the lines are consumed: compressed bytes read and their SHA-256. */
  tally(): { bytes: number; sha256: string };
}

/** gunzip's output chunks: large enough that splitting lines is not a cost per small chunk. */
const READ_CHUNK = 256 * 1024;

/**
 * Streams a part back: its lines (as bytes, views of the decompressed chunks) in batches of
 * `batch`, the compressed bytes counted and hashed.
 */
export async function readPartBytes(target: ArchiveTarget, key: string, batch: number): Promise<PartReading<Buffer>> {
  const source = await target.read(key);
  const { tap, result } = tally();
  const text = pipeline(source, tap, createGunzip({ chunkSize: READ_CHUNK }), () => {});
  async function* lines(): AsyncGenerator<Buffer[]> {
    let rest: Buffer | undefined;
    let out: Buffer[] = [];
    for await (const chunk of text as AsyncIterable<Buffer>) {
      const data = rest ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        out.push(data.subarray(start, nl));
        start = nl + 1;
        if (out.length >= batch) {
          yield out;
          out = [];
        }
      }
      rest = start < data.length ? data.subarray(start) : undefined;
    }
    if (rest) out.push(rest);
    if (out.length > 0) yield out;
  }
  let digest: string | undefined;
  return {
    lines: lines(),
    tally: () => {
      digest ??= result.sha256();
      return { bytes: result.bytes, sha256: digest };
    },
  };
}

/** How to_jsonb text begins: "id" is the shortest key, so it comes first, then the uuid. */
const ID_PREFIX = Buffer.from('{"id": "', 'latin1');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The id of an archived row's line, or why the line is not one. */
export function lineId(line: Buffer): string | Error {
  // The common case without parsing the line: to_jsonb puts the id first (its text is all the
  // SHA-256 of the part vouches for; parsing it would only re-check what PostgreSQL wrote).
  if (line.length > 45 && line.compare(ID_PREFIX, 0, ID_PREFIX.length, 0, ID_PREFIX.length) === 0 && line[44] === 0x22) {
    const id = line.toString('latin1', 8, 44);
    if (UUID.test(id)) return id;
  }
  try {
    const row = JSON.parse(line.toString('utf8')) as { id?: unknown };
    return typeof row.id === 'string' ? row.id : new Error('a line without an id');
  } catch (err) {
    return new Error(`a line that is not JSON (${errorMessage(err)})`);
  }
}

/** The MD5 of a line as PostgreSQL's md5(text) gives it: how a row claimed without its version is recognised unchanged. */
export const lineMd5 = (line: Buffer): string => createHash('md5').update(line).digest('hex');

/** The gzip size of `data` as parts are written (--dry-run estimates the archive's size from a sample). */
export const gzipSize = (data: Buffer): number => gzipSync(data, { level: GZIP_LEVEL }).length;
