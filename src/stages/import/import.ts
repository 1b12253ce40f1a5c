// import: provider-native payloads from NDJSON / JSON-array files into raw_events. Streams the
// files, writes in set-based batches, idempotent on (user_id, provider, source_id). A bad record
// is reported with its file and line, kept as a dead letter, and does not stop the import.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/connect.js';
import type { DeadLetterOf } from '../../dead-letters/letters.js';
import { writeDeadLetters } from '../../dead-letters/sql.js';
import { errorMessage, UsageError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { PayloadError, type Provider } from '../../providers/types.js';
import { jsonSafe } from '../../text.js';
import type { Counts } from '../engine/ledger.js';
import type { ProgressBar } from '../engine/progress.js';
import { withRun, type RunHandle } from '../engine/with-run.js';
import { readRecords } from './records.js';
import * as sql from './sql.js';

export interface ImportOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  files: string[];
  provider: Provider;
  userId: string;
  batchSize: number;
  dryRun: boolean;
  signal?: AbortSignal;
  bar?: ProgressBar;
}

interface ImportProblem {
  file: string;
  line: number;
  error: string;
}

export interface ImportSummary {
  runId: string | null;
  batchId: string;
  status: 'succeeded' | 'stopped';
  stopReason: 'signal' | undefined;
  counts: { records: number; inserted: number; duplicates: number; invalid: number };
  /** The first problems (all are in raw_event_errors with stage 'import'). */
  problems: ImportProblem[];
  elapsedMs: number;
}

const SHOWN_PROBLEMS = 100;

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

type ImportCount = 'records' | 'inserted' | 'duplicates' | 'invalid';

function emptyBatch(): { rows: sql.RawEventColumns; errors: DeadLetterOf<'import'>[] } {
  return {
    rows: { userId: [], provider: [], sourceId: [], payload: [], occurredAt: [], sourceMeta: [], batchId: [] },
    errors: [],
  };
}

export async function importFiles(o: ImportOptions): Promise<ImportSummary> {
  checkFiles(o.files);
  const batchId = randomUUID();
  const args = {
    files: o.files.map((f) => path.resolve(f)),
    provider: o.provider.name,
    user: o.userId,
    batchId,
    dryRun: o.dryRun || undefined,
  };
  return withRun(o.db, { command: 'import', args, dryRun: o.dryRun, logger: o.logger }, (run) => importInRun(o, run, batchId, args.files));
}

async function importInRun(o: ImportOptions, run: RunHandle, batchId: string, files: string[]): Promise<ImportSummary> {
  const started = o.clock.now().getTime();
  const runId = run.id;
  const counts = { records: 0, inserted: 0, duplicates: 0, invalid: 0 };
  const problems: ImportProblem[] = [];
  let batch = emptyBatch();
  let stopped = false;

  const flush = async () => {
    const valid = batch.rows.userId.length;
    const invalid = batch.errors.length;
    if (valid + invalid === 0) return;
    const current = batch;
    batch = emptyBatch();
    const inserted = o.dryRun
      ? 0
      : await o.db.transaction(async (tx) => {
          const n = await sql.insertRawEvents(tx, current.rows);
          await writeDeadLetters(tx, current.errors);
          const delta: Counts<ImportCount> = { records: valid + invalid, inserted: n, duplicates: valid - n, invalid };
          await run.record(tx, delta);
          return n;
        });
    counts.inserted += inserted;
    counts.duplicates += o.dryRun ? 0 : valid - inserted;
    o.bar?.increment(valid + invalid);
  };

  const problem = (file: string, line: number, error: string) => {
    counts.invalid++;
    if (problems.length < SHOWN_PROBLEMS) problems.push({ file, line, error });
    if (problems.length <= 10) o.logger.warn(`${file}:${line}: ${error}`);
    batch.errors.push({
      stage: 'import',
      rawEventId: null,
      userId: o.userId,
      provider: o.provider.name,
      error: `${path.basename(file)}:${line}: ${error}`,
      context: { file: path.resolve(file), line, batch_id: batchId },
    });
  };

  for (const file of o.files) {
    if (stopped) break;
    for await (const record of readRecords(file)) {
      counts.records++;
      if ('error' in record) {
        problem(file, record.line, record.error);
      } else {
        try {
          const payload = jsonSafe(record.value);
          const { sourceId, occurredAt } = o.provider.identify(payload);
          batch.rows.userId.push(o.userId);
          batch.rows.provider.push(o.provider.name);
          batch.rows.sourceId.push(sourceId);
          batch.rows.payload.push(JSON.stringify(payload));
          // A payload without a time of its own (a Twilio webhook) happened when it arrived.
          batch.rows.occurredAt.push(occurredAt ?? o.clock.now());
          batch.rows.sourceMeta.push(JSON.stringify({ imported_from: path.basename(file), line: record.line }));
          batch.rows.batchId.push(batchId);
        } catch (err) {
          if (!(err instanceof PayloadError)) throw err;
          problem(file, record.line, errorMessage(err));
        }
      }
      if (batch.rows.userId.length + batch.errors.length >= o.batchSize) {
        await flush();
        if (o.signal?.aborted) {
          stopped = true;
          break;
        }
      }
    }
  }
  await flush();
  if (counts.invalid > problems.length)
    o.logger.warn(`${counts.invalid - problems.length} more problems, all kept in raw_event_errors with stage 'import'`);
  if (!o.dryRun) await sql.insertSyncAudit(o.db, o.userId, o.provider.name, { batch_id: batchId, run_id: runId, files, counts, stopped });
  return {
    runId,
    batchId,
    status: stopped ? 'stopped' : 'succeeded',
    stopReason: stopped ? 'signal' : undefined,
    counts,
    problems,
    elapsedMs: o.clock.now().getTime() - started,
  };
}
