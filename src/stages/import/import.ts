// import: provider-native payloads from files into raw_events (SPEC §5). The file's format is
// detected (gzip by its magic bytes; NDJSON, a JSON array, concatenated values or one object of
// any layout), a binary or wrong-format file is refused whole, and every record ends as exactly
// one of: a new raw event, a duplicate of one stored (same id, same payload), or a dead letter
// that keeps the record (not JSON, too deep, invalid, an id the database cannot key, a different
// payload for a known id unless --update, a row the database refuses). A file none of whose
// records is valid is refused (exit 2) with nothing of it written: it is the wrong --provider.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/connect.js';
import { retryOnConnectionLoss } from '../../db/retry.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import { writeDeadLetters } from '../../dead-letters/sql.js';
import { UsageError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Provider } from '../../providers/types.js';
import type { ProgressBar } from '../engine/progress.js';
import { withRun } from '../engine/with-run.js';
import { readRecords } from './records.js';
import { type Candidate, checkRecord, type ImportProblem } from './check.js';
import { openSource } from './source.js';
import { insertSyncAudit } from './sql.js';
import { type BatchResult, writeBatch } from './write.js';
import { Writes } from './writes.js';

export interface ImportOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  files: string[];
  provider: Provider;
  userId: string;
  batchSize: number;
  dryRun: boolean;
  /** A known id with a different payload replaces the stored one (and is normalized again). */
  update?: boolean | undefined;
  signal?: AbortSignal | undefined;
  bar?: ProgressBar | undefined;
  reconnectMs?: number | undefined;
}

export interface ImportSummary {
  runId: string | null;
  batchId: string;
  status: 'succeeded' | 'stopped';
  stopReason: 'signal' | undefined;
  stopSignal?: string | undefined;
  counts: { records: number; inserted: number; updated: number; duplicates: number; invalid: number; conflicts: number; resolved: number };
  /** The first problems (all are in raw_event_errors with stage 'import'). */
  problems: ImportProblem[];
  elapsedMs: number;
}

const SHOWN_PROBLEMS = 100;
const PRINTED_PROBLEMS = 10;
/** Invalid records in a row at the start of a file before it is refused as the wrong format or provider. */
const LEADING_INVALID_MAX = 1000;
/** Batches written at once, each on a connection of its own (one on the embedded database). */
const WRITERS = 2;

export function checkFiles(files: string[]): void {
  if (files.length === 0) throw new UsageError('import needs at least one file');
  for (const file of files) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new UsageError(`cannot read ${file}: no such file`);
    }
    if (!stat.isFile()) throw new UsageError(`${file} is not a file`);
  }
}

