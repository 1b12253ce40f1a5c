// Opening an import file (SPEC §5): gzip is recognised by its magic bytes, not its name; a file
// that is not JSON text (binary, CSV, an HTML error page) is refused whole with one message
// before anything is read into the database. What comes out is the file's text as a stream of
// byte chunks, and a count of the bytes read from disk (for progress). A gzip file cut short or
// damaged ends where its data stops decoding: what decoded before is read like any file, and
// `damage()` then says why it ended.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { UsageError } from '../../errors.js';

export interface ImportSource {
  chunks: AsyncIterable<Buffer>;
  gzip: boolean;
  /** Bytes of the file on disk. */
  size: number;
  /** Bytes read from disk so far (compressed bytes for a gzip file). */
  readBytes(): number;
  /** Once the chunks have ended: why the gzip data stopped decoding before the end of the file, if it did. */
  damage(): string | undefined;
}

/** zlib's errors about the data itself (Z_BUF_ERROR: cut short; Z_DATA_ERROR: corrupt), not about reading the file. */
function isZlibDataError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('Z_');
}

const SNIFF_BYTES = 64 * 1024;

/** A file refused whole before any of it is read (binary, not JSON): the files after it are still read. */
export class FileRefused extends UsageError {}

const FORMAT_HINT = 'import takes NDJSON, a JSON array, concatenated JSON values or one JSON object, optionally gzip-compressed';

async function head(file: string, bytes: number): Promise<Buffer> {
  const fd = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fd.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fd.close();
  }
}

/** The start of the decompressed text, for the format check (a gzip member may be truncated: what decoded is enough). */
async function gunzipHead(file: string): Promise<Buffer> {
  const out: Buffer[] = [];
  let n = 0;
  const gunzip = zlib.createGunzip();
  const input = fs.createReadStream(file, { end: 4 * SNIFF_BYTES });
  try {
    for await (const chunk of input.pipe(gunzip) as AsyncIterable<Buffer>) {
      out.push(chunk);
      n += chunk.length;
      if (n >= SNIFF_BYTES) break;
    }
  } catch {
    // A stream cut short by `end` or a corrupt tail: judge the format on what decoded.
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  return Buffer.concat(out).subarray(0, SNIFF_BYTES);
}

const shown = (b: number) => (b >= 0x20 && b < 0x7f ? `"${String.fromCharCode(b)}"` : `byte 0x${b.toString(16).padStart(2, '0')}`);

/** Refuses text that cannot be JSON records: binary data, or a first character other than { or [. */
function checkFormat(file: string, start: Buffer, gzip: boolean): void {
  const what = gzip ? `${file} (gzip)` : file;
  const nul = start.indexOf(0);
  if (nul !== -1) {
    throw new FileRefused(
      `${what} is not a JSON or NDJSON file: it holds binary data (a NUL byte at offset ${nul}); nothing was imported`,
      {
        hint: FORMAT_HINT,
      },
    );
  }
  let i = start[0] === 0xef && start[1] === 0xbb && start[2] === 0xbf ? 3 : 0; // a UTF-8 BOM
  while (i < start.length && (start[i] === 0x20 || start[i] === 0x0a || start[i] === 0x0d || start[i] === 0x09)) i++;
  if (i < start.length && start[i] !== 0x7b && start[i] !== 0x5b) {
    throw new FileRefused(`${what} is not JSON: it starts with ${shown(start[i]!)} where a { or [ should be; nothing was imported`, {
      hint: FORMAT_HINT,
    });
  }
}

export async function openSource(file: string): Promise<ImportSource> {
  const size = (await fs.promises.stat(file)).size;
  const magic = await head(file, 2);
  const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
  checkFormat(file, gzip ? await gunzipHead(file) : await head(file, SNIFF_BYTES), gzip);
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let read = 0;
  raw.on('data', (chunk) => {
    read += chunk.length;
  });
  let chunks: AsyncIterable<Buffer> = raw;
  let damage: string | undefined;
  if (gzip) {
    const gunzip = zlib.createGunzip();
    raw.on('error', (err) => gunzip.destroy(err));
    const decoded: AsyncIterable<Buffer> = raw.pipe(gunzip);
    chunks = (async function* () {
      try {
        yield* decoded;
      } catch (err) {
        if (!isZlibDataError(err)) throw err;
        damage = err.message;
      } finally {
        // Also when reading stops early (the file read again, a signal): pipe() does not close
        // its source when its destination is torn down, and the file would stay open.
        raw.destroy();
      }
    })();
  }
  return { chunks, gzip, size, readBytes: () => read, damage: () => damage };
}
