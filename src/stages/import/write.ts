// Writing one batch of import records, in the caller's transaction: new ids inserted, known ids
// with the same payload counted as duplicates, known ids with a different payload kept as
// dead letters of their own kind (`conflict`) — or, with --update, replaced and normalized again
// — and rows the database refuses isolated and dead-lettered without sinking the batch.
import path from 'node:path';
import type { Queryable } from '../../db/connect.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import { resolveImportErrors } from '../../dead-letters/sql.js';
import { writeIsolating } from '../engine/isolate.js';
import { type Candidate, type ImportScope, importLetter } from './check.js';
import * as sql from './sql.js';

export interface BatchResult {
  inserted: number;
  updated: number;
  duplicates: number;
  conflicts: number;
  /** Open import errors this batch made obsolete (their record is now stored). */
  resolved: number;
  /** The batch's dead letters: those passed in, then the conflicts and refusals found here. */
  letters: DeadLetterOf<'import'>[];
}

interface Scope extends ImportScope {
  update: boolean;
  runId: string | null;
}

const at = (c: Candidate) => ({ file: c.file, line: c.line, record: c.kept() });

function conflictLetter(s: Scope, c: Candidate, why: string): DeadLetterOf<'import'> {
  return importLetter(s, at(c), why, { kind: 'conflict', source_id: c.row.source_id });
}

/**
 * Whether two payloads (JSON text) are the same as jsonb compares them, the way a later batch
 * compares a record with the stored one: key order and layout do not matter (a key given twice
 * was read last-wins, as jsonb reads it, when the record was parsed).
 */
function samePayload(a: string, b: string): boolean {
  return a === b || sameJson(JSON.parse(a), JSON.parse(b));
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((x, i) => sameJson(x, other[i]));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => Object.hasOwn(y, k) && sameJson(x[k], y[k]));
}

export async function writeBatch(
  tx: Queryable,
  s: Scope,
  candidates: Candidate[],
  letters: DeadLetterOf<'import'>[],
): Promise<BatchResult> {
  const out: BatchResult = { inserted: 0, updated: 0, duplicates: 0, conflicts: 0, resolved: 0, letters: [...letters] };
  // The same id twice in one batch: the same payload is a duplicate; another is a conflict (or,
  // with --update, the later one wins, as it would across batches).
  const byId = new Map<string, Candidate>();
  for (const c of candidates) {
    const earlier = byId.get(c.row.source_id);
    if (!earlier) byId.set(c.row.source_id, c);
    else if (samePayload(earlier.row.payload, c.row.payload)) out.duplicates++;
    else if (s.update) {
      byId.set(c.row.source_id, c);
      out.duplicates++;
    } else {
      out.conflicts++;
      out.letters.push(
        conflictLetter(
          s,
          c,
          `id ${JSON.stringify(c.row.source_id)} appears earlier in this import with a different payload (line ${earlier.line}); this one is kept here, not imported (import --update replaces)`,
        ),
      );
    }
  }
  const unique = [...byId.values()];
  const { result, rejected } = await writeIsolating(
    tx,
    unique,
    (part) =>
      sql.writeRawEvents(
        tx,
        s,
        part.map((c) => c.row),
      ),
    (a, b) => ({ inserted: [...a.inserted, ...b.inserted], updated: [...a.updated, ...b.updated] }),
    { inserted: [] as string[], updated: [] as string[] },
  );
  for (const { row: c, error } of rejected) {
    out.letters.push(
      importLetter(s, at(c), `the database refused it: ${error.message}`, {
        kind: 'database',
        source_id: c.row.source_id,
        sqlstate: error.sqlState,
      }),
    );
  }
  out.inserted = result.inserted.length;
  out.updated = result.updated.length;
  const written = new Set([...result.inserted, ...result.updated, ...rejected.map((r) => r.row.row.source_id)]);
  const known = unique.filter((c) => !written.has(c.row.source_id));
  const differing = s.update
    ? new Set<string>()
    : await sql.differingPayloads(
        tx,
        s,
        known.map((c) => c.row),
      );
  for (const c of known) {
    if (!differing.has(c.row.source_id)) out.duplicates++;
    else {
      out.conflicts++;
      out.letters.push(
        conflictLetter(
          s,
          c,
          `id ${JSON.stringify(c.row.source_id)} is already imported with a different payload: a re-delivery that changed; kept here, not imported (import --update replaces it and normalizes it again)`,
        ),
      );
    }
  }
  out.resolved = await resolveStored(tx, s, candidates, out.letters, [...result.inserted, ...result.updated]);
  return out;
}

/**
 * Closes the open import errors whose record is now stored: errors about an id this batch
 * inserted or replaced (a record fixed and imported again), and errors `errors export` wrote to
 * a line of this file that is now imported (a duplicate too: the fixed record matches what is
 * stored). A mere duplicate of an id does not close a conflict about that id: that different
 * payload is still not stored.
 */
async function resolveStored(
  tx: Queryable,
  s: Scope,
  candidates: Candidate[],
  letters: DeadLetterOf<'import'>[],
  storedIds: string[],
): Promise<number> {
  const failed = new Set(letters.map((l) => `${l.context.file}\u0001${l.context.line}`));
  const byFile = new Map<string, number[]>();
  for (const c of candidates) {
    const file = path.resolve(c.file);
    if (failed.has(`${file}\u0001${c.line}`)) continue;
    byFile.set(file, [...(byFile.get(file) ?? []), c.line]);
  }
  let resolved = 0;
  const files = byFile.size === 0 ? [[undefined, []] as const] : [...byFile];
  for (const [i, [file, lines]] of files.entries()) {
    resolved += await resolveImportErrors(tx, {
      userId: s.userId,
      provider: s.provider,
      sourceIds: i === 0 ? storedIds : [],
      exportFile: file,
      exportLines: [...lines],
      runId: s.runId,
    });
  }
  return resolved;
}
