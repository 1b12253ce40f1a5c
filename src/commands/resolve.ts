import type { Command } from 'commander';
import type { Context } from '../context.js';
import { providerNames } from '../providers/index.js';
import { createResolveStage } from '../stages/resolve.js';
import { enqueueUnresolved } from '../stages/resolve-sql.js';
import { addRangeOptions, exitCodeOf, renderSummary, runStageCommand } from './batch-options.js';
import { parseFlags, parseRange, regionFlag, workersFlag, type RangeFlags } from './flags.js';
import { action, type RunState } from './run.js';

interface ResolveFlags extends RangeFlags {
  createContacts?: boolean;
  defaultRegion?: string;
  retryUnresolved?: boolean;
  workers?: string;
}

async function runResolve(ctx: Context, flags: ResolveFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames, 'adaptive');
  const { defaultRegion, workers } = parseFlags({ defaultRegion: regionFlag, workers: workersFlag }, flags);
  const createContacts = flags.createContacts === true;
  const db = await ctx.db();
  let requeued: number | undefined;
  if (flags.retryUnresolved) {
    if (range.dryRun) ctx.logger.warn('--retry-unresolved queues nothing in a dry run; the dry run covers what is queued already');
    else {
      requeued = await enqueueUnresolved(db, range);
      ctx.logger.info(`${requeued} unresolved interaction(s) queued again`);
    }
  }
  const stage = createResolveStage({ createContacts, logger: ctx.logger, ...(defaultRegion ? { defaultRegion } : {}) });
  const summary = await runStageCommand(ctx, db, stage, {
    range,
    workers,
    args: { createContacts, defaultRegion, retryUnresolved: flags.retryUnresolved || undefined },
  });
  const result = requeued === undefined ? summary : { ...summary, requeued };
  ctx.out.result(result, () => renderSummary(summary));
  return exitCodeOf(summary);
}

export function registerResolve(cmd: Command, state: RunState): void {
  cmd
    .option('--create-contacts', 'create a contact (and its identities) for each counterpart nobody knows yet')
    .option('--default-region <CC>', 'country for phone numbers stored in national format (ISO 3166-1 alpha-2, e.g. GB)')
    .option('--retry-unresolved', "first queue the range's interactions still without a contact again")
    .option('--workers <n>', 'parallel batches in this process (real server only; default: 1)');
  addRangeOptions(cmd)
    .addHelpText(
      'after',
      `
Takes the interactions queued for resolution (new ones without a contact), narrowed by the range
options. The counterpart is the sender of an inbound interaction and the recipients of an
outbound one (To first, then Cc). Exactly one matching contact links the interaction and its raw
event; several matching contacts count as ambiguous and are left alone; no match leaves it
unresolved, or with --create-contacts creates one contact per person, once, however many
interactions, batches or workers see them. Linking queues the interaction for the timeline and
its contact for insights. Cron-safe; SIGINT/SIGTERM stop after the batch.

Counts: linked, created contacts, unresolved, ambiguous, no identity (nobody on the other
side), skipped (linked or deleted since it was queued).

Examples:
  omni-ingest resolve
  omni-ingest resolve --create-contacts --default-region GB
  omni-ingest resolve --provider webform --since 24h --dry-run --json
  omni-ingest resolve --retry-unresolved --create-contacts --since 2025-06-01`,
    )
    .action(action<ResolveFlags>(state, (ctx, flags) => runResolve(ctx, flags)));
}
