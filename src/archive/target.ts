// Where archives go, behind one interface: `file://<dir>` and `s3://<bucket>/<prefix>`. Keys are
// '/'-separated paths under the target's base. The S3 client (a large SDK) is imported only when
// an s3:// URI is opened, so every other command — and `--help` — stays fast.
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { S3Options } from './options.js';
import type { ArchiveTarget } from './store.js';

export type TargetUri = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** The userinfo of a URI (`user:password@` after the scheme), which a message must never repeat. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i;

/** A URI as a message may quote it: credentials in it masked. */
export function shownUri(uri: string): string {
  return uri.replace(USERINFO, '$1****@');
}

/**
 * The local folder of a file:// URI's path part: `localhost` as the host is the local machine
 * (RFC 8089), any other first segment is a folder relative to the working directory; `.`, `..`
 * and repeated slashes are resolved, so every spelling of one folder is one target.
 */
function fileDir(uri: string, rest: string, cwd: string): string {
  const local = /^localhost(\/|$)/i.test(rest) ? rest.slice('localhost'.length) || '/' : rest;
  let decoded: string;
  try {
    decoded = decodeURIComponent(local);
  } catch {
    throw new UsageError(`"${shownUri(uri)}" is not a valid URI: a % must start an escape (%25 for a % sign, %20 for a space)`);
  }
  if (decoded === '') throw new UsageError(`"${shownUri(uri)}" names no folder (file:///var/archive, or file://relative/dir)`);
  return path.resolve(cwd, decoded);
}

/** Parses a target URI, or says (exit 2) what is wrong with it. */
export function parseTargetUri(uri: string, cwd = process.cwd()): TargetUri {
  const text = uri.trim();
  // A target is recorded with its batches and quoted in messages: credentials have no place in it.
  if (USERINFO.test(text))
    throw new UsageError(`"${shownUri(uri)}": credentials do not go in the URI`, {
      hint: text.startsWith('s3://')
        ? 'the AWS SDK finds them: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or an instance role'
        : 'a file:// target is a local folder: file:///var/archive',
    });
  if (text.startsWith('file://')) return { kind: 'file', dir: fileDir(uri, text.slice('file://'.length), cwd) };
  if (text.startsWith('s3://')) {
    const [bucket = '', ...rest] = text.slice('s3://'.length).split('/');
    if (!BUCKET.test(bucket)) throw new UsageError(`"${uri}": "${bucket}" is not an S3 bucket name (3–63 of a-z, 0-9, '.', '-')`);
    return { kind: 's3', bucket, prefix: rest.filter((p) => p !== '').join('/') };
  }
  throw new UsageError(`"${shownUri(uri)}" is not an archive target: use file://<dir> or s3://<bucket>/<prefix>`);
}

/** The canonical spelling of a target URI (what the database records and `archive list` shows). */
export function canonicalUri(t: TargetUri): string {
  // A % in a folder's name is written as its escape, so that parsing the recorded URI gives it back.
  return t.kind === 'file' ? `file://${t.dir.replaceAll('%', '%25')}` : `s3://${t.bucket}${t.prefix ? `/${t.prefix}` : ''}`;
}

/**
 * The spellings among `recorded` (targets of batches in the database) that name the same target
 * as `uri` (canonical): batches recorded before spellings were made canonical are still its own.
 */
export function spellingsOf(uri: string, recorded: string[]): string[] {
  const same = recorded.filter((t) => {
    try {
      return canonicalUri(parseTargetUri(t)) === uri;
    } catch {
      return false;
    }
  });
  return [...new Set([uri, ...same])];
}

export async function openTarget(uri: string, s3: S3Options): Promise<ArchiveTarget> {
  const parsed = parseTargetUri(uri);
  if (parsed.kind === 'file') {
    const { fileTarget } = await import('./file-target.js');
    return fileTarget(parsed.dir, canonicalUri(parsed));
  }
  const { s3Target } = await import('./s3-target.js');
  return s3Target(parsed.bucket, parsed.prefix, canonicalUri(parsed), s3);
}

/** An object's URI as the target holding it (its folder) and its key there: `--from <manifest-uri>`. */
export async function openObject(uri: string, s3: S3Options): Promise<{ target: ArchiveTarget; key: string }> {
  const parsed = parseTargetUri(uri);
  const where = parsed.kind === 'file' ? parsed.dir : parsed.prefix;
  const cut = where.lastIndexOf('/');
  const key = where.slice(cut + 1);
  if (key === '') throw new UsageError(`"${shownUri(uri)}" names no object`);
  const base =
    parsed.kind === 'file' ? `file://${where.slice(0, cut) || '/'}` : `s3://${parsed.bucket}/${where.slice(0, Math.max(cut, 0))}`;
  return { target: await openTarget(base, s3), key };
}
