// One import record checked before it goes near the database: its id (never rewritten: an id
// with NUL, a lone surrogate, bytes that are not UTF-8, or too long for the keys is a dead
// letter, not a collision), its time (within what the database stores), its payload (made safe
// for jsonb). Every refusal is a dead letter that keeps the record.
import path from 'node:path';
import type { Clock } from '../../clock.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import { errorMessage } from '../../errors.js';
import { PayloadError, type Provider } from '../../providers/types.js';
import { jsonSafe } from '../../text.js';
import { MAX_KEY_BYTES } from '../normalize-map.js';
import type { KeptRecord, RecordResult } from './records.js';
import type { ImportRow } from './sql.js';

export interface ImportProblem {
  file: string;
  line: number;
  error: string;
}

/** A record ready to be written, with what its dead letter would keep if the database refuses it. */
export interface Candidate {
  row: ImportRow;
  line: number;
  file: string;
  /** What its dead letter keeps of the record, made when one is written. */
  kept: () => KeptRecord;
}

type ImportContext = DeadLetterOf<'import'>['context'];

/** Whose records an import writes: one user, one provider, one batch. */
export interface ImportScope {
  userId: string;
  provider: string;
  batchId: string;
}

export function importLetter(
  s: ImportScope,
  at: { file: string; line: number; record: KeptRecord },
  error: string,
  extra: Partial<ImportContext> = {},
): DeadLetterOf<'import'> {
  return {
    stage: 'import',
    rawEventId: null,
    userId: s.userId,
    provider: s.provider,
    error,
    context: { file: path.resolve(at.file), line: at.line, batch_id: s.batchId, record: at.record, ...extra },
  };
}

type WellFormed = { isWellFormed(): boolean };

/** Why the database could not key this id as it is, or undefined. */
function idProblem(id: string, invalidUtf8: boolean): string | undefined {
  const shown = JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id);
  if (id.includes('\0')) return `the id ${shown} holds a NUL character, which the database cannot store; ids are never rewritten`;
  if (!(id as unknown as WellFormed).isWellFormed()) return `the id ${shown} holds a lone UTF-16 surrogate; ids are never rewritten`;
  if (invalidUtf8 && id.includes('\ufffd'))
    return `the id ${shown} holds bytes that are not UTF-8; ids are never rewritten, and decoded they could collide with another`;
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_KEY_BYTES) return `the id is ${bytes} bytes long; the database keys take at most ${MAX_KEY_BYTES}`;
  return undefined;
}

function timeProblem(at: Date | null): string | undefined {
  if (at === null) return undefined;
  const year = Number.isFinite(at.getTime()) ? at.getUTCFullYear() : Number.NaN;
  return year >= 1 && year <= 9999
    ? undefined
    : `its time ${Number.isFinite(at.getTime()) ? at.toISOString() : '(invalid)'} is outside the years 0001-9999 the database stores`;
}

export function checkRecord(
  o: { provider: Provider; clock: Clock },
  scope: ImportScope,
  file: string,
  rec: RecordResult,
): { candidate: Candidate } | { letter: DeadLetterOf<'import'> } {
  const letter = (error: string, extra: Partial<ImportContext>) => ({
    letter: importLetter(scope, { file, line: rec.line, record: 'error' in rec ? rec.record : rec.kept() }, error, extra),
  });
  if ('error' in rec) return letter(rec.error, { kind: rec.kind });
  let identified: { sourceId: string; occurredAt: Date | null };
  try {
    identified = o.provider.identify(rec.value);
  } catch (err) {
    if (!(err instanceof PayloadError)) throw err;
    return letter(errorMessage(err), { kind: 'validation', issues: err.issues });
  }
  const id = idProblem(identified.sourceId, rec.invalidUtf8);
  if (id) return letter(id, { kind: 'id' });
  const time = timeProblem(identified.occurredAt);
  if (time) return letter(time, { kind: 'time', source_id: identified.sourceId });
  // A payload without a time of its own (a Twilio webhook) happened when it arrived.
  const occurredAt = identified.occurredAt ?? o.clock.now();
  return {
    candidate: {
      row: {
        source_id: identified.sourceId,
        payload: JSON.stringify(jsonSafe(rec.value)),
        occurred_at: occurredAt.toISOString(),
        source_meta: JSON.stringify({ imported_from: path.basename(file), line: rec.line }),
      },
      line: rec.line,
      file,
      kept: rec.kept,
    },
  };
}
