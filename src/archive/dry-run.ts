// `archive --dry-run`: what a run would archive, read without writing: rows, their exact NDJSON
// size, and the compressed size estimated from a sample compressed the way parts are.
import type { Queryable } from '../db/connect.js';
import { gzipSize } from './parts.js';
import { countEligible, type RowFilter, sampleLines } from './rows-sql.js';

const SAMPLE_ROWS = 500;

export interface ArchiveDryRun {
  dryRun: true;
  target: string;
  cutoff: string;
  rows: number;
  /** Uncompressed NDJSON bytes of those rows. */
  ndjsonBytes: number;
  /** Their size in gzip parts, from a sample of up to 500 rows. */
  estimatedBytes: number;
  /** Old enough, but still waiting to be normalized: not archived until they are. */
  pendingNormalize: number;
}

export async function archiveDryRun(db: Queryable, target: string, filter: RowFilter): Promise<ArchiveDryRun> {
  const counts = await countEligible(db, filter);
  const sample = Buffer.from(`${(await sampleLines(db, filter, SAMPLE_ROWS)).join('\n')}\n`, 'utf8');
  const ratio = sample.length > 1 ? gzipSize(sample) / sample.length : 0;
  return {
    dryRun: true,
    target,
    cutoff: filter.cutoff.toISOString(),
    rows: counts.rows,
    ndjsonBytes: counts.ndjson_bytes,
    estimatedBytes: Math.round(counts.ndjson_bytes * ratio),
    pendingNormalize: counts.pending_normalize,
  };
}
