// `archive verify [--from <uri>]`: re-reads manifests and parts and checks them — bytes, SHA-256
// and rows of every part against its manifest, the manifest against what the database recorded
// — and that every event a batch claimed is in its parts (an archived id missing from the archive
// would be an event lost). Without --from: every batch the database knows; with a manifest URI:
// that one; with a target URI: every manifest under it.
import type { Db } from '../db/connect.js';
import { type BatchRow, batchesWithManifest, getBatch } from './batch-sql.js';
import { checkArchive, compareIds, type PartResult } from './check.js';
import { MANIFEST_NAME } from './manifest.js';
import { claimedIds } from './rows-sql.js';
import type { ArchiveTarget } from './store.js';

interface VerifiedManifest {
  manifestUri: string;
  batchId: string | null;
  /** The batch's state in this database (null: a manifest this database does not know). */
  state: string | null;
  rows: number;
  parts: PartResult[];
  ok: boolean;
  problems: string[];
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

async function verifyOne(db: Db, target: ArchiveTarget, prefix: string, known: BatchRow | undefined): Promise<VerifiedManifest> {
  const expected = known && known.state !== 'planned' ? { rows: known.rows, bytes: known.bytes, parts: known.parts } : undefined;
  const check = await checkArchive(target, prefix, { expected, collect: true });
  const batchId = check.manifest?.batch_id ?? known?.id ?? null;
  const batch = known ?? (batchId ? await getBatch(db, batchId).catch(() => undefined) : undefined);
  if (batch && check.manifest) {
    const { missing, repeated } = compareIds(await claimedIds(db, batch.id), check.ids);
    if (missing.length > 0)
      check.problems.push(
        `${missing.length} archived event(s) of batch ${batch.id} are in none of its parts (e.g. ${missing.slice(0, 3).join(', ')})`,
      );
    if (repeated > 0) check.problems.push(`${repeated} event(s) appear twice in the parts`);
  }
  return {
    manifestUri: check.manifestUri,
    batchId,
    state: batch?.state ?? null,
    rows: check.manifest?.rows ?? 0,
    parts: check.parts,
    ok: check.problems.length === 0,
    problems: check.problems,
  };
}

export async function verifyArchives(o: VerifyArchivesOptions): Promise<ArchiveVerifyReport> {
  const started = performance.now();
  const results: VerifiedManifest[] = [];
  if (o.from === undefined) {
    for (const batch of await batchesWithManifest(o.db)) {
      results.push(await verifyOne(o.db, await o.open(batch.target), batch.prefix, batch));
    }
  } else if (o.from.endsWith(MANIFEST_SUFFIX)) {
    const base = o.from.slice(0, -MANIFEST_SUFFIX.length);
    const cut = base.lastIndexOf('/');
    const target = await o.open(base.slice(0, cut));
    results.push(await verifyOne(o.db, target, base.slice(cut + 1), undefined));
  } else {
    const target = await o.open(o.from);
    const keys = (await target.list('')).filter((k) => k === MANIFEST_NAME || k.endsWith(MANIFEST_SUFFIX));
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
