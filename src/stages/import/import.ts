// import: provider-native payloads from files into raw_events (SPEC §5). The file's format is
// detected (gzip by its magic bytes; NDJSON, a JSON array, concatenated values or one object of
// any layout), and every record ends as exactly one of: a new raw event, a duplicate of one
// stored (same id, same payload), or a dead letter that keeps the record (not JSON, too deep,
// invalid, an id the database cannot key, a different payload for a known id unless --update, a
// row the database refuses). A file is refused whole, nothing of it written, when it is binary or
// not JSON, or when none of its records is valid and they are another provider's payloads or too
// many to be a few bad records: it is the wrong --provider. A refused file is an outcome of that
// file: the files after it are still read, and the command exits 2 once all are.
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
import { providers } from '../../providers/index.js';
import type { Provider } from '../../providers/types.js';
import type { ProgressBar } from '../engine/progress.js';
import { withRun } from '../engine/with-run.js';
import { readRecords } from './records.js';
import { type Candidate, checkRecord, type ImportProblem } from './check.js';
import { FileRefused, type ImportSource, openSource } from './source.js';
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
  /** incomplete: a file was refused whole (the others were imported). */
  status: 'succeeded' | 'incomplete' | 'stopped';
  stopReason: 'signal' | undefined;
  stopSignal?: string | undefined;
  counts: { records: number; inserted: number; updated: number; duplicates: number; invalid: number; conflicts: number; resolved: number };
  /** The first problems (all are in raw_event_errors with stage 'import'). */
  problems: ImportProblem[];
  /** Files refused whole (binary, not JSON, not --provider's payloads): nothing of them is written; their records are not in `counts`. */
  refused: RefusedFile[];
  elapsedMs: number;
}

interface RefusedFile {
  file: string;
  /** The records read before it was refused (0 when its format was refused before any was read). */
  records: number;
  error: string;
  hint: string | undefined;
}

const SHOWN_PROBLEMS = 100;
const PRINTED_PROBLEMS = 10;
/**
 * Invalid records held at the start of a file until a valid one shows it is not the wrong
 * provider's file. Past them the file is read on without keeping anything; a valid record found
 * there has the file read again from its start (the invalid records then dead letters as they come).
 */
