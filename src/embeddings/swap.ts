// `embeddings swap` and `swap --rollback` (SPEC §10): after `embeddings verify` passes, one short
// transaction renames the columns — `embedding` becomes the vector(1536) column, the legacy text
// `embedding_legacy` — and turns the sync trigger around, so that values written after the swap
// are in the text column too and a rollback loses nothing. The transaction takes its lock with a
// short lock_timeout and retries (lock.ts); it re-reads the columns once it holds the lock, so a
// second swap running at the same time finds the work done and changes nothing, and it checks
// again that every row has its vector: a legacy value written between verify and the lock that
// the sync trigger could not parse would otherwise become a row without one. DDL is
// transactional: it applies whole or not at all.
import type { Db } from '../db/connect.js';
import { embeddingColumns, type SwapPhase } from '../db/vector-column.js';
import { DatabaseError, OmniError } from '../errors.js';
import type { Logger } from '../logger.js';
import { withLockRetry } from './lock.js';
import {
  installSyncTrigger,
  lockEmbeddings,
  renameToLegacy,
  renameToSwapped,
  type RowsWithoutVector,
  rowsWithoutVector,
} from './swap-sql.js';
import type { VerifyReport } from './verify.js';

export interface SwapOptions {
  rollback: boolean;
  lockTimeoutMs: number;
  lockAttempts: number;
  logger: Logger;
  /** Runs `embeddings verify` (the swap refuses unless it passes; a rollback does not ask). */
  verify: () => Promise<VerifyReport>;
  signal?: AbortSignal | undefined;
}

export interface SwapResult {
  /**
   * `refused`: verify failed, or rows without a vector were found under the lock (written after
   * verify passed); nothing changed. `already`: the columns were in the wanted state.
   */
  action: 'swapped' | 'rolled-back' | 'already' | 'refused';
  phase: SwapPhase;
  vectorColumn: string;
  legacyColumn: string | null;
  verify: VerifyReport | null;
  /** Rows found without a vector under the lock, after verify had passed (the swap refused). */
  withoutVector: RowsWithoutVector | null;
  attempts: number;
  /** How long the renaming transaction took, lock wait included. */
  heldMs: number | null;
}

export async function swapColumns(db: Db, o: SwapOptions): Promise<SwapResult> {
  const want: SwapPhase = o.rollback ? 'before-swap' : 'swapped';
  const before = await embeddingColumns(db);
  const result = (action: SwapResult['action'], extra: Partial<SwapResult> = {}): SwapResult => ({
    action,
    phase: before.phase,
    vectorColumn: before.vector.name,
    legacyColumn: before.legacy,
    verify: null,
    withoutVector: null,
    attempts: 0,
    heldMs: null,
    ...extra,
  });
  if (before.phase === want) return result('already');
  if (before.legacy === null) {
    throw new OmniError(
      o.rollback
        ? 'there is no embedding_legacy column to roll back to'
        : 'there is no legacy text column (embedding) to keep as embedding_legacy',
      { hint: 'see `omni-ingest embeddings status`' },
    );
  }

  let verify: VerifyReport | null = null;
  if (!o.rollback) {
    try {
      verify = await o.verify();
    } catch (err) {
      // Another swap renamed the columns while this one was verifying (42703: the column it
      // read is gone): if they are now as wanted, there is nothing left to do.
      if (err instanceof DatabaseError && err.sqlState === '42703' && (await embeddingColumns(db)).phase === want) return result('already');
      throw err;
    }
    if (!verify.ok) return result('refused', { verify });
  }

  const locked = await withLockRetry(
    db,
    {
      lockTimeoutMs: o.lockTimeoutMs,
      attempts: o.lockAttempts,
      logger: o.logger,
      what: o.rollback ? 'swap --rollback' : 'swap',
      signal: o.signal,
    },
    async (tx) => {
      await lockEmbeddings(tx);
      // Under the lock: another swap may have done it while we verified or waited.
      const now = await embeddingColumns(tx);
      if (now.phase === want) return { changed: false, cols: now, missing: null };
      if (now.legacy === null) throw new OmniError('the legacy text column disappeared while waiting for the lock');
      // Verify still holds: a legacy value written since then that the sync trigger could not
      // parse left its row without a vector, which the swap would make a row of the new column.
      if (!o.rollback) {
        const missing = await rowsWithoutVector(tx, now.vector);
        if (missing.count > 0) return { changed: false, cols: now, missing };
      }
      if (o.rollback) await renameToLegacy(tx);
      else await renameToSwapped(tx);
      await installSyncTrigger(tx, o.rollback ? 'legacy' : 'vector');
      return { changed: true, cols: await embeddingColumns(tx), missing: null };
    },
  );
  const { changed, cols, missing } = locked.value;
  return {
    action: missing ? 'refused' : !changed ? 'already' : o.rollback ? 'rolled-back' : 'swapped',
    phase: cols.phase,
    vectorColumn: cols.vector.name,
    legacyColumn: cols.legacy,
    verify,
    withoutVector: missing,
    attempts: locked.attempts,
    heldMs: Math.round(locked.heldMs),
  };
}
