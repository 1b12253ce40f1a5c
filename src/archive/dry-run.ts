// `archive --dry-run`: what a run would archive, read without writing: rows, their exact NDJSON
// size, and the compressed size estimated from a sample compressed the way parts are; the rows
// the target's unfinished batches still hold (a run finishes them first), those unfinished
// batches of other targets hold (no run to this target archives them), and whether the target
// can be written at all.
import type { Queryable } from '../db/connect.js';
import { unfinishedElsewhere, unfinishedTargets } from './batch-sql.js';
import { gzipSize } from './parts.js';
import { countEligible, countUnfinished, type RowFilter, sampleLines } from './rows-sql.js';
import type { ArchiveTarget } from './store.js';
import { spellingsOf } from './target.js';

const SAMPLE_ROWS = 500;

export interface ArchiveDryRun {
  dryRun: true;
  target: string;
  cutoff: string;
  /** Eligible rows no batch has claimed yet: what new batches would take. */
  rows: number;
  /** Uncompressed NDJSON bytes of those rows. */
  ndjsonBytes: number;
  /** Their size in gzip parts, from a sample of up to 500 rows. */
  estimatedBytes: number;
  /** Old enough, but still waiting to be normalized: not archived until they are. */
  pendingNormalize: number;
  /** This target's unfinished batches (a killed or stopped run's) and the rows they still hold hot: finished first. */
  unfinished: { batches: number; rows: number };
  /** Eligible rows held by unfinished batches of other targets (listed): no run to this target archives them. */
  heldByOtherTargets: number;
  otherTargets: string[];
}

export async function archiveDryRun(db: Queryable, target: ArchiveTarget, filter: RowFilter): Promise<ArchiveDryRun> {
  // A target that cannot be written fails the dry run as it would fail the run.
  await target.probe();
  const counts = await countEligible(db, filter);
  const sample = Buffer.from(`${(await sampleLines(db, filter, SAMPLE_ROWS)).join('\n')}\n`, 'utf8');
  const ratio = sample.length > 1 ? gzipSize(sample) / sample.length : 0;
  const spellings = spellingsOf(target.uri, await unfinishedTargets(db));
  const unfinished = await countUnfinished(db, spellings, filter);
  const { otherTargets } = await unfinishedElsewhere(db, spellings, '');
  return {
    dryRun: true,
    target: target.uri,
    cutoff: filter.cutoff.toISOString(),
    rows: counts.rows,
    ndjsonBytes: counts.ndjson_bytes,
    estimatedBytes: Math.round(counts.ndjson_bytes * ratio),
    pendingNormalize: counts.pending_normalize,
    unfinished: { batches: unfinished.batches, rows: unfinished.rows },
    heldByOtherTargets: unfinished.otherRows,
    otherTargets,
  };
}
