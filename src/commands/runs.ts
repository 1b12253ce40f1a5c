import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { getRun, listRuns, STALE_AFTER_SECONDS, type RunRow } from '../stages/engine/ledger.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

/** A 'running' row without a recent heartbeat belongs to a process that died. */
function shownStatus(run: RunRow, now: Date): string {
  if (run.status === 'running' && now.getTime() - run.heartbeat_at.getTime() > STALE_AFTER_SECONDS * 1000) return 'running?';
  return run.status;
}

function countsText(counts: Record<string, number>): string {
  return Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ');
}

async function runList(ctx: Context, flags: { command?: string; limit?: string }): Promise<number> {
  const limit = Number(flags.limit ?? '20');
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit "${flags.limit}" must be between 1 and 10000`);
  const db = await ctx.db();
  const runs = await listRuns(db, { command: flags.command, limit });
  const now = ctx.clock.now();
  ctx.out.result({ runs: runs.map((r) => ({ ...r, status: shownStatus(r, now) })) }, () =>
    runs.length === 0
      ? 'no runs recorded'
      : runs.map((r) => `${r.id}  ${r.started_at.toISOString()}  ${r.command.padEnd(10)} ${shownStatus(r, now).padEnd(10)} ${countsText(r.counts)}`),
  );
  return ExitCode.ok;
}

async function runShow(ctx: Context, id: string): Promise<number> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UsageError(`"${id}" is not a run id (a UUID from \`omni-ingest runs list\`)`);
  const db = await ctx.db();
  const run = await getRun(db, id);
  if (!run) throw new UsageError(`no run ${id}`);
  ctx.out.result({ ...run, status: shownStatus(run, ctx.clock.now()) }, () => [
    `run ${run.id}: ${run.command} ${shownStatus(run, ctx.clock.now())}${run.stop_reason ? ` (${run.stop_reason})` : ''}`,
    `  host ${run.host ?? '?'} pid ${run.pid ?? '?'}`,
    `  started ${run.started_at.toISOString()}, last heartbeat ${run.heartbeat_at.toISOString()}${run.finished_at ? `, finished ${run.finished_at.toISOString()}` : ''}`,
    `  args ${JSON.stringify(run.args)}`,
    `  counts ${countsText(run.counts) || '(none)'}`,
    ...(run.checkpoint ? [`  checkpoint ${JSON.stringify(run.checkpoint)}`] : []),
    ...(run.error ? [`  error ${run.error}`] : []),
  ]);
  return ExitCode.ok;
}

export function registerRuns(program: Command, state: RunState): void {
  const runs = program.command('runs').description(descriptionOf('runs'));
  runs
    .command('list')
    .description('recent runs, newest first')
    .option('--command <name>', 'only runs of this command (normalize, import, …)')
    .option('--limit <n>', 'how many', '20')
    .action(action<{ command?: string; limit?: string }>(state, (ctx, flags) => runList(ctx, flags)));
  runs
    .command('show')
    .description('one run in full')
    .argument('<id>', 'the run id')
    .action(action(state, (ctx, _flags, args) => runShow(ctx, args[0] ?? '')));
}
