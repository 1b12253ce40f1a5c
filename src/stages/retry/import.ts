// Retrying import errors: the record each kept is parsed and checked again (after a provider fix
// shipped, the same bytes may now be valid) and written like any import record, the error
// resolved in the same transaction. Errors are claimed FOR UPDATE SKIP LOCKED, so several
// processes share the work and none retries an error twice.
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import type { ErrorSelection } from '../../dead-letters/select.js';
import { writeDeadLetters } from '../../dead-letters/sql.js';
import type { Logger } from '../../logger.js';
import { providers } from '../../providers/index.js';
import type { Counts } from '../engine/ledger.js';
import type { RunHandle } from '../engine/with-run.js';
import { type Candidate, checkRecord } from '../import/check.js';
import { type KeptRecord, readRecords, type RecordResult } from '../import/records.js';
import { writeBatch } from '../import/write.js';
import { claimOpenErrors, type OpenError, resolveErrorsById } from './sql.js';

export interface ImportRetryOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  selection: ErrorSelection;
  batchSize: number;
  limit: number;
  batchId: string;
  run: RunHandle;
  signal: AbortSignal;
  reconnectMs: number;
}

/** Why an import error cannot be retried, or undefined when its record can be read again. */
export function notRetryable(e: Pick<OpenError, 'context' | 'provider' | 'user_id'>): string | undefined {
  const record = e.context.record as Partial<KeptRecord> | undefined;
  if (!record || typeof record.text !== 'string') return 'the record was not kept (an error from before records were kept)';
  if (record.truncated) return `the record was ${record.bytes} bytes, more than was kept: re-import the file it came from`;
  if (!e.provider || !providers[e.provider]) return `unknown provider ${JSON.stringify(e.provider)}`;
  if (!e.user_id) return 'the error names no user';
  return undefined;
}

/** The kept record read again, as the import read it: same line, same SHA-256 (its key). */
async function reread(e: OpenError): Promise<RecordResult | undefined> {
  const kept = e.context.record as KeptRecord;
  const line = typeof e.context.line === 'number' ? e.context.line : 1;
  const results: RecordResult[] = [];
  for await (const r of readRecords(
    (async function* () {
      yield Buffer.from(kept.text, 'utf8');
    })(),
  ))
    results.push(r);
  const only = results.length === 1 ? results[0]! : undefined;
  if (!only) return undefined;
  return 'error' in only ? { ...only, line, record: kept } : { ...only, line, kept: () => kept };
}

export async function retryImportErrors(o: ImportRetryOptions): Promise<Counts> {
  const total: Counts = {};
  let after: string | undefined;
  let remaining = o.limit;
  while (remaining > 0 && !o.signal.aborted) {
    const size = Math.min(o.batchSize, remaining);
    const page = await retryOnConnectionLoss(
      () =>
        o.db.transaction(async (tx) => {
          const claimed = await claimOpenErrors(tx, o.selection, 'import', after, size);
          const counts: Counts = { events: claimed.length, skipped: 0 };
          const ok: string[] = [];
          const letters: DeadLetterOf<'import'>[] = [];
          // One write per user and provider: the scope of an import.
          const groups = new Map<string, { e: OpenError; candidate: Candidate }[]>();
          for (const e of claimed) {
            if (notRetryable(e)) {
              counts.skipped = (counts.skipped ?? 0) + 1;
              continue;
            }
            const scope = { userId: e.user_id!, provider: e.provider!, batchId: o.batchId };
            const file = typeof e.context.file === 'string' ? e.context.file : '(kept record)';
            const rec = await reread(e);
            const checked = rec
              ? checkRecord({ provider: providers[e.provider!]!, clock: o.clock }, scope, file, rec)
              : { letter: undefined };
            if ('candidate' in checked) {
              const key = `${scope.userId}/${scope.provider}`;
              groups.set(key, [...(groups.get(key) ?? []), { e, candidate: checked.candidate }]);
            } else if (checked.letter) letters.push(checked.letter);
            else counts.skipped = (counts.skipped ?? 0) + 1;
          }
          for (const members of groups.values()) {
            const { e } = members[0]!;
            const scope = { userId: e.user_id!, provider: e.provider!, batchId: o.batchId, update: false, runId: o.run.id };
            const r = await writeBatch(
              tx,
              scope,
              members.map((m) => m.candidate),
              [],
            );
            const failed = new Set(r.letters.map((l) => l.context.record?.sha256));
            for (const m of members) if (!failed.has(m.candidate.kept().sha256)) ok.push(m.e.id);
            letters.push(...r.letters);
            counts.inserted = (counts.inserted ?? 0) + r.inserted;
            counts.duplicates = (counts.duplicates ?? 0) + r.duplicates;
            counts.resolved = (counts.resolved ?? 0) + r.resolved;
          }
          const written = await writeDeadLetters(tx, letters);
          counts.failed_again = written.recurring;
          counts.resolved = (counts.resolved ?? 0) + (await resolveErrorsById(tx, ok, o.run.id, 'import retry succeeded'));
          await o.run.record(tx, prefixed('import', counts));
          return { claimed, counts };
        }),
      { logger: o.logger, what: 'errors retry: import', forMs: o.reconnectMs },
    );
    if (page.claimed.length === 0) break;
    after = page.claimed.at(-1)!.id;
    remaining -= page.claimed.length;
    for (const [k, v] of Object.entries(page.counts)) total[k] = (total[k] ?? 0) + (v ?? 0);
  }
  return total;
}

/** Counts of one stage in the retry run's ledger row: `import.resolved`, `normalize.inserted`. */
export function prefixed(stage: string, counts: Counts): Counts {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [`${stage}.${k}`, v]));
}