const LEADING_HELD = 1000;
/** A file with no valid record is refused as the wrong provider's with at least this many records (fewer are dead letters, unless another provider reads them). */
const WRONG_PROVIDER_MIN = 10;
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
    const refused: RefusedFile[] = [];
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
      let source: ImportSource;
      try {
        source = await openSource(file);
      } catch (err) {
        if (!(err instanceof FileRefused)) throw err;
        await refuse({ file, records: 0, error: err.message, hint: err.hint });
        return (await fs.promises.stat(file)).size;
      }
      // A valid record found only past the invalid ones held: read again, knowing the file is right.
      if ((await readSource(file, source, before, false)) === 'again') await readSource(file, await openSource(file), before, true);
      return source.size;
    }

    /**
     * One pass over a file. Until its first valid record (unless `valid` says there is one), its
     * invalid records are held, not written: if none is valid the file may be refused whole.
     */
    async function readSource(file: string, source: ImportSource, before: number, valid: boolean): Promise<'read' | 'again' | 'refused'> {
      let read = 0;
      let leading: DeadLetterOf<'import'>[] | undefined = valid ? undefined : [];
      let passed = 0; // invalid records past the ones held, not kept
      // Of the invalid records, those --provider could not identify at all: only they say the
      // file may be another provider's (an id too long or a time out of range says nothing of it).
      let unidentified = 0;
      let other: string | undefined; // another provider whose payload the first invalid record is
      let otherChecked = false;
      let batch: Candidate[] = [];
      let letters: DeadLetterOf<'import'>[] = [];
      const keep = (letter: DeadLetterOf<'import'>) => {
        note({ file, line: letter.context.line, error: letter.error });
        letters.push(letter);
      };
      for await (const record of readRecords(source.chunks, source.damage)) {
        read++;
        const checked = checkRecord(o, scope, file, record);
        if ('letter' in checked) {
          if (leading === undefined) keep(checked.letter);
          else {
            if (checked.letter.context.kind === 'validation') unidentified++;
            if (!otherChecked && checked.letter.context.kind === 'validation' && 'value' in record) {
              otherChecked = true;
              other = otherProvider(o.provider, record.value);
            }
            if (leading.length < LEADING_HELD) leading.push(checked.letter);
            else passed++;
          }
        } else {
          if (leading !== undefined) {
            if (passed > 0) return 'again';
            for (const letter of leading) keep(letter);
            leading = undefined;
          }
          batch.push(checked.candidate);
        }
        if (leading !== undefined && o.signal?.aborted) {
          // Nothing of the file written yet: the same command again reads it from its start.
          stopped = true;
          return 'read';
        }
        if (batch.length + letters.length >= o.batchSize) {
          await dispatch(batch, letters, before + source.readBytes());
          [batch, letters] = [[], []];
          if (o.signal?.aborted) {
            stopped = true;
            counts.records += read;
            return 'read';
          }
        }
      }
      const cut = source.damage();
      if (cut !== undefined) {
        o.logger.warn(
          `${file}: its gzip data stops before the end of the file (${cut}): the records before that point are read, the point itself is a dead letter, and whatever the file held after it is lost`,
        );
      }
      if (leading !== undefined && leading.length > 0) {
        const invalid = leading.length + passed;
        if (other !== undefined || unidentified >= WRONG_PROVIDER_MIN) {
          const first = leading[0]!;
          await refuse({
            file,
            records: read,
            error: `${file}: none of its ${invalid} record(s) is a valid ${o.provider.name} payload (${other ? `the first is a valid ${other} payload; ` : ''}first problem: line ${first.context.line}: ${first.error}); nothing of it was imported`,
            hint: "is --provider right, and is this a file of that provider's payloads (NDJSON, a JSON array or one JSON object)?",
          });
          return 'refused';
        }
        for (const letter of leading) keep(letter);
      }
      counts.records += read;
      if (read === 0) o.logger.warn(`${file}: no records: nothing to import`);
      await dispatch(batch, letters, before + source.size);
      return 'read';
    }

    /** A file refused whole: said now, listed in the result, its bytes counted as done. */
    async function refuse(r: RefusedFile): Promise<void> {
      refused.push(r);
      o.logger.warn(r.hint ? `${r.error} (${r.hint})` : r.error);
      if (!o.dryRun && run.id !== null) {
        const delta = { refused_files: 1, refused_records: r.records };
        await retryOnConnectionLoss(() => o.db.transaction((tx) => run.record(tx, delta)), {
          logger: o.logger,
          what: 'import: a refused file',
          forMs: o.reconnectMs ?? 120_000,
        });
      }
    }
    if (counts.invalid > printed)
      o.logger.warn(
        `… and ${counts.invalid - printed} more problem${counts.invalid - printed === 1 ? '' : 's'}${o.dryRun ? ' (a dry run keeps none)' : ', all kept in raw_event_errors (stage import)'}`,
      );
    if (!o.dryRun) {
      await retryOnConnectionLoss(() => writeSyncAudit(o, batchId, run.id, files, counts, refused, stopped), {
        logger: o.logger,
        what: 'import: sync_audit',
        forMs: o.reconnectMs ?? 120_000,
      });
    }
    return {
      runId: run.id,
      batchId,
      status: stopped ? 'stopped' : refused.length > 0 ? 'incomplete' : 'succeeded',
      stopReason: stopped ? 'signal' : undefined,
      stopSignal: stopped && typeof o.signal?.reason === 'string' ? o.signal.reason : undefined,
      counts,
      problems,
      refused,
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
  refused: RefusedFile[],
  stopped: boolean,
): Promise<void> {
  const refusedFiles = refused.map((r) => ({ file: path.resolve(r.file), records: r.records, error: r.error }));
  return insertSyncAudit(o.db, o.userId, o.provider.name, {
    batch_id: batchId,
    run_id: runId,
    files,
    counts,
    ...(refused.length ? { refused: refusedFiles } : {}),
    stopped,
  });
}

/** The name of another provider that reads `value` as a payload of its own, if one does. */
function otherProvider(provider: Provider, value: unknown): string | undefined {
  for (const other of Object.values(providers)) {
    if (other.name === provider.name) continue;
    try {
      other.identify(value);
      return other.name;
    } catch {
      // not this one's either
    }
  }
  return undefined;
}
