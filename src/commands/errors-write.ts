// `errors retry`, `errors discard`, `errors export`, `errors purge`: acting on dead letters.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { exportErrors, type ExportSummary } from '../dead-letters/export.js';
import { countOpen, countPurgeable, discardChunk, purgeChunk } from '../dead-letters/manage.js';
import { ExitCode, UsageError } from '../errors.js';
import { withRun } from '../stages/engine/with-run.js';
import { parseSelection, type SelectionFlags, selectionOptions } from './error-flags.js';
import { groupOptions, type GroupFlags, registerRetry, selectionOf } from './errors-retry.js';
import { nonEmpty, parseFlags, RANGE_FLAG_OPTIONS, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

interface DiscardFlags extends GroupFlags {
  reason?: string;
  dryRun?: boolean;
}

async function runDiscard(ctx: Context, ids: string[], flags: DiscardFlags): Promise<number> {
  const reason = parseFlags({ reason: nonEmpty }, flags).reason;
  if (reason === undefined) throw new UsageError('errors discard needs --reason: say why, it is kept with each error');
  const selection = selectionOf(ctx, flags, ids, 'discard');
  const db = await ctx.db();
  if (flags.dryRun) {
    const n = await countOpen(db, selection);
    ctx.out.result({ dryRun: true, wouldDiscard: n }, () => `errors discard (dry run): ${n} open errors would be discarded`);
    return ExitCode.ok;
  }
  const args = { ...selection, ids: selection.ids?.length ? selection.ids.slice(0, 100) : undefined, reason };
  const result = await withRun(db, { command: 'errors discard', args, dryRun: false, logger: ctx.logger }, async (run) => {
    let discarded = 0;
    for (;;) {
      const n = await db.transaction(async (tx) => {
        const done = await discardChunk(tx, selection, run.id, reason);
        await run.record(tx, { events: done, discarded: done });
        return done;
      });
      discarded += n;
      if (n === 0) break;
    }
    // Rows another process held (a retry in flight) were skipped: say so rather than wait.
    const left = await countOpen(db, selection);
    return { status: left > 0 ? ('incomplete' as const) : ('succeeded' as const), runId: run.id, discarded, left };
  });
  ctx.out.result(
    result,
    () =>
      `errors discard: ${result.discarded} discarded ("${reason}")${result.left > 0 ? `; ${result.left} held by another process were left open: run it again` : ''}`,
  );
  return ExitCode.ok;
}

interface ExportFlags extends GroupFlags {
  out?: string;
}

function renderExport(s: ExportSummary): string[] {
  const skipped = Object.entries(s.skipped)
    .filter(([, n]) => n > 0)
    .map(
      ([k, n]) =>
        `${n} ${{ truncated: 'too large (record not kept whole)', noRecord: 'without a kept record', eventGone: 'whose raw event is gone', otherStages: 'of other stages' }[k] ?? k}`,
    );
  return [
    `errors export: ${s.written} records written to ${s.file}${skipped.length ? `; not written: ${skipped.join(', ')}` : ''}`,
    `fix them there (one record per line; keep the lines in place), then:`,
    `  omni-ingest import ${s.file} --provider ${s.provider} --user ${s.userId}${s.normalizes > 0 ? ' --update' : ''}`,
    ...(s.normalizes > 0
      ? ['(--update: the normalize errors are stored events; the corrected payloads replace them and are normalized again)']
      : []),
  ];
}

async function runExport(ctx: Context, ids: string[], flags: ExportFlags): Promise<number> {
  const out = parseFlags({ out: nonEmpty }, flags).out;
  if (out === undefined) throw new UsageError('errors export needs --out <file>: the NDJSON file to write');
  const selection = selectionOf(ctx, { ...flags, all: true }, ids, 'export');
  const db = await ctx.db();
  const summary = await exportErrors(db, selection, out);
  ctx.out.result(summary, () => renderExport(summary));
  return ExitCode.ok;
}

interface PurgeFlags extends SelectionFlags {
  olderThan?: string;
  dryRun?: boolean;
}

async function runPurge(ctx: Context, flags: PurgeFlags): Promise<number> {
  const days = parseFlags({ olderThan: wholeNumber(0, 36_500) }, flags).olderThan;
  if (days === undefined) throw new UsageError('errors purge needs --older-than <days>');
  if (flags.status !== undefined && flags.status.trim() !== 'resolved' && flags.status.trim() !== 'discarded')
    throw new UsageError(`--status "${flags.status}": purge deletes only resolved and discarded errors; open ones are never deleted`);
  const selection = parseSelection(flags, [], ctx.clock, ['resolved', 'discarded']);
  const db = await ctx.db();
  if (flags.dryRun) {
    const n = await countPurgeable(db, selection, days);
    ctx.out.result(
      { dryRun: true, wouldDelete: n, olderThanDays: days },
      () => `errors purge (dry run): ${n} closed errors would be deleted`,
    );
    return ExitCode.ok;
  }
  const args = { ...selection, olderThanDays: days };
  const result = await withRun(db, { command: 'errors purge', args, dryRun: false, logger: ctx.logger }, async (run) => {
    let deleted = 0;
    for (;;) {
      const n = await db.transaction(async (tx) => {
        const done = await purgeChunk(tx, selection, days);
        await run.record(tx, { events: done, deleted: done });
        return done;
      });
      deleted += n;
      if (n === 0) break;
    }
    return { status: 'succeeded' as const, runId: run.id, deleted, olderThanDays: days };
  });
  ctx.out.result(result, () => `errors purge: ${result.deleted} resolved or discarded errors closed more than ${days} days ago deleted`);
  return ExitCode.ok;
}

export function registerErrorWrites(errors: Command, state: RunState): void {
  registerRetry(errors, state);
  groupOptions(
    errors
      .command('discard')
      .description('close the selected open errors as discarded, with a reason (nothing is deleted)')
      .argument('[ids...]', 'error ids (from `errors list`)'),
  )
    .option('--reason <text>', 'why (required; kept with each error)')
    .option(...RANGE_FLAG_OPTIONS.dryRun)
    .addHelpText('after', '\nExample:\n  omni-ingest errors discard --group 9c1d2e3f4a5b6c7d --reason "test account, not a customer"')
    .action(action<DiscardFlags>(state, (ctx, flags, args) => runDiscard(ctx, args, flags)));
  groupOptions(
    errors
      .command('export')
      .description('write the selected import and normalize errors as NDJSON that `import` accepts, to fix by hand and import again')
      .argument('[ids...]', 'error ids (from `errors list`)'),
  )
    .option('--out <file>', 'the NDJSON file to write (required)')
    .addHelpText(
      'after',
      `
Import errors are written as their kept record, normalize errors as their raw event's payload;
one user and one provider per file. Importing the file again resolves each import error whose
line now imports (and, with --update, each normalize error whose event now normalizes).

Example:
  omni-ingest errors export --stage import --provider webform --out fix.ndjson
  omni-ingest import fix.ndjson --provider webform --user <uuid>`,
    )
    .action(action<ExportFlags>(state, (ctx, flags, args) => runExport(ctx, args, flags)));
  selectionOptions(
    errors.command('purge').description('delete resolved and discarded errors closed more than --older-than days ago (never open ones)'),
    'resolved and discarded',
  )
    .option('--older-than <days>', 'closed more than this many days ago (required)')
    .option(...RANGE_FLAG_OPTIONS.dryRun)
    .addHelpText('after', '\nExample:\n  omni-ingest errors purge --older-than 90 --dry-run')
    .action(action<PurgeFlags>(state, (ctx, flags) => runPurge(ctx, flags)));
}
