// `archive restore --from <target>`: every manifest under a target, newest first, so that an event
// archived in several batches (changed after one wrote it, and archived again by a later one) is
// put back as its newest version and the older copies find it there. A damaged manifest does not
// stop the others: each is reported, and the run fails at the end if any did.
import { UsageError } from '../errors.js';
import { readManifest } from './check.js';
import { ArchiveMismatchError } from './errors.js';
import { MANIFEST_NAME } from './manifest.js';
import { type RestoreCounts, type RestoreOptions, type RestoreResult, restoreArchive } from './restore.js';
import { shownUri } from './target.js';

export interface RestoreAllResult extends RestoreCounts {
  target: string;
  manifests: RestoreResult[];
  /** Manifests not wholly restored, and those that failed their check (nothing restored from them). */
  incomplete: number;
  failed: number;
  renormalize: boolean;
  dryRun: boolean;
}

const isManifest = (k: string) => k === MANIFEST_NAME || k.endsWith(`/${MANIFEST_NAME}`);

/** The manifests' keys, newest first by when each was written (unreadable ones last: they fail their check). */
async function newestFirst(o: Omit<RestoreOptions, 'key'>, keys: string[]): Promise<string[]> {
  const written = new Map<string, string>();
  for (const key of keys) {
    const m = await readManifest(o.target, key);
    written.set(key, typeof m === 'string' ? '' : m.created_at);
  }
  return [...keys].sort((a, b) => written.get(b)!.localeCompare(written.get(a)!) || b.localeCompare(a));
}

function failed(o: Omit<RestoreOptions, 'key'>, key: string, err: ArchiveMismatchError): RestoreResult {
  const prefix = key.slice(0, -MANIFEST_NAME.length).replace(/\/$/, '');
  return {
    manifestUri: o.target.objectUri(key),
    batchId: prefix.split('/').at(-1) ?? '',
    status: 'failed',
    problem: err.message,
    rows: 0,
    restored: 0,
    present: 0,
    otherVersion: 0,
    newerElsewhere: 0,
    conflicts: 0,
    renormalize: o.renormalize,
    dryRun: o.dryRun,
    elapsedMs: 0,
  };
}

export async function restoreAll(o: Omit<RestoreOptions, 'key'>): Promise<RestoreAllResult> {
  const keys = (await o.target.list('')).filter(isManifest);
  if (keys.length === 0)
    throw new UsageError(`${shownUri(o.target.uri)} holds no archive: no ${MANIFEST_NAME} under it`, {
      hint: '`archive list` shows the targets and manifests of the batches',
    });
  const manifests: RestoreResult[] = [];
  for (const key of await newestFirst(o, keys)) {
    try {
      manifests.push(await restoreArchive({ ...o, key }));
    } catch (err) {
      if (!(err instanceof ArchiveMismatchError)) throw err;
      o.logger.warn(err.message);
      manifests.push(failed(o, key, err));
    }
  }
  const sum = (k: keyof RestoreCounts) => manifests.reduce((n, m) => n + m[k], 0);
  return {
    target: o.target.uri,
    manifests,
    rows: sum('rows'),
    restored: sum('restored'),
    present: sum('present'),
    otherVersion: sum('otherVersion'),
    newerElsewhere: sum('newerElsewhere'),
    conflicts: sum('conflicts'),
    incomplete: manifests.filter((m) => m.status === 'incomplete').length,
    failed: manifests.filter((m) => m.status === 'failed').length,
    renormalize: o.renormalize,
    dryRun: o.dryRun,
  };
}
