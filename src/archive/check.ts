// Reads an archive batch back from its target and checks it: the manifest parses and matches
// what the database recorded (when it did), and every part has the manifest's byte count,
// SHA-256 and row count, each line a JSON row with an id. The ids (and each line's MD5) are
// collected for the delete that may follow: only what was read back here is ever deleted.
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import { ArchiveObjectMissingError, ArchiveTargetError } from './errors.js';
import { type Manifest, MANIFEST_NAME, type PartEntry, parseManifest } from './manifest.js';
import { lineId, lineMd5, readPartBytes } from './parts.js';
import { type ArchiveTarget, joinKey } from './store.js';

export interface PartResult {
  name: string;
  ok: boolean;
  rows: number;
  bytes: number;
  problem: string | null;
}

export interface ArchiveCheck {
  manifestUri: string;
  manifest: Manifest | null;
  ok: boolean;
  problems: string[];
  parts: PartResult[];
  ids: string[];
  /** Each id's line MD5, when asked for (claims without their row's version); else empty. */
  md5s: string[];
  /** There is no manifest at all under the prefix (the target answered: no such object). */
  missing: boolean;
}

/** What the database recorded for the batch: the manifest must say the same. */
export interface Expected {
  rows: number;
  bytes: number;
  parts: PartEntry[];
}

const LINE_BATCH = 2_000;

async function readText(target: ArchiveTarget, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await target.read(key)) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

/** The manifest under `key`, or why it is none (a target that cannot be reached throws). */
export async function readManifest(target: ArchiveTarget, key: string): Promise<Manifest | string> {
  try {
    return parseManifest(await readText(target, key));
  } catch (err) {
    if (err instanceof ArchiveTargetError && !(err instanceof ArchiveObjectMissingError)) throw err;
    return `unreadable: ${errorMessage(err)}`;
  }
}

async function checkPart(
  target: ArchiveTarget,
  key: string,
  part: PartEntry,
  into: ArchiveCheck | null,
  md5: boolean,
): Promise<PartResult> {
  let rows = 0;
  let problem: string | null = null;
  try {
    const reading = await readPartBytes(target, key, LINE_BATCH);
    for await (const lines of reading.lines) {
      for (const line of lines) {
        rows++;
        const id = lineId(line);
        if (id instanceof Error) {
          problem ??= `line ${rows}: ${id.message}`;
          continue;
        }
        into?.ids.push(id);
        if (md5) into?.md5s.push(lineMd5(line));
      }
    }
    const { bytes, sha256 } = reading.tally();
    if (bytes !== part.bytes) problem = `${bytes} bytes, the manifest says ${part.bytes}`;
    else if (sha256 !== part.sha256) problem = `SHA-256 ${sha256}, the manifest says ${part.sha256}`;
    else if (rows !== part.rows) problem = `${rows} rows, the manifest says ${part.rows}`;
    return { name: part.name, ok: problem === null, rows, bytes, problem };
  } catch (err) {
    // A target that cannot be reached says nothing about the archive: the run fails, no verdict.
    if (err instanceof ArchiveTargetError && !(err instanceof ArchiveObjectMissingError)) throw err;
    // gunzip of a truncated or damaged part, or the read itself: say first how its bytes differ.
    const raw = await rawTally(target, key).catch(() => undefined);
    const why = `it does not decompress (${errorMessage(err)})`;
    if (raw && raw.bytes !== part.bytes)
      return {
        name: part.name,
        ok: false,
        rows,
        bytes: raw.bytes,
        problem: `${raw.bytes} bytes, the manifest says ${part.bytes} (truncated?); ${why}`,
      };
    if (raw && raw.sha256 !== part.sha256)
      return {
        name: part.name,
        ok: false,
        rows,
        bytes: raw.bytes,
        problem: `SHA-256 ${raw.sha256}, the manifest says ${part.sha256}; ${why}`,
      };
    return { name: part.name, ok: false, rows, bytes: raw?.bytes ?? 0, problem: `unreadable: ${errorMessage(err)}` };
  }
}

