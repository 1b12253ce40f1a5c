import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { getProvider } from '../providers/index.js';
import { DEFAULT_BATCH_SIZE } from '../stages/engine/range.js';
import { checkFiles, importFiles, type ImportSummary } from '../stages/import/import.js';
import { addRangeOptions, withRunControls } from './batch-options.js';
import { parseFlags, uuidFlag, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

interface ImportFlags {
  provider: string;
  user: string;
  batchSize?: string;
  dryRun?: boolean;
}

function render(s: ImportSummary): string[] {
  const c = s.counts;
  return [
    ...s.problems.map((p) => `  ${p.file}:${p.line}: ${p.error}`),
    `import${s.runId ? '' : ' (dry run)'}: ${c.records} records, ${c.inserted} new, ${c.duplicates} already there, ${c.invalid} invalid` +
      ` (batch ${s.batchId}, ${(s.elapsedMs / 1000).toFixed(1)} s)${s.status === 'stopped' ? ' (stopped by signal; re-run to finish)' : ''}`,
  ];
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
      signal,
      bar: progress.start('import', undefined),
    }),
  );
  ctx.out.result(summary, () => render(summary));
  return ExitCode.ok;
}

export function registerImport(cmd: Command, state: RunState): void {
  cmd
    .argument('<files...>', 'NDJSON files (one payload per line) or JSON files holding an array of payloads')
    .requiredOption('--provider <name>', 'gmail, twilio, instagram or webform')
    .requiredOption('--user <uuid>', 'the CRM user the events belong to');
  addRangeOptions(cmd, ['batchSize', 'dryRun'])
    .addHelpText(
      'after',
      `
Each payload's id becomes raw_events.source_id and its own time occurred_at; importing the same
files again adds nothing. A line that is not JSON, or a payload without an id, is reported with
its file and line, kept in raw_event_errors (stage 'import'), and the import goes on. Files are
streamed: their size does not matter. Every import gets a batch_id and a sync_audit row.

Examples:
  omni-ingest import fixtures/demo/gmail.ndjson --provider gmail --user 11111111-1111-4111-8111-111111111111
  omni-ingest import export-*.json --provider twilio --user "$USER_ID" --json`,
    )
    .action(action<ImportFlags>(state, (ctx, flags, args) => runImport(ctx, args, flags)));
}
