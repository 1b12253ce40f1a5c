import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { getProvider } from '../providers/index.js';
import { importFiles, checkFiles, type ImportSummary } from '../stages/import/import.js';
import { withRunControls } from './batch-options.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

interface ImportFlags {
  provider: string;
  user: string;
  batchSize?: string;
  dryRun?: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  if (!UUID.test(flags.user)) throw new UsageError(`--user "${flags.user}" must be a UUID`);
  const batchSize = flags.batchSize === undefined ? 1000 : Number(flags.batchSize);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 50_000) throw new UsageError(`--batch-size "${flags.batchSize}" must be a whole number between 1 and 50000`);
  checkFiles(files);
  const db = await ctx.db();
  const summary = await withRunControls(ctx, ({ progress, signal }) =>
    importFiles({ db, clock: ctx.clock, logger: ctx.logger, files, provider, userId: flags.user.toLowerCase(), batchSize, dryRun: flags.dryRun === true, signal, bar: progress.start('import', undefined) }),
  );
  ctx.out.result(summary, () => render(summary));
  return ExitCode.ok;
}

export function registerImport(program: Command, state: RunState): void {
  program
    .command('import')
    .description(descriptionOf('import'))
    .argument('<files...>', 'NDJSON files (one payload per line) or JSON files holding an array of payloads')
    .requiredOption('--provider <name>', 'gmail, twilio, instagram or webform')
    .requiredOption('--user <uuid>', 'the CRM user the events belong to')
    .option('--batch-size <n>', 'rows per insert transaction', '1000')
    .option('--dry-run', 'read and validate the files, write nothing')
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
