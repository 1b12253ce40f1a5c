// One archive batch through its states: planned → written (parts, then the manifest) → verified
// (every part read back and checked) → deleted (in short transactions, only the ids read back).
// Each transition is committed before the next step starts and names the lease holder, so a
// kill at any instant leaves a state a re-run can continue from, and nothing unverified is ever
// deleted.
import { randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../db/connect.js';
import type { Logger } from '../logger.js';
import { packageVersion } from '../version.js';
import * as b from './batch-sql.js';
import { type ArchiveCheck, checkArchive, compareIds } from './check.js';
import { ArchiveMismatchError, LeaseLostError } from './errors.js';
import { faultPoint } from './fault.js';
import { isPartKey, type Manifest, MANIFEST_ENCODING, MANIFEST_FORMAT, MANIFEST_NAME, type PartEntry, partName } from './manifest.js';
import { NO_PAGE, type Page, readPage } from './page.js';
import { writePart } from './parts.js';
import * as rows from './rows-sql.js';
import { type ArchiveTarget, joinKey } from './store.js';

/** Rows read from the database per statement while a part is written. */
const PAGE_ROWS = 5_000;
/** Rows deleted per transaction: short (tens of milliseconds), far below any statement_timeout. */
const DELETE_ROWS = 5_000;

export interface BatchWork {
  db: Db;
  target: ArchiveTarget;
  owner: string;
  partRows: number;
  /** How long a lease lasts unless renewed. */
  leaseSeconds: number;
  logger: Logger;
  /** Asked to stop (signal, time budget): finish the step in hand, then leave the batch. */
  stopping: () => boolean;
  /** Adds counts to the run ledger inside the given transaction. */
  record: (tx: Queryable, counts: Record<string, number>) => Promise<void>;
}

export interface BatchOutcome {
  id: string;
  state: b.BatchState;
  rows: number;
  bytes: number;
  deleted: number;
  kept: number;
  manifestUri: string | null;
  /** Milliseconds this run spent on each step of the batch (the benchmark's profile). */
  ms: { plan: number; write: number; verify: number; delete: number };
}

const lost = (id: string) => new LeaseLostError(`archive batch ${id} was taken over by another process (its lease expired)`);

function manifestOf(batch: b.BatchRow, parts: PartEntry[]): Manifest {
  return {
    format: MANIFEST_FORMAT,
    tool: { name: 'omni-ingest', version: packageVersion() },
    table: 'public.raw_events',
    batch_id: batch.id,
    created_at: new Date().toISOString(),
    cutoff: batch.cutoff.toISOString(),
    filter: { user_id: batch.user_id, provider: batch.provider },
    id_range: { lo: parts[0]?.first_id ?? null, hi: parts.at(-1)?.last_id ?? null },
    rows: parts.reduce((n, p) => n + p.rows, 0),
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    encoding: MANIFEST_ENCODING,
    parts,
  };
}

/** Starts reading a page; a failure is kept for whoever awaits it (and never unhandled if nobody does). */
function prefetch(p: Promise<Page>): Promise<Page> {
  p.catch(() => {});
  return p;
}

/**
 * planned → written: the batch's rows as parts of at most `partRows` claims, then the manifest.
 * The next page is read while the one before it is compressed and written.
 */
async function write(w: BatchWork, batch: b.BatchRow): Promise<b.Written> {
  const parts: PartEntry[] = [];
  const attempt = randomBytes(4).toString('hex');
  const read = (after: string | null, room: number) => prefetch(readPage(w.db, batch.id, after, Math.min(PAGE_ROWS, room)));
  let start: Page = await read(null, w.partRows);
  while (start.claims > 0) {
    const tally = { claims: 0, rows: 0, first: null as string | null, last: null as string | null, next: null as Promise<Page> | null };
    const firstPage = start;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let page: Page | null = firstPage; page; ) {
        tally.claims += page.claims;
        tally.rows += page.rows;
        tally.first ??= page.first;
        tally.last = page.last ?? tally.last;
        // A short page is the batch's last; a full one may have more after it, in this part or the next.
        const room = w.partRows - tally.claims;
        const next: Promise<Page> | null = page.full ? read(page.next, room > 0 ? room : w.partRows) : null;
        if (page.data.length > 0) yield page.data;
        if (room > 0 && next) page = await next;
        else {
          tally.next = next;
          page = null;
        }
      }
    }
    const name = partName(parts.length + 1, attempt);
    const { bytes, sha256 } = await writePart(w.target, joinKey(batch.prefix, name), chunks());
    parts.push({ name, rows: tally.rows, bytes, sha256, first_id: tally.first, last_id: tally.last });
    await faultPoint('part');
    start = tally.next ? await tally.next : NO_PAGE;
  }
  const manifest = manifestOf(batch, parts);
  const manifestKey = joinKey(batch.prefix, MANIFEST_NAME);
  // The manifest's name is the batch's, not the attempt's: put it only while the batch is still
  // this process's to write, with the lease renewed for the one request. A writer that stalled
  // past its lease learns here that another process took the batch over, and stops.
  if (!(await b.renewPlannedLease(w.db, batch.id, w.owner, w.leaseSeconds))) {
    // The parts are this attempt's alone (by name): nobody else lists or finishes them.
    for (const p of parts) await w.target.remove(joinKey(batch.prefix, p.name)).catch(() => {});
    throw lost(batch.id);
  }
  await w.target.put(manifestKey, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8'));
  await faultPoint('manifest');
  return { rows: manifest.rows, bytes: manifest.bytes, parts, manifestUri: w.target.objectUri(manifestKey) };
}

