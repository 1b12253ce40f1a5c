// `archive restore --from <manifest-uri>`: puts an archived batch's events back into raw_events.
// Every part is read and checked against the manifest — and the manifest against what this
// database recorded of the batch, when it knows it — first; only then is anything inserted, in
// short transactions of set-based inserts that leave rows already there alone (by id, or by
// their (user, provider, source_id)): restoring twice adds nothing. Restored events are taken off
// the normalize queue unless --renormalize asks for them to be normalized again. The batch is
// marked restored only once every event it archived is back.
import type { Db } from '../db/connect.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { findBatch } from './batch-read.js';
import { type BatchRow, markRestored } from './batch-sql.js';
import { checkArchive, compareIds } from './check.js';
import { ArchiveMismatchError } from './errors.js';
import { MANIFEST_NAME } from './manifest.js';
import { lineId, readPartBytes } from './parts.js';
import { claimsNotHot, dropClaims, insertLines, linesState, unqueue } from './restore-sql.js';
import { claimedIds, utcSession } from './rows-sql.js';
import { type ArchiveTarget, joinKey } from './store.js';

const INSERT_ROWS = 1_000;

/** What became of a manifest's events (one manifest's, or a whole target's summed). */
export interface RestoreCounts {
  rows: number;
  /** Put back by this run (a dry run: would be). */
  restored: number;
  /** Already in raw_events under the same id, as archived (restored before, or never deleted). */
  present: number;
  /** In raw_events under the same id as another version (changed since, or a newer archive of it restored): kept as it is. */
  otherVersion: number;
  /** Not put back: another batch archived a newer version of it (restore that batch's manifest). */
  newerElsewhere: number;
  /** Not put back: another event holds their (user, provider, source_id) now. */
  conflicts: number;
}

export interface RestoreResult extends RestoreCounts {
  manifestUri: string;
  batchId: string;
  /** restored: every event is back; incomplete: some are not (problem says which); failed: nothing was tried. */
  status: 'restored' | 'incomplete' | 'failed';
  problem: string | null;
  renormalize: boolean;
  dryRun: boolean;
  elapsedMs: number;
}

export interface RestoreOptions {
  db: Db;
  target: ArchiveTarget;
  /** The manifest's key in `target` (manifest.json). */
  key: string;
  renormalize: boolean;
  /** Read and check everything, count what would be put back, write nothing. */
  dryRun: boolean;
  logger: Logger;
}

export async function restoreArchive(o: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const prefix = o.key === MANIFEST_NAME ? '' : o.key.slice(0, -(MANIFEST_NAME.length + 1));
  if (joinKey(prefix, MANIFEST_NAME) !== o.key) throw new UsageError(`${o.target.objectUri(o.key)} is not a manifest (${MANIFEST_NAME})`);
  // The database's record of the batch, when it has one, is trusted over the manifest: a manifest
  // edited to match parts removed from it would otherwise restore less and call it done.
  let known: BatchRow | undefined;
  const check = await checkArchive(o.target, prefix, {
    collect: true,
    expected: async (m) => {
      known = await findBatch(o.db, m.batch_id);
      return known && known.state !== 'planned' ? { rows: known.rows, bytes: known.bytes, parts: known.parts } : undefined;
    },
  });
  if (check.missing)
    throw new UsageError(`no manifest at ${check.manifestUri}: not found`, {
      hint: '`archive list` shows the manifests of the batches; --from <target> restores every manifest under it',
    });
  if (check.ok && known && known.state !== 'planned') {
    const { missing } = compareIds(await claimedIds(o.db, known.id), check.ids);
    if (missing.length > 0)
      check.problems.push(
        `${missing.length} event(s) this database archived in batch ${known.id} are in none of its parts (e.g. ${missing.slice(0, 3).join(', ')})`,
      );
  }
  if (check.problems.length > 0 || !check.manifest)
    throw new ArchiveMismatchError(`${check.manifestUri} failed verification, nothing restored: ${check.problems.join('; ')}`, {
      hint: 'the archive on the target is damaged or incomplete; `archive verify --from` shows every problem',
    });
  const manifest = check.manifest;
  const tally = { restored: 0, present: 0, otherVersion: 0, newerElsewhere: 0, conflicts: 0 };
  // The parts are read a second time to insert them: a line whose event the check did not read
  // (the object replaced meanwhile) is refused before it is written, not found out at the end.
  const checked = new Set(check.ids);
  for (const part of manifest.parts) {
    const uri = o.target.objectUri(joinKey(prefix, part.name));
    const reading = await readPartBytes(o.target, joinKey(prefix, part.name), INSERT_ROWS);
    for await (const bytes of reading.lines) {
      const ids = bytes.map(lineId);
      if (ids.some((id) => typeof id !== 'string' || !checked.has(id)))
        throw new ArchiveMismatchError(`${uri} changed while it was restored: it holds a line the check did not read`, {
          hint: 'what was inserted is of events the manifest lists; run the restore again once the target is stable',
        });
      const lines = bytes.map((l) => l.toString('utf8'));
      await o.db.transaction(async (tx) => {
        await utcSession(tx);
        const inserted = o.dryRun ? [] : await insertLines(tx, lines, manifest.batch_id);
        if (!o.renormalize && inserted.length > 0) await unqueue(tx, inserted);
        const s = await linesState(tx, lines, manifest.batch_id);
        if (!o.dryRun) await dropClaims(tx, ids as string[]);
        tally.restored += o.dryRun ? s.free : inserted.length;
        tally.present += s.same - inserted.length;
        tally.otherVersion += s.otherVersion;
        tally.newerElsewhere += s.newerElsewhere;
        tally.conflicts += s.sourceTaken + (o.dryRun ? 0 : s.free);
      });
    }
    // The part was checked a moment ago; reading it again must give the same bytes.
    if (reading.tally().sha256 !== part.sha256)
      throw new ArchiveMismatchError(`${uri} changed while it was restored`, {
        hint: 'what was inserted is of events the manifest lists, each line a whole row; run the restore again once the target is stable',
      });
  }
  const problem = await settle(o, known, tally.conflicts);
  if (problem) o.logger.warn(problem);
  if (tally.otherVersion > 0)
    o.logger.warn(
      `${tally.otherVersion} event(s) of ${check.manifestUri} kept as raw_events holds them: another version of each (changed since, or a newer archive of it restored)`,
    );
  return {
    manifestUri: check.manifestUri,
    batchId: manifest.batch_id,
    status: problem ? 'incomplete' : 'restored',
    problem,
    rows: manifest.rows,
    ...tally,
    renormalize: o.renormalize,
    dryRun: o.dryRun,
    elapsedMs: Math.round(performance.now() - started),
  };
}

/** Marks the batch restored when every event it archived is back; else says what is not. */
async function settle(o: RestoreOptions, known: BatchRow | undefined, conflicts: number): Promise<string | null> {
  const left = known && !o.dryRun ? await claimsNotHot(o.db, known.id) : { n: 0, sample: [] };
  if (left.n === 0 && conflicts === 0) {
    if (known && !o.dryRun) await markRestored(o.db, known.id);
    return null;
  }
  const n = Math.max(left.n, conflicts);
  const e = left.sample.length > 0 ? ` (e.g. ${left.sample.join(', ')})` : '';
  const stays = known ? `; batch ${known.id} stays ${known.state}` : '';
  return `${n} archived event(s) ${o.dryRun ? 'would not be' : 'not'} restored${e}: another event holds their (user, provider, source_id) in raw_events${stays}`;
}
