import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { getRun, listRuns, STALE_AFTER_SECONDS, type RunRow } from '../stages/engine/ledger.js';
import { parseFlags, uuidFlag, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

/** A 'running' row without a recent heartbeat belongs to a process that died. */
function shownStatus(run: RunRow, now: Date): string {
  if (run.status === 'running' && now.getTime() - run.heartbeat_at.getTime() > STALE_AFTER_SECONDS * 1000) return 'running?';
  return run.status;
}

/** What a run took: a stage's `events`, an import's `records`. */
const FIRST = ['events', 'records'];
const rank = (k: string) => (FIRST.includes(k) ? FIRST.indexOf(k) : FIRST.length);

/** What the run took first, then the outcomes by name: jsonb keeps no order of its own. */
function countsText(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

async function runList(ctx: Context, flags: { command?: string; limit?: string }): Promise<number> {
  const limit = parseFlags({ limit: wholeNumber(1, 10_000) }, flags).limit ?? 20;
  const db = await ctx.db();
  const runs = await listRuns(db, { command: flags.command, limit });
  const now = ctx.clock.now();
  ctx.out.result({ runs: runs.map((r) => ({ ...r, status: shownStatus(r, now) })) }, () =>
    runs.length === 0
      ? 'no runs recorded'
      : [
          `${'id'.padEnd(36)}  ${'started'.padEnd(24)}  ${'command'.padEnd(10)} ${'status'.padEnd(10)} counts`,
          ...runs.map(
            (r) =>
              `${r.id}  ${r.started_at.toISOString()}  ${r.command.padEnd(10)} ${shownStatus(r, now).padEnd(10)} ${countsText(r.counts)}`,
          ),
        ],
  );
  return ExitCode.ok;
}

async function runShow(ctx: Context, text: string): Promise<number> {
  const parsed = uuidFlag.safeParse(text);
  if (!parsed.success) throw new UsageError(`"${text}" is not a run id (a UUID from \`omni-ingest runs list\`)`);
  const id = parsed.data;
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

export function registerRuns(runs: Command, state: RunState): void {
  runs
    .command('list')
    .description('recent runs, newest first')
    .option('--command <name>', 'only runs of this command (normalize, import, …)')
    .option('--limit <n>', 'how many (default: 20)')
    .action(action<{ command?: string; limit?: string }>(state, (ctx, flags) => runList(ctx, flags)));
  runs
    .command('show')
    .description('one run in full')
    .argument('<id>', 'the run id')
    .action(action(state, (ctx, _flags, args) => runShow(ctx, args[0] ?? '')));
}