/**
 * Removes the parts of earlier attempts at writing the batch (a killed or stalled writer's) that
 * its manifest does not list. Only once the batch is written and its parts read back, so they
 * are no longer any attempt's to finish; a run killed before this is followed by one that
 * verifies the batch again and removes them. A failure leaves stray objects no manifest names,
 * worth a warning only.
 */
async function removeStrayParts(w: BatchWork, batch: b.BatchRow, listed: PartEntry[]): Promise<void> {
  const keep = new Set(listed.map((p) => joinKey(batch.prefix, p.name)));
  try {
    const stray = (await w.target.list(batch.prefix)).filter((k) => isPartKey(k) && !keep.has(k));
    for (const key of stray) await w.target.remove(key);
  } catch (err) {
    w.logger.warn(
      `archive batch ${batch.id}: parts of an earlier attempt were left under ${w.target.objectUri(batch.prefix)}: ${String(err)}`,
    );
  }
}

/** Reads the batch back; on any mismatch the batch goes back to planned (every row is still hot) and this throws. */
async function verify(w: BatchWork, batch: b.BatchRow, expected: b.Written | undefined): Promise<ArchiveCheck> {
  const e = expected ?? { rows: batch.rows, bytes: batch.bytes, parts: batch.parts };
  // The claims change only under this batch's lease: read them before the parts.
  const claims = await rows.batchClaims(w.db, batch.id);
  const check = await checkArchive(w.target, batch.prefix, { expected: e, collect: true, md5: claims.unversioned > 0 });
  if (check.ok) {
    const d = compareIds(claims.ids, check.ids);
    if (d.missing.length > 0)
      check.problems.push(`${d.missing.length} rows of the batch are in no part (e.g. ${d.missing.slice(0, 3).join(', ')})`);
    // Once verified, a batch may have begun deleting: a row it kept hot (changed since it was
    // written) lost its claim, as did a row a restore put back, yet both are rightly in the parts.
    // The delete touches only rows this batch still claims, so such ids are no danger.
    if (d.foreign.length > 0 && batch.state === 'verified')
      w.logger.debug(`archive batch ${batch.id}: ${d.foreign.length} rows of its parts are no longer claimed (kept hot, or restored)`);
    else if (d.foreign.length > 0)
      check.problems.push(`the parts hold rows the batch never claimed (e.g. ${d.foreign.slice(0, 3).join(', ')})`);
    check.ok = check.problems.length === 0;
  }
  if (!check.ok) {
    const why = check.problems.join('; ');
    if (batch.deleted_rows === 0) await b.markForRewrite(w.db, batch.id, w.owner, why);
    throw new ArchiveMismatchError(`archive batch ${batch.id} failed verification at ${check.manifestUri}: ${why}`, {
      hint:
        batch.deleted_rows === 0
          ? 'nothing was deleted; every row is still in raw_events and the next run writes the batch again'
          : 'rows deleted before this read are in the parts read back then; check the target (archive verify), the rest is still in raw_events',
    });
  }
  return check;
}

