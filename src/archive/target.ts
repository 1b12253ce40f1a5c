// Where archives go, behind one interface: `file://<dir>` and `s3://<bucket>/<prefix>`. Keys are
// '/'-separated paths under the target's base. The S3 client (a large SDK) is imported only when
// an s3:// URI is opened, so every other command — and `--help` — stays fast.
import { UsageError } from '../errors.js';
import type { S3Options } from './options.js';
import type { ArchiveTarget } from './store.js';

export type TargetUri = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses a target URI, or says (exit 2) what is wrong with it. */
export function parseTargetUri(uri: string, cwd = process.cwd()): TargetUri {
  const text = uri.trim();
  if (text.startsWith('file://')) {
    const rest = decodeURIComponent(text.slice('file://'.length));
    if (rest === '') throw new UsageError(`"${uri}" names no folder (file:///var/archive, or file://relative/dir)`);
    // file:///abs is absolute; file://relative is read from the working directory.
    const dir = rest.startsWith('/') ? rest : `${cwd}/${rest}`;
    return { kind: 'file', dir: dir.replace(/\/+$/, '') || '/' };
  }
  if (text.startsWith('s3://')) {
    const [bucket = '', ...rest] = text.slice('s3://'.length).split('/');
    if (!BUCKET.test(bucket)) throw new UsageError(`"${uri}": "${bucket}" is not an S3 bucket name (3–63 of a-z, 0-9, '.', '-')`);
    return { kind: 's3', bucket, prefix: rest.filter((p) => p !== '').join('/') };
  }
  throw new UsageError(`"${uri}" is not an archive target: use file://<dir> or s3://<bucket>/<prefix>`);
}

/** The canonical spelling of a target URI (what the database records and `archive list` shows). */
export function canonicalUri(t: TargetUri): string {
  return t.kind === 'file' ? `file://${t.dir}` : `s3://${t.bucket}${t.prefix ? `/${t.prefix}` : ''}`;
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
  const path = parsed.kind === 'file' ? parsed.dir : parsed.prefix;
  const cut = path.lastIndexOf('/');
  const key = path.slice(cut + 1);
  if (key === '') throw new UsageError(`"${uri}" names no object`);
  const base = parsed.kind === 'file' ? `file://${path.slice(0, cut) || '/'}` : `s3://${parsed.bucket}/${path.slice(0, Math.max(cut, 0))}`;
  return { target: await openTarget(base, s3), key };
}
