// `embeddings verify` (SPEC §10): the proof `embeddings swap` waits for. Every row has a 1536-d
// vector, and every row with a valid legacy value has a vector equal to it within a tolerance per
// component. All rows, in keyset batches of short read-only statements: no long snapshot held.
import type { Db } from '../db/connect.js';
import { embeddingColumns, type SwapPhase } from '../db/vector-column.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import { rangeBounds } from './backfill-sql.js';
import { countEmbeddings, verifyBatch } from './verify-sql.js';

/** pgvector stores float4: a copied value is exact, this is room for a value written by other code. */
const DEFAULT_TOLERANCE = 1e-6;

interface VerifyCheck {
  name: string;
  ok: boolean;
  /** Rows that fail it. */
  count: number;
  /** Up to three of them, smallest ids first. */
  examples: string[];
}

export interface VerifyReport {
  ok: boolean;
  phase: SwapPhase;
  vectorColumn: string;
  legacyColumn: string | null;
  rows: number;
  tolerance: number;
  checks: VerifyCheck[];
  /** Set when a signal stopped it before the last row: not a pass. */
  stopped: boolean;
  elapsedMs: number;
}

export interface VerifyOptions {
  batchSize: number;
  tolerance?: number | undefined;
  /** Key ranges read at once on a server (the embedded database has one connection). */
  workers?: number | undefined;
  bar?: ProgressBar | undefined;
  signal?: AbortSignal | undefined;
}

/** Contiguous key ranges, four per worker, covering every id (one range for one worker). */
async function keyRanges(db: Db, total: number, workers: number): Promise<{ lo: string | null; hi: string | null }[]> {
  if (workers === 1) return [{ lo: null, hi: null }];
  const bounds = await rangeBounds(db, Math.max(1, Math.ceil(total / (workers * 4))));
  return [null, ...bounds].map((lo, i) => ({ lo, hi: bounds[i] ?? null }));
}

export async function verifyEmbeddings(db: Db, o: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  const cols = await embeddingColumns(db);
  const total = await countEmbeddings(db);
  o.bar?.setTotal(total);
  const vectorCheck: VerifyCheck = { name: `rows without a 1536-d vector in ${cols.vector.name}`, ok: true, count: 0, examples: [] };
  const legacyCheck: VerifyCheck = {
    name: `rows whose vector differs from their valid legacy value in ${cols.legacy} (by more than ${tolerance.toExponential()} in a component)`,
    ok: true,
    count: 0,
    examples: [],
  };
  const add = (check: VerifyCheck, count: number, examples: string[] | null) => {
    check.count += count;
    // Ranges finish in any order: keep the three smallest ids of all.
    check.examples = [...check.examples, ...(examples ?? [])].sort().slice(0, 3);
    check.ok = check.count === 0;
  };
  let rows = 0;
  let stopped = false;
  // Each worker walks whole key ranges, one keyset batch (one short statement) at a time.
  const workers = Math.max(1, Math.min(o.workers ?? 1, db.maxConnections - 1));
  const ranges = await keyRanges(db, total, workers);
  const worker = async () => {
    for (let range = ranges.shift(); range; range = ranges.shift()) {
      let after = range.lo;
      for (;;) {
        if (o.signal?.aborted) {
          stopped = true;
          return;
        }
        const b = await verifyBatch(db, cols, after, range.hi, o.batchSize, tolerance);
        rows += b.rows;
        add(vectorCheck, b.no_vector, b.no_vector_examples);
        add(legacyCheck, b.differs, b.differs_examples);
        o.bar?.increment(b.rows);
        if (b.rows < o.batchSize) break;
        after = b.last_id;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const checks = cols.legacy === null ? [vectorCheck] : [vectorCheck, legacyCheck];
  return {
    ok: !stopped && checks.every((c) => c.ok),
    phase: cols.phase,
    vectorColumn: cols.vector.name,
    legacyColumn: cols.legacy,
    rows,
    tolerance,
    checks,
    stopped,
    elapsedMs: Math.round(performance.now() - started),
  };
}