/** verified → deleted: only the ids read back, in short transactions. */
async function remove(
  w: BatchWork,
  batch: b.BatchRow,
  check: ArchiveCheck,
): Promise<{ deleted: number; kept: number; done: false } | { deleted: number; kept: number; done: true; state: 'deleted' | 'restored' }> {
  let deleted = 0;
  let kept = 0;
  for (let i = 0; i < check.ids.length; i += DELETE_ROWS) {
    if (w.stopping()) return { deleted, kept, done: false };
    const ids = check.ids.slice(i, i + DELETE_ROWS);
    const md5s = check.md5s.length > 0 ? check.md5s.slice(i, i + DELETE_ROWS) : ids.map(() => null);
    const r = await w.db.transaction(async (tx) => {
      await rows.utcSession(tx);
      const out = await rows.deleteChunk(tx, batch.id, ids, md5s);
      if (!(await b.addDeleted(tx, batch.id, w.owner, out.deleted, out.kept))) throw lost(batch.id);
      await w.record(tx, { events: out.deleted, deleted: out.deleted, kept: out.kept });
      return out;
    });
    deleted += r.deleted;
    kept += r.kept;
    if (i === 0) await faultPoint('deleting');
  }
  const state = await w.db.transaction(async (tx) => {
    // A restore that ran while the batch was deleting put its events back and dropped their
    // claims: with no claim left every event of the batch is hot, as when a run finds it so
    // before its work (advanceBatch), and the batch is restored, not deleted.
    if (await b.markEmptied(tx, batch.id, w.owner)) return 'restored' as const;
    if (!(await b.markDeleted(tx, batch.id, w.owner))) throw lost(batch.id);
    await w.record(tx, { batches: 1, bytes: batch.bytes });
    return 'deleted' as const;
  });
  return { deleted, kept, done: true, state };
}

/** Takes `batch` from its state as far as it goes: to deleted, or to where a stop request found it. */
export async function advanceBatch(w: BatchWork, start: b.BatchRow): Promise<BatchOutcome> {
  let batch = start;
  let written: b.Written | undefined;
  const ms = { plan: 0, write: 0, verify: 0, delete: 0 };
  let t = performance.now();
  const lap = (step: keyof typeof ms) => {
    const now = performance.now();
    ms[step] += Math.round(now - t);
    t = now;
  };
  const outcome = (deleted = 0, kept = 0): BatchOutcome => ({
    id: batch.id,
    state: batch.state,
    rows: written?.rows ?? batch.rows,
    bytes: written?.bytes ?? batch.bytes,
    deleted,
    kept,
    manifestUri: written?.manifestUri ?? batch.manifest_uri,
    ms,
  });
  // A batch whose every claim is gone had all its rows restored (or put back) while it was
  // unfinished: there is nothing left to archive, and writing it again would put an empty
  // manifest over the one its parts belong to.
  if (!(await rows.hasClaims(w.db, batch.id))) {
    if (!(await b.markEmptied(w.db, batch.id, w.owner))) throw lost(batch.id);
    w.logger.info(`archive batch ${batch.id}: its events were restored before it finished; it is marked restored`);
    batch = { ...batch, state: 'restored' };
    return outcome();
  }
  if (batch.state === 'planned') {
    written = await write(w, batch);
    const ok = await w.db.transaction(async (tx) => {
      // A claim whose row was not there to write (deleted by someone else since planning) is no
      // part of the batch; with every claimed row written there is none to look for.
      if (written!.rows < batch.rows) await rows.dropVanishedClaims(tx, batch.id);
      return b.markWritten(tx, batch.id, w.owner, written!);
    });
    if (!ok) throw lost(batch.id);
    lap('write');
    batch = {
      ...batch,
      state: 'written',
      rows: written.rows,
      bytes: written.bytes,
      parts: written.parts,
      manifest_uri: written.manifestUri,
    };
    await faultPoint('written');
    if (w.stopping()) return outcome();
  }
  // A batch found verified by an earlier run is read back again: the delete needs the ids, and
  // only what is read back now is deleted.
  t = performance.now();
  const check = await verify(w, batch, written);
  lap('verify');
  if (batch.state === 'written') {
    await removeStrayParts(w, batch, batch.parts);
    if (!(await b.markVerified(w.db, batch.id, w.owner))) throw lost(batch.id);
    batch = { ...batch, state: 'verified' };
    await faultPoint('verified');
    if (w.stopping()) return outcome();
  }
  t = performance.now();
  const r = await remove(w, batch, check);
  lap('delete');
  if (r.done) {
    if (r.state === 'restored')
      w.logger.info(
        `archive batch ${batch.id}: every event of it is in raw_events (put back by a restore while it was deleting, or changed since it was written and kept); it is marked restored`,
      );
    batch = { ...batch, state: r.state };
    await faultPoint('deleted');
  }
  return outcome(r.deleted, r.kept);
}
