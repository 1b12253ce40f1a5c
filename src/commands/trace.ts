// `trace`: one event's path through every table.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { parseTraceRef, traceEvent } from '../trace/trace.js';
import { parseFlags, uuidFlag } from './flags.js';
import { action, type RunState } from './run.js';
import { renderTrace } from './trace-render.js';

async function runTrace(ctx: Context, text: string, flags: { user?: string }): Promise<number> {
  const { user } = parseFlags({ user: uuidFlag }, flags);
  const ref = parseTraceRef(text);
  if (!ref) throw new UsageError(`"${text}" is not a raw event id, an interaction id or provider:source_id (e.g. gmail:18c9a2f4e1b2c3d4)`);
  const trace = await traceEvent(await ctx.db(), ref, user);
  ctx.out.result(trace, () => renderTrace(trace));
  return ExitCode.ok;
}

export function registerTrace(trace: Command, state: RunState): void {
  trace
    .argument('<id>', 'a raw event id, an interaction id, or provider:source_id')
    .option('--user <uuid>', 'the user whose event it is (when several users hold the same provider id)')
    .addHelpText(
      'after',
      `
Shows, in pipeline order: the raw event and the import that brought it (batch, sync_audit row,
run), normalize's outcome and the interactions, the contact and the identities the event names,
the embedding chunks (model, dimensions, content hashes), the contact's insights made since,
the timeline entries, work still queued, every dead letter about it, and the runs that touched
it (named by the ledger, or live when a row was written). What cannot be known is said.
An id nothing matches exits 2.

Examples:
  omni-ingest trace 3f2a5c1e-8d4b-4c1a-9e2f-0a1b2c3d4e5f
  omni-ingest trace gmail:18c9a2f4e1b2c3d4 --json
  omni-ingest trace webform:sub-2041 --user 11111111-1111-4111-8111-111111111111`,
    )
    .action(action<{ user?: string }>(state, (ctx, flags, args) => runTrace(ctx, args[0] ?? '', flags)));
}