/** The stored bytes of an object, counted and hashed without decompressing. */
async function rawTally(target: ArchiveTarget, key: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await target.read(key)) {
    const b = Buffer.from(chunk as Uint8Array);
    hash.update(b);
    bytes += b.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

function compare(m: Manifest, e: Expected): string[] {
  const problems: string[] = [];
  if (m.rows !== e.rows || m.bytes !== e.bytes)
    problems.push(`the manifest says ${m.rows} rows in ${m.bytes} bytes, the database recorded ${e.rows} rows in ${e.bytes} bytes`);
  // Field by field: the database's jsonb copy has its keys in its own order.
  const key = (p: PartEntry) => [p.name, p.rows, p.bytes, p.sha256, p.first_id, p.last_id].join('|');
  if (m.parts.map(key).join(',') !== e.parts.map(key).join(',')) problems.push('the manifest lists other parts than the database recorded');
  return problems;
}

/** Parts listed twice, and ids read more than once: an archive holds each event once, whatever the database knows. */
function repeats(manifest: Manifest, ids: string[], collected: boolean): string[] {
  const problems: string[] = [];
  const names = manifest.parts.map((p) => p.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) problems.push(`the manifest lists ${[...new Set(twice)].join(', ')} more than once`);
  const repeated = collected ? ids.length - new Set(ids).size : 0;
  if (repeated > 0) problems.push(`${repeated} event(s) appear more than once in the parts`);
  return problems;
}

/**
 * Reads the manifest under `prefix` and every part it lists; `collect` keeps the ids (and `md5`
 * their lines' MD5s). `expected` is what the database recorded for the batch, or how to look it up
 * by the manifest read (undefined: the database does not know the batch). A target that cannot be
 * reached throws (ArchiveTargetError); everything else is a problem in the result.
 */
export async function checkArchive(
  target: ArchiveTarget,
  prefix: string,
  o: { expected?: Expected | ((m: Manifest) => Promise<Expected | undefined>); collect: boolean; md5?: boolean },
): Promise<ArchiveCheck> {
  const manifestKey = joinKey(prefix, MANIFEST_NAME);
  const result: ArchiveCheck = {
    manifestUri: target.objectUri(manifestKey),
    manifest: null,
    ok: false,
    problems: [],
    parts: [],
    ids: [],
    md5s: [],
    missing: false,
  };
  let text: string;
  try {
    text = await readText(target, manifestKey);
  } catch (err) {
    if (err instanceof ArchiveTargetError && !(err instanceof ArchiveObjectMissingError)) throw err;
    result.missing = err instanceof ArchiveObjectMissingError;
    result.problems.push(result.missing ? 'manifest not found' : `manifest unreadable: ${errorMessage(err)}`);
    return result;
  }
  const manifest = parseManifest(text);
  if (typeof manifest === 'string') {
    result.problems.push(`manifest ${manifest}`);
    return result;
  }
  result.manifest = manifest;
  const expected = typeof o.expected === 'function' ? await o.expected(manifest) : o.expected;
  if (expected) result.problems.push(...compare(manifest, expected));
  const partRows = manifest.parts.reduce((n, p) => n + p.rows, 0);
  if (partRows !== manifest.rows) result.problems.push(`the manifest's parts hold ${partRows} rows, its total says ${manifest.rows}`);
  for (const part of manifest.parts) {
    const r = await checkPart(target, joinKey(prefix, part.name), part, o.collect ? result : null, o.md5 === true);
    result.parts.push(r);
    if (r.problem) result.problems.push(`${target.objectUri(joinKey(prefix, part.name))}: ${r.problem}`);
  }
  result.problems.push(...repeats(manifest, result.ids, o.collect));
  result.ok = result.problems.length === 0;
  return result;
}

/** Claimed ids against ids read back: claimed but in no part, in a part but never claimed, and repeats. */
export function compareIds(claimed: string[], read: string[]): { missing: string[]; foreign: string[]; repeated: number } {
  const inParts = new Set(read);
  const claims = new Set(claimed);
  return {
    missing: claimed.filter((id) => !inParts.has(id)),
    foreign: read.filter((id) => !claims.has(id)),
    repeated: read.length - inParts.size,
  };
}
