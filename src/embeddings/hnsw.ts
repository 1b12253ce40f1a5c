// `embeddings index` (SPEC §10): the HNSW cosine index search uses. On a server it is built
// with CREATE INDEX CONCURRENTLY, as pgvector advises for a live table: writes go on during the
// build. That statement cannot run in a transaction, so it runs on a connection of its own with
// the session's maintenance_work_mem, while another connection of the pool reads
// pg_stat_progress_create_index for the progress bar. A build that was killed leaves an INVALID
// index, which is dropped and built again. A rebuild builds `…_new` beside the old index, then
// drops the old and renames it: a run killed after the build (PostgreSQL finishes a CREATE INDEX
// CONCURRENTLY whose client died) leaves `…_new` valid, and the next run takes it over when it
// has the parameters asked for, else drops it and builds again. The embedded database has one
// connection, and no other session that could write meanwhile: there the index is built without
// CONCURRENTLY.
import type { Db } from '../db/connect.js';
import { embeddingColumns } from '../db/vector-column.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import * as sql from './hnsw-sql.js';
import { indexInfo, type IndexInfo } from './status.js';
import { vectorIndexes } from './status-sql.js';

export interface IndexOptions extends sql.HnswParams {
  /** For this build only (`1GB`); null keeps the server's setting. */
  maintenanceWorkMem: string | null;
  /** Build again even when an index with these parameters is there. */
  rebuild: boolean;
  logger: Logger;
  bar?: ProgressBar | undefined;
  pollMs?: number | undefined;
}

export interface IndexResult {
  action: 'built' | 'rebuilt' | 'present';
  index: IndexInfo | null;
  column: string;
  concurrently: boolean;
  /**
   * Indexes left by interrupted builds and dropped before building: INVALID ones, and a finished
   * `…_new` of other parameters than asked for.
   */
  repaired: string[];
  /** A finished `…_new` left by an interrupted rebuild, with the parameters asked for: taken over instead of built again. */
  adopted: string | null;
  /** The index the rebuild replaced. */
  replaced: string | null;
  maintenanceWorkMem: string | null;
  /** A rough size of the graph the build holds in memory (vectors and neighbour lists). */
  estimatedBytes: number;
  seconds: number;
}

/** Polls the build's progress from another connection: phases to the log, blocks to the bar. */
function watchBuild(db: Db, o: Pick<IndexOptions, 'logger' | 'bar' | 'pollMs'>): () => void {
  let phase = '';
  let done = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    sql
      .buildProgress(db)
      .then((p) => {
        if (!p) return;
        if (p.phase !== phase) {
          phase = p.phase;
          done = 0;
          o.logger.info(`index: ${phase}`);
          if (p.blocks_total > 0) o.bar?.setTotal(p.blocks_total);
        }
        if (p.blocks_done > done) {
          o.bar?.increment(p.blocks_done - done);
          done = p.blocks_done;
        }
      })
      .catch((err: unknown) => o.logger.debug(`index progress: ${errorMessage(err)}`))
      .finally(() => {
        busy = false;
      });
  }, o.pollMs ?? 500);
  return () => clearInterval(timer);
}

const isCosineHnsw = (i: IndexInfo) => i.valid && i.method === 'hnsw' && i.opclass === 'vector_cosine_ops';