export async function importFiles(o: ImportOptions): Promise<ImportSummary> {
  checkFiles(o.files);
  const batchId = randomUUID();
  const files = o.files.map((f) => path.resolve(f));
  const args = { files, provider: o.provider.name, user: o.userId, batchId, update: o.update || undefined, dryRun: o.dryRun || undefined };
  return withRun(o.db, { command: 'import', args, dryRun: o.dryRun, logger: o.logger, reconnectMs: o.reconnectMs }, async (run) => {
    const started = o.clock.now().getTime();
    const scope = { userId: o.userId, provider: o.provider.name, batchId };
    const counts = { records: 0, inserted: 0, updated: 0, duplicates: 0, invalid: 0, conflicts: 0, resolved: 0 };
    const problems: ImportProblem[] = [];
    // stderr gets the first few; the result (--json) keeps up to SHOWN_PROBLEMS.
    let printed = 0;
    const note = (p: ImportProblem) => {
      if (problems.length < SHOWN_PROBLEMS) problems.push(p);
      if (printed < PRINTED_PROBLEMS) {
        printed++;
        o.logger.warn(`${p.file}:${p.line}: ${p.error}`);
      }
    };
    const total = o.files.reduce((n, f) => n + fs.statSync(f).size, 0);
    o.bar?.setTotal(total);
    let stopped = false;

    const flush = async (candidates: Candidate[], letters: DeadLetterOf<'import'>[]) => {
      if (candidates.length + letters.length === 0) return;
      const result: BatchResult = o.dryRun
        ? { inserted: candidates.length, updated: 0, duplicates: 0, letters, conflicts: 0, resolved: 0 }
        : await retryOnConnectionLoss(
            () =>
              o.db.transaction(async (tx) => {
                const r = await writeBatch(tx, { ...scope, update: o.update === true, runId: run.id }, candidates, letters);
                await writeDeadLetters(tx, r.letters);
                const delta = {
                  ...(r.resolved ? { resolved: r.resolved } : {}),
                  records: candidates.length + letters.length,
                  inserted: r.inserted,
                  updated: r.updated,
                  duplicates: r.duplicates,
                  invalid: r.letters.length,
                };
                await run.record(tx, delta);
                return r;
              }),
            { logger: o.logger, what: 'import: batch', forMs: o.reconnectMs ?? 120_000 },
          );
      counts.inserted += result.inserted;
      counts.updated += result.updated;
      counts.duplicates += result.duplicates;
      counts.conflicts += result.conflicts;
      counts.resolved += result.resolved;
      counts.invalid += result.letters.length;
      for (const l of result.letters.slice(letters.length)) note({ file: l.context.file, line: l.context.line, error: l.error });
    };

    // Batches are written while the next is read (see writes.ts); the progress bar counts the
    // bytes of each batch once it is written.
    const writes = new Writes(Math.min(WRITERS, o.db.maxConnections));
    let handed = 0; // bytes of the files handed on in batches
    const dispatch = async (candidates: Candidate[], letters: DeadLetterOf<'import'>[], upTo: number) => {
      const bytes = upTo - handed;
      handed = upTo;
      await writes.start(new Set(candidates.map((c) => c.row.source_id)), async () => {
        await flush(candidates, letters);
        o.bar?.increment(bytes);
      });
    };
    let before = 0; // bytes of the files read whole
    try {
      for (const file of o.files) {
        if (stopped) break;
        before += await readFile(file, before);
      }
    } catch (err) {
      // The writes in flight still end (each commits or rolls back whole) before the read's error
      // is told: it is the first that went wrong.
      await writes.abandon();
      throw err;
    }
    await writes.drain();

    /** Reads, checks and hands on one file's records in batches; returns its size. */
    async function readFile(file: string, before: number): Promise<number> {
      const source = await openSource(file);
      let valid = 0;
      let leading: DeadLetterOf<'import'>[] = [];
      let batch: Candidate[] = [];
      let letters: DeadLetterOf<'import'>[] = [];
      for await (const record of readRecords(source.chunks)) {
        counts.records++;
        const checked = checkRecord(o, scope, file, record);
        if ('letter' in checked) {
          note({ file, line: record.line, error: checked.letter.error });
          if (valid === 0) {
            leading.push(checked.letter);
            if (leading.length > LEADING_INVALID_MAX) break;
          } else letters.push(checked.letter);
        } else {
          if (valid++ === 0) {
            letters.push(...leading);
            leading = [];
          }
          batch.push(checked.candidate);
        }
        if (batch.length + letters.length >= o.batchSize) {
          await dispatch(batch, letters, before + source.readBytes());
          [batch, letters] = [[], []];
          if (o.signal?.aborted) {
            stopped = true;
            break;
          }
        }
      }
      if (valid === 0 && leading.length > 0) {
        counts.records -= leading.length; // refused whole: none of its records counts as imported or kept
        throw new UsageError(
          `${file}: ${leading.length > LEADING_INVALID_MAX ? `the first ${LEADING_INVALID_MAX} records are` : `none of its ${leading.length} record(s) is`} a valid ${o.provider.name} payload (first: line ${leading[0]!.context.line}: ${leading[0]!.error}); nothing of it was imported`,
          { hint: "is --provider right, and is this a file of that provider's payloads (NDJSON, a JSON array or one JSON object)?" },
        );
      }
      if (valid === 0) o.logger.warn(`${file}: no records: nothing to import`);
      await dispatch(batch, letters, before + source.size);
      return source.size;
    }
    if (counts.invalid > printed)
      o.logger.warn(
        `… and ${counts.invalid - printed} more problem${counts.invalid - printed === 1 ? '' : 's'}${o.dryRun ? ' (a dry run keeps none)' : ', all kept in raw_event_errors (stage import)'}`,
      );
    if (!o.dryRun) {
      await retryOnConnectionLoss(() => writeSyncAudit(o, batchId, run.id, files, counts, stopped), {
        logger: o.logger,
        what: 'import: sync_audit',
        forMs: o.reconnectMs ?? 120_000,
      });
    }
    return {
      runId: run.id,
      batchId,
      status: stopped ? 'stopped' : 'succeeded',
      stopReason: stopped ? 'signal' : undefined,
      stopSignal: stopped && typeof o.signal?.reason === 'string' ? o.signal.reason : undefined,
      counts,
      problems,
      elapsedMs: o.clock.now().getTime() - started,
    };
  });
}

function writeSyncAudit(
  o: ImportOptions,
  batchId: string,
  runId: string | null,
  files: string[],
  counts: object,
  stopped: boolean,
): Promise<void> {
  return insertSyncAudit(o.db, o.userId, o.provider.name, { batch_id: batchId, run_id: runId, files, counts, stopped });
}
