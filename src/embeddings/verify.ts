// `embeddings verify` (SPEC §10): the proof `embeddings swap` waits for. Every row has a 1536-d
// vector, and every row with a valid legacy value has a vector equal to it within a tolerance per
// component. All rows, in keyset batches of short read-only statements: no long snapshot held.
import type { Db } from '../db/connect.js';
import { embeddingColumns, type SwapPhase } from '../db/vector-column.js';
import type { ProgressBar } from '../stages/engine/progress.js';
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
  bar?: ProgressBar | undefined;
  signal?: AbortSignal | undefined;
}

export async function verifyEmbeddings(db: Db, o: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  const cols = await embeddingColumns(db);
  o.bar?.setTotal(await countEmbeddings(db));
  const vectorCheck: VerifyCheck = { name: `rows without a 1536-d vector in ${cols.vector.name}`, ok: true, count: 0, examples: [] };
  const legacyCheck: VerifyCheck = {
    name: `rows whose vector differs from their valid legacy value in ${cols.legacy} (by more than ${tolerance.toExponential()} in a component)`,
    ok: true,
    count: 0,
    examples: [],
  };
  const add = (check: VerifyCheck, count: number, examples: string[] | null) => {
    check.count += count;
    for (const id of examples ?? []) if (check.examples.length < 3) check.examples.push(id);
    check.ok = check.count === 0;
  };
  let rows = 0;
  let after: string | null = null;
  let stopped = false;
  for (;;) {
    if (o.signal?.aborted) {
      stopped = true;
      break;
    }
    const b = await verifyBatch(db, cols, after, o.batchSize, tolerance);
    if (b.rows === 0) break;
    rows += b.rows;
    add(vectorCheck, b.no_vector, b.no_vector_examples);
    add(legacyCheck, b.differs, b.differs_examples);
    o.bar?.increment(b.rows);
    after = b.last_id;
    if (b.rows < o.batchSize) break;
  }
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
