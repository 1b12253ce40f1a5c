// `embeddings status` (SPEC §10): where the swap stands and what to run next.
import type { Queryable } from '../db/connect.js';
import { embeddingColumns, type SwapPhase } from '../db/vector-column.js';
import { type BackfillProgress, latestPass, legacyCounts, queuedReembeds, type VectorIndex, vectorIndexes } from './status-sql.js';
import { readSyncTrigger, type SyncDirection } from './swap-sql.js';

/** pgvector's HNSW defaults, when an index was built without WITH (…). */
const HNSW_DEFAULTS = { m: 16, efConstruction: 64 };

export interface IndexInfo {
  name: string;
  method: string;
  opclass: string;
  valid: boolean;
  m: number | null;
  efConstruction: number | null;
  bytes: number;
}

export interface EmbeddingsStatus {
  phase: SwapPhase;
  vectorColumn: string;
  legacyColumn: string | null;
  rows: number;
  withVector: number;
  withoutVector: number;
  /** Valid legacy values not copied yet. */
  toCopy: number;
  legacy: { valid: number; wrong_dimension: number; malformed: number; non_finite: number; null: number };
  trigger: { installed: boolean; direction: SyncDirection | null; enabled: boolean; expected: SyncDirection };
  /** The HNSW cosine index search uses, if there is a valid one. */
  index: IndexInfo | null;
  /** Every vector index on the column (an INVALID one is left by an interrupted build). */
  indexes: IndexInfo[];
  backfill: BackfillProgress | null;
  reembedQueued: number;
  /** What to run next, in a sentence. */
  next: string;
}

function option(options: string[] | null, key: string): number | null {
  const found = options?.find((o) => o.startsWith(`${key}=`));
  return found === undefined ? null : Number(found.slice(key.length + 1));
}

export function indexInfo(i: VectorIndex): IndexInfo {
  const hnsw = i.method === 'hnsw';
  return {
    name: i.name,
    method: i.method,
    opclass: i.opclass,
    valid: i.valid,
    m: option(i.options, 'm') ?? (hnsw ? HNSW_DEFAULTS.m : null),
    efConstruction: option(i.options, 'ef_construction') ?? (hnsw ? HNSW_DEFAULTS.efConstruction : null),
    bytes: i.bytes,
  };
}

function nextStep(s: Omit<EmbeddingsStatus, 'next'>): string {
  const bad = s.withoutVector;
  if (s.phase === 'swapped') {
    const rollback = s.legacyColumn ? '; `embeddings swap --rollback` restores the previous names' : '';
    if (bad > 0) return `swapped, but ${bad} rows have no vector: \`embeddings backfill --reembed\`${rollback}`;
    if (!s.index) return `swapped: build the search index with \`embeddings index\`${rollback}`;
    return `swapped and indexed${rollback}`;
  }
  if (!s.trigger.installed || s.backfill === null) return 'run `embeddings backfill` (it installs the sync trigger first)';
  if (s.backfill.ranges_done < s.backfill.ranges) return 'a backfill pass is unfinished: run `embeddings backfill` to continue it';
  if (s.toCopy > 0) return `${s.toCopy} valid legacy values still to copy: run \`embeddings backfill\``;
  if (bad > 0) return `${bad} rows have no usable legacy value: \`embeddings backfill --reembed\` embeds their interactions' text`;
  return 'every row has its vector: `embeddings verify`, then `embeddings swap`';
}

export async function embeddingsStatus(db: Queryable): Promise<EmbeddingsStatus> {
  const cols = await embeddingColumns(db);
  const counts = await legacyCounts(db, cols);
  const trigger = await readSyncTrigger(db);
  const indexes = (await vectorIndexes(db, cols.vector.name)).map(indexInfo);
  const status: Omit<EmbeddingsStatus, 'next'> = {
    phase: cols.phase,
    vectorColumn: cols.vector.name,
    legacyColumn: cols.legacy,
    rows: counts.rows,
    withVector: counts.with_vector,
    withoutVector: counts.rows - counts.with_vector,
    toCopy: counts.to_copy,
    legacy: {
      valid: counts.valid,
      wrong_dimension: counts.wrong_dimension,
      malformed: counts.malformed,
      non_finite: counts.non_finite,
      null: counts.null,
    },
    trigger: {
      installed: trigger !== null,
      direction: trigger?.direction ?? null,
      enabled: trigger?.enabled ?? false,
      expected: cols.phase === 'swapped' ? 'vector' : 'legacy',
    },
    index: indexes.find((i) => i.valid && i.method === 'hnsw' && i.opclass === 'vector_cosine_ops') ?? null,
    indexes,
    backfill: await latestPass(db),
    reembedQueued: await queuedReembeds(db),
  };
  return { ...status, next: nextStep(status) };
}
