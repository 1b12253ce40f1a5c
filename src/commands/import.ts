import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { getProvider } from '../providers/index.js';
import { DEFAULT_BATCH_SIZE } from '../stages/engine/range.js';
import { checkFiles, importFiles, type ImportSummary } from '../stages/import/import.js';
import { addRangeOptions, exitCodeOf, withRunControls } from './batch-options.js';
import { parseFlags, uuidFlag, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

interface ImportFlags {
  provider: string;
  user: string;
  batchSize?: string;
  dryRun?: boolean;
  update?: boolean;
}

/** The summary; the problems themselves were printed on stderr as they were found (the first ten). */
function render(s: ImportSummary): string {
  const c = s.counts;
  const dry = s.runId === null;
  const parts = [`${c.records} records`, `${c.inserted} new`];
  if (c.updated > 0) parts.push(`${c.updated} replaced`);
  parts.push(`${c.duplicates} already there`);
  if (c.invalid > 0) {
    const conflicts = c.conflicts > 0 ? ` (${c.conflicts} with a different payload for a known id)` : '';
    parts.push(`${c.invalid} not imported${conflicts}${dry ? '' : ', kept in raw_event_errors (stage import)'}`);
  }
  if (c.resolved > 0) parts.push(`${c.resolved} earlier import error${c.resolved === 1 ? '' : 's'} resolved`);
  if (s.refused.length > 0) {
    const names = s.refused.map((r) => r.file).join(', ');
    parts.push(
      `${s.refused.length} file${s.refused.length === 1 ? '' : 's'} refused whole, nothing of ${s.refused.length === 1 ? 'it' : 'them'} imported: ${names}`,
    );
  }
  const stop = s.status === 'stopped' ? ` (stopped by ${s.stopSignal ?? 'a signal'}; the same command again goes on)` : '';
  return `import${dry ? ' (dry run: nothing written)' : ''}: ${parts.join(', ')} (batch ${s.batchId}, ${(s.elapsedMs / 1000).toFixed(1)} s)${stop}`;
}

async function runImport(ctx: Context, files: string[], flags: ImportFlags): Promise<number> {
  const provider = getProvider(flags.provider);
  const f = parseFlags({ user: uuidFlag, batchSize: wholeNumber(1, 50_000) }, flags);
  const userId = f.user ?? flags.user;
  const batchSize = f.batchSize ?? DEFAULT_BATCH_SIZE;
  checkFiles(files);
  const db = await ctx.db();
  const summary = await withRunControls(ctx, ({ progress, signal }) =>
    importFiles({
      db,
      clock: ctx.clock,
      logger: ctx.logger,
      files,
      provider,
      userId,
      batchSize,
      dryRun: flags.dryRun === true,
      update: flags.update === true,
      signal,
      bar: progress.start('import', 0, { unit: 'bytes' }),
      reconnectMs: ctx.config.reconnectForMs,
    }),
  );
  ctx.out.result(summary, () => render(summary));
  // A refused file is an input the command could not use (exit 2), told once the others are imported.
  const code = exitCodeOf(summary);
  return code === ExitCode.ok && summary.refused.length > 0 ? ExitCode.usage : code;
}

export function registerImport(cmd: Command, state: RunState): void {
  cmd
    .argument('<files...>', 'files of provider payloads: NDJSON, a JSON array, concatenated JSON values or one JSON object; gzip or not')
    .requiredOption('--provider <name>', 'gmail, twilio, instagram or webform')
    .requiredOption('--user <uuid>', 'the CRM user the events belong to')
    .option('--update', 'a known id whose payload changed replaces the stored one and is normalized again (default: kept as a conflict)');
  addRangeOptions(cmd, ['batchSize', 'dryRun'])
    .addHelpText(
      'after',
      `
The format is detected, not guessed from the name: gzip by its magic bytes; NDJSON (each line
on its own, a line holding an array gives its elements), a JSON array, concatenated JSON
values, or one JSON object however it is laid out. A binary or non-JSON file is refused whole,
and so is a file none of whose records is a valid payload of --provider when they are another
provider's payloads or number 10 or more: nothing of it is written, the other files are
imported, and the command exits 2. Files are streamed: their size does not matter.

Each payload's id becomes raw_events.source_id and its own time occurred_at. Every record ends
as exactly one of: imported; already there (the same id with the same payload: importing the
same files again adds nothing); or not imported and kept, with the record itself, in
raw_event_errors (stage import), the import going on: not JSON, nested over 1000 levels, over
64 MB, invalid for the provider, an id the database cannot key as it is (NUL, bytes that are
not UTF-8, over 2000 bytes: ids are never rewritten), a time outside 0001-9999, a different
payload for a known id (a re-delivery that changed; --update takes it instead), or refused by
the database. Every import gets a batch_id and a sync_audit row.

Examples:
  omni-ingest import fixtures/demo/gmail.ndjson --provider gmail --user 11111111-1111-4111-8111-111111111111
  omni-ingest import export-*.json.gz --provider twilio --user "$USER_ID" --json
  omni-ingest import corrected.ndjson --provider webform --user "$USER_ID" --update`,
    )
    .action(action<ImportFlags>(state, (ctx, flags, args) => runImport(ctx, args, flags)));
}