export async function buildIndex(db: Db, o: IndexOptions): Promise<IndexResult> {
  const started = performance.now();
  const cols = await embeddingColumns(db);
  const concurrently = db.kind === 'server';
  const existing = (await vectorIndexes(db, cols.vector.name)).map(indexInfo);
  const repaired: string[] = [];
  for (const i of existing.filter((x) => !x.valid)) {
    o.logger.warn(`dropping the INVALID index ${i.name}, left by an interrupted build`);
    await sql.dropIndex(db, i.name, concurrently);
    repaired.push(i.name);
  }
  const wanted = (i: IndexInfo) => isCosineHnsw(i) && i.m === o.m && i.efConstruction === o.efConstruction;
  // A finished `…_new`: a rebuild killed after its build, before the old index was dropped and
  // it renamed. With the parameters asked for it is what this run would build: it is taken over.
  // Otherwise it goes: at once when another index serves search meanwhile, else once the new
  // index is built (as the index it replaces).
  const leftover = existing.find((i) => i.valid && i.name === sql.NEW_INDEX_NAME);
  const adopted = leftover && wanted(leftover) ? leftover.name : null;
  const current =
    existing.find((i) => i.name === sql.INDEX_NAME && isCosineHnsw(i)) ??
    existing.find((i) => i.name !== sql.NEW_INDEX_NAME && isCosineHnsw(i)) ??
    (adopted === null && leftover && isCosineHnsw(leftover) ? leftover : undefined);
  if (leftover && adopted === null && current !== leftover) {
    o.logger.warn(`dropping ${leftover.name}, left by an interrupted rebuild with other parameters`);
    await sql.dropIndex(db, leftover.name, concurrently);
    repaired.push(leftover.name);
  }
  const result = (action: IndexResult['action'], index: IndexInfo | null, extra: Partial<IndexResult> = {}): IndexResult => ({
    action,
    index,
    column: cols.vector.name,
    concurrently,
    repaired,
    adopted,
    replaced: null,
    maintenanceWorkMem: o.maintenanceWorkMem,
    estimatedBytes: 0,
    seconds: (performance.now() - started) / 1000,
    ...extra,
  });
  if (adopted !== null) {
    o.logger.info(`taking over ${adopted} (m ${o.m}, ef_construction ${o.efConstruction}), finished by an interrupted rebuild`);
    const replaced = await swapIn(db, adopted, current, concurrently);
    return result(current ? 'rebuilt' : 'built', await ourIndex(db, cols.vector.name), { replaced, maintenanceWorkMem: null });
  }
  if (current && !o.rebuild && wanted(current)) return result('present', current);

  // A rebuild builds the new index beside the old one, so search never goes without.
  const name = current?.name === sql.INDEX_NAME ? sql.NEW_INDEX_NAME : sql.INDEX_NAME;
  const vectors = await sql.countVectors(db, cols.vector);
  const estimatedBytes = vectors * (4 * 1536 + 16 * 2 * o.m + 64);
  const stop = concurrently ? watchBuild(db, o) : () => {};
  let used: string | null = null;
  try {
    await db.session(async (conn) => {
      if (o.maintenanceWorkMem !== null) await sql.setMaintenanceWorkMem(conn, o.maintenanceWorkMem);
      try {
        const mem = await sql.maintenanceWorkMem(conn);
        used = mem.setting;
        if (estimatedBytes > mem.bytes)
          o.logger.warn(
            `the graph of ${vectors} vectors needs about ${Math.ceil(estimatedBytes / 2 ** 20)} MB; maintenance_work_mem is ${mem.setting}, so the build slows down once it is full (--maintenance-work-mem)`,
          );
        o.logger.info(
          `building ${name} (hnsw, cosine, m ${o.m}, ef_construction ${o.efConstruction}) over ${vectors} vectors${concurrently ? ', concurrently' : ' (embedded database: one connection, so without CONCURRENTLY)'}`,
        );
        await sql.createHnswIndex(conn, cols.vector, name, o, concurrently);
      } finally {
        // On a connection that died with the build this fails too; the build's error is the one
        // to report, and a failed session's connection is closed rather than pooled anyway.
        if (o.maintenanceWorkMem !== null) await sql.setMaintenanceWorkMem(conn, null).catch(() => {});
      }
    });
  } catch (err) {
    if (concurrently)
      o.logger.warn(`the build of ${name} failed; an INVALID index may be left: \`embeddings index\` drops and rebuilds it`);
    throw err;
  } finally {
    stop();
  }
  const replaced = await swapIn(db, name, current, concurrently);
  return result(current ? 'rebuilt' : 'built', await ourIndex(db, cols.vector.name), {
    replaced,
    maintenanceWorkMem: used,
    estimatedBytes,
  });
}

/**
 * Puts the finished index `name` in the place of `current` (if any): drops it, then gives `name`
 * the index's own name. Killed in between, the next run finds `name` alone and takes it over.
 */
async function swapIn(db: Db, name: string, current: IndexInfo | undefined, concurrently: boolean): Promise<string | null> {
  if (current) await sql.dropIndex(db, current.name, concurrently);
  if (name !== sql.INDEX_NAME) await sql.renameIndex(db, name, sql.INDEX_NAME);
  await sql.analyzeEmbeddings(db);
  return current?.name ?? null;
}

async function ourIndex(db: Db, column: string): Promise<IndexInfo | null> {
  return (await vectorIndexes(db, column)).map(indexInfo).find((i) => i.name === sql.INDEX_NAME) ?? null;
}
