// `archive restore --from <manifest-uri>`: puts an archived batch's events back into raw_events.
// Every part is read and checked against the manifest first; only then is anything inserted, in
// short transactions of set-based inserts that leave rows already there alone (by id, or by
// their (user, provider, source_id)): restoring twice adds nothing. Restored events are taken off
// the normalize queue unless --renormalize asks for them to be normalized again.
import type { Db } from '../db/connect.js';
import type { Logger } from '../logger.js';
import { getBatch, markRestored } from './batch-sql.js';
import { checkArchive } from './check.js';
import { ArchiveMismatchError } from './errors.js';
import { MANIFEST_NAME } from './manifest.js';
import { readPart } from './parts.js';
import { countHot, dropClaims, insertLines, unqueue } from './rows-sql.js';
import { type ArchiveTarget, joinKey } from './store.js';

const INSERT_ROWS = 1_000;

export interface RestoreResult {
  manifestUri: string;
  batchId: string;
  rows: number;
  /** Put back by this run. */
  restored: number;
  /** Already in raw_events under the same id (restored before, or never deleted). */
  present: number;
  /** Not put back: another event holds their (user, provider, source_id) now. */
  conflicts: number;
  renormalize: boolean;
  elapsedMs: number;
}

export interface RestoreOptions {
  db: Db;
  target: ArchiveTarget;
  /** The manifest's key in `target` (manifest.json). */
  key: string;
  renormalize: boolean;
  logger: Logger;
}

export async function restoreArchive(o: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const prefix = o.key === MANIFEST_NAME ? '' : o.key.slice(0, -(MANIFEST_NAME.length + 1));
  if (joinKey(prefix, MANIFEST_NAME) !== o.key)
    throw new ArchiveMismatchError(`${o.target.objectUri(o.key)} is not a manifest (${MANIFEST_NAME})`);
  const check = await checkArchive(o.target, prefix, { collect: false });
  if (!check.ok || !check.manifest)
    throw new ArchiveMismatchError(`${check.manifestUri} failed verification, nothing restored: ${check.problems.join('; ')}`, {
      hint: 'the archive on the target is damaged or incomplete; `archive verify --from` shows every problem',
    });
  const manifest = check.manifest;
  let restored = 0;
  let present = 0;
  for (const part of manifest.parts) {
    const reading = await readPart(o.target, joinKey(prefix, part.name), INSERT_ROWS);
    for await (const lines of reading.lines) {
      const r = await o.db.transaction(async (tx) => {
        const inserted = await insertLines(tx, lines);
        if (!o.renormalize && inserted.length > 0) await unqueue(tx, inserted);
        const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
        await dropClaims(tx, ids);
        return { inserted: inserted.length, hot: await countHot(tx, ids) };
      });
      restored += r.inserted;
      present += r.hot - r.inserted;
    }
    // The part was checked a moment ago; reading it again must give the same bytes.
    if (reading.tally().sha256 !== part.sha256)
      throw new ArchiveMismatchError(`${o.target.objectUri(joinKey(prefix, part.name))} changed while it was restored`, {
        hint: 'what was inserted is intact (each line is a whole row); run the restore again once the target is stable',
      });
  }
  const batch = await getBatch(o.db, manifest.batch_id).catch(() => undefined);
  if (batch) await markRestored(o.db, batch.id);
  const conflicts = manifest.rows - restored - present;
  if (conflicts > 0)
    o.logger.warn(`${conflicts} archived event(s) not restored: an event with the same (user, provider, source_id) is in raw_events now`);
  return {
    manifestUri: check.manifestUri,
    batchId: manifest.batch_id,
    rows: manifest.rows,
    restored,
    present,
    conflicts,
    renormalize: o.renormalize,
    elapsedMs: Math.round(performance.now() - started),
  };
}

export interface RestoreAllResult {
  manifests: RestoreResult[];
  rows: number;
  restored: number;
  present: number;
  conflicts: number;
}

/** Every manifest under a target URI, restored in key order (each checked before its rows go back). */
export async function restoreAll(o: Omit<RestoreOptions, 'key'>): Promise<RestoreAllResult> {
  const keys = (await o.target.list('')).filter((k) => k === MANIFEST_NAME || k.endsWith(`/${MANIFEST_NAME}`));
  const manifests: RestoreResult[] = [];
  for (const key of keys) manifests.push(await restoreArchive({ ...o, key }));
  const sum = (k: 'rows' | 'restored' | 'present' | 'conflicts') => manifests.reduce((n, m) => n + m[k], 0);
  return { manifests, rows: sum('rows'), restored: sum('restored'), present: sum('present'), conflicts: sum('conflicts') };
}
