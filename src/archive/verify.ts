// `archive verify [--from <uri>]`: re-reads manifests and parts and checks them — bytes, SHA-256
// and rows of every part against its manifest, the manifest against what the database recorded
// — and that every event a batch claimed is in its parts (an archived id missing from the archive
// would be an event lost). Without --from: every batch the database knows; with a manifest URI:
// that one; with a target URI: every manifest under it.
import type { Db } from '../db/connect.js';
import { UsageError } from '../errors.js';
import { batchesWithManifest, findBatch } from './batch-read.js';
import type { BatchRow } from './batch-sql.js';
import { checkArchive, compareIds, type PartResult } from './check.js';
import { ArchiveObjectMissingError, ArchiveTargetError } from './errors.js';
import { MANIFEST_NAME } from './manifest.js';
import { claimedIds } from './rows-sql.js';
import type { ArchiveTarget } from './store.js';
import { shownUri } from './target.js';

interface VerifiedManifest {
  manifestUri: string;
  batchId: string | null;
  /** The batch's state in this database (null: a manifest this database does not know). */
  state: string | null;
  rows: number;
  parts: PartResult[];
  ok: boolean;
  problems: string[];
  /** No manifest under the prefix at all. */
  missing: boolean;
}

export interface ArchiveVerifyReport {
  ok: boolean;
  checked: number;
  failed: number;
  rows: number;
  manifests: VerifiedManifest[];
  elapsedMs: number;
}

export interface VerifyArchivesOptions {
  db: Db;
  /** Opens a target by its base URI (cached by the caller). */
  open: (uri: string) => Promise<ArchiveTarget>;
  /** A manifest URI or a target URI; undefined: every batch of the database. */
  from: string | undefined;
}

const MANIFEST_SUFFIX = `/${MANIFEST_NAME}`;
const NO_ARCHIVE_HINT = '`archive list` shows the targets and manifests of the batches this database knows';

async function verifyOne(db: Db, target: ArchiveTarget, prefix: string, known: BatchRow | undefined): Promise<VerifiedManifest> {
  let batch = known;
  // A manifest named by URI is checked against this database's record of its batch, when it has one.
  const check = await checkArchive(target, prefix, {
    collect: true,
    expected: async (m) => {
      batch ??= await findBatch(db, m.batch_id);
      return batch && batch.state !== 'planned' ? { rows: batch.rows, bytes: batch.bytes, parts: batch.parts } : undefined;
    },
  });
  if (batch && check.manifest) {
    const { missing } = compareIds(await claimedIds(db, batch.id), check.ids);
    if (missing.length > 0)
      check.problems.push(
        `${missing.length} archived event(s) of batch ${batch.id} are in none of its parts (e.g. ${missing.slice(0, 3).join(', ')})`,
      );
  }
  return {
    manifestUri: check.manifestUri,
    batchId: check.manifest?.batch_id ?? batch?.id ?? null,
    state: batch?.state ?? null,
    rows: check.manifest?.rows ?? 0,
    parts: check.parts,
    ok: check.problems.length === 0,
    problems: check.problems,
    missing: check.missing,
  };
}

/** The batches' endpoints are not recorded: a plain verify reaches an S3 target only through the flags given now. */
function unreachable(err: ArchiveTargetError, batch: BatchRow): ArchiveTargetError {
  return new ArchiveTargetError(`${err.message} (batch ${batch.id})`, {
    cause: err,
    hint: batch.target.startsWith('s3://')
      ? 'this is no verdict on the archive: pass the --s3-endpoint (and --s3-region, --s3-force-path-style) it was archived with, or set AWS_ENDPOINT_URL'
      : (err.hint ?? 'is the folder there and readable?'),
  });
}

export async function verifyArchives(o: VerifyArchivesOptions): Promise<ArchiveVerifyReport> {
  const started = performance.now();
  const results: VerifiedManifest[] = [];
  if (o.from === undefined) {
    for (const batch of await batchesWithManifest(o.db)) {
      const checked = await verifyOne(o.db, await o.open(batch.target), batch.prefix, batch).catch((err: unknown) => {
        throw err instanceof ArchiveTargetError && !(err instanceof ArchiveObjectMissingError) ? unreachable(err, batch) : err;
      });
      results.push(checked);
    }
  } else if (o.from.endsWith(MANIFEST_SUFFIX)) {
    const base = o.from.slice(0, -MANIFEST_SUFFIX.length);
    const cut = base.lastIndexOf('/');
    const target = await o.open(base.slice(0, cut));
    const checked = await verifyOne(o.db, target, base.slice(cut + 1), undefined);
    if (checked.missing) throw new UsageError(`no manifest at ${shownUri(o.from)}: not found`, { hint: NO_ARCHIVE_HINT });
    results.push(checked);
  } else {
    const target = await o.open(o.from);
    const keys = (await target.list('')).filter((k) => k === MANIFEST_NAME || k.endsWith(MANIFEST_SUFFIX));
    if (keys.length === 0)
      throw new UsageError(`${shownUri(o.from)} holds no archive: no ${MANIFEST_NAME} under it`, { hint: NO_ARCHIVE_HINT });
    for (const key of keys) results.push(await verifyOne(o.db, target, key.slice(0, -MANIFEST_NAME.length).replace(/\/$/, ''), undefined));
  }
  const failed = results.filter((r) => !r.ok).length;
  return {
    ok: failed === 0,
    checked: results.length,
    failed,
    rows: results.reduce((n, r) => n + r.rows, 0),
    manifests: results,
    elapsedMs: Math.round(performance.now() - started),
  };
}
