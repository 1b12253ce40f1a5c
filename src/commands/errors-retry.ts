// `errors retry`: the selected open errors through their stage again, now.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { type ErrorSelection, selectsEverything } from '../dead-letters/select.js';
import { UsageError } from '../errors.js';
import { DEFAULT_BATCH_SIZE } from '../stages/engine/range.js';
import { planRetry, type RetryPlan, SWAP_ADVICE } from '../stages/retry/plan.js';
import { retryErrors, type RetrySummary } from '../stages/retry/retry.js';
import { providersOfOpen } from '../stages/retry/sql.js';
import { chooseEmbedder } from '../embed/select.js';
import { chooseInsightProvider } from '../insights/select.js';
import type { Queryable } from '../db/connect.js';
import { buildStage } from '../stages/registry.js';
import { exitCodeOf, withRunControls } from './batch-options.js';
import { parseSelection, type SelectionFlags, selectionOptions } from './error-flags.js';
import { durationFlag, parseFlags, RANGE_FLAG_OPTIONS, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';
import { addProviderOptions, type StageSettingFlags, stageSettings } from './stage-settings.js';

export interface GroupFlags extends SelectionFlags {
  group?: string;
  all?: boolean;
}

interface RetryFlags extends GroupFlags, StageSettingFlags {
  dryRun?: boolean;
  batchSize?: string;
  limit?: string;
  timeBudget?: string;
}

/** --group is the signature by another name; both may be given only if they agree. */
export function selectionOf(ctx: Context, flags: GroupFlags, ids: string[], verb: 'retry' | 'discard' | 'export'): ErrorSelection {
  if (flags.group !== undefined && flags.signature !== undefined && flags.group.trim() !== flags.signature.trim())
    throw new UsageError('--group and --signature name different groups: give one');
  const selection = parseSelection({ ...flags, signature: flags.signature ?? flags.group }, ids, ctx.clock, ['open']);
  if (selection.statuses?.some((s) => s !== 'open') || selection.statuses === undefined)
    throw new UsageError(`errors ${verb} works on open errors only: leave out --status`);
  if (selectsEverything(selection) && flags.all !== true)
    throw new UsageError(
      `name the errors to ${verb}: error ids, --group, a filter (--stage, --provider, --user, --since, --until), or --all`,
    );
  return selection;
}

/** The flags of a command that narrows the open errors (retry, discard, export). */
export function groupOptions(cmd: Command): Command {
  return selectionOptions(cmd, 'open')
    .option('--group <signature>', 'the errors of one group (the signature `errors groups` shows; same as --signature)')
    .option('--all', 'every open error (required when nothing else narrows the selection)');
}

function renderPlan(p: RetryPlan): string[] {
  const total = Object.values(p.open).reduce((a, b) => a + b, 0);
  if (total === 0) return ['errors retry (dry run): no open errors match'];
  const byStage = Object.entries(p.open)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const retryable = p.errors.filter((e) => e.retryable).length;
  // Only the listed errors were looked at one by one: past the list, say what was selected.
  const verdict = p.truncated
    ? `${total} open errors selected (${byStage})`
    : `${total} open errors selected (${byStage}): ${retryable} would be retried, ${total - retryable} cannot be (below)`;
  return [
    `errors retry (dry run): ${verdict}; nothing written`,
    ...p.errors.map((e) => `  ${e.id}  ${e.stage.padEnd(9)} ${String(e.attempts).padStart(3)} attempt(s)  ${e.action}\n      ${e.error}`),
    ...(p.truncated ? [`  … and more (raise --limit to list them)`] : []),
  ];
}

function renderRetry(s: RetrySummary): string[] {
  const lines = s.stages.map((st) => {
    const parts = Object.entries(st.counts)
      .filter(([k, v]) => k !== 'events' && (v ?? 0) > 0)
      .map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`);
    const gone = st.gone > 0 ? `, ${st.gone} not retryable (item gone: discard them)` : '';
    return `  ${st.stage.padEnd(9)} ${st.selected} selected${parts.length ? `: ${parts.join(', ')}` : ''}${gone}`;
  });
  const ended =
    s.status === 'stopped'
      ? ` (stopped: ${s.stopReason === 'signal' ? (s.stopSignal ?? 'signal') : s.stopReason}; run it again to go on)`
      : s.status === 'incomplete'
        ? ' (incomplete: some items were held by another run, which resolves them)'
        : '';
  const elsewhere = s.elsewhere > 0 ? [`  swap      ${s.elsewhere} selected: not retried here; ${SWAP_ADVICE}`] : [];
  return [
    ...(lines.length || elsewhere.length ? [...lines, ...elsewhere] : ['  no open errors match']),
    `errors retry: ${s.resolved} resolved, ${s.stillOpen} still open in the selection, in ${(s.elapsedMs / 1000).toFixed(1)} s${ended}`,
  ];
}

/**
 * Errors an OpenAI model made are not retried by the local embedder or the heuristic only
 * because OPENAI_API_KEY is missing (a cron job's environment): their vectors would sit beside
 * the model's in one column. Naming the provider says it is meant.
 */
async function refuseSilentSwitch(ctx: Context, db: Queryable, selection: ErrorSelection, flags: RetryFlags): Promise<void> {
  if (ctx.config.openai.apiKey) return;
  const embedder = chooseEmbedder(ctx.config.openai, { embedder: flags.embedder as 'openai' | 'local' | undefined });
  const insights = chooseInsightProvider(ctx.config.openai, {
    provider: flags.insightsProvider as 'openai' | 'heuristic' | undefined,
  });
  const made = await providersOfOpen(db, selection);
  for (const m of made) {
    const [flag, chosen, given] =
      m.stage === 'embed' ? ['--embedder', embedder.name, flags.embedder] : ['--insights-provider', insights.name, flags.insightsProvider];
    if (given === undefined && m.provider !== chosen)
      throw new UsageError(
        `the selected ${m.stage} errors were made by ${m.provider}; without OPENAI_API_KEY this retry would use ${chosen} instead`,
        { hint: `set OPENAI_API_KEY, or pass ${flag} ${chosen} to retry them with ${chosen} on purpose` },
      );
  }
}

async function runRetry(ctx: Context, ids: string[], flags: RetryFlags): Promise<number> {
  const selection = selectionOf(ctx, flags, ids, 'retry');
  const f = parseFlags(
    { batchSize: wholeNumber(1, 50_000), limit: wholeNumber(1, Number.MAX_SAFE_INTEGER), timeBudget: durationFlag },
    flags,
  );
  const db = await ctx.db();
  if (flags.dryRun) {
    const plan = await planRetry(db, selection, f.limit ?? 1000);
    ctx.out.result(plan, () => renderPlan(plan));
    return 0;
  }
  const settings = stageSettings(ctx, flags);
  await refuseSilentSwitch(ctx, db, selection, flags);
  const summary = await withRunControls(ctx, ({ progress, signal }) =>
    retryErrors({
      db,
      clock: ctx.clock,
      logger: ctx.logger,
      selection,
      batchSize: f.batchSize ?? DEFAULT_BATCH_SIZE,
      limit: f.limit,
      timeBudgetMs: f.timeBudget,
      stage: (name) => buildStage(name, settings, ctx),
      signal,
      bar: progress.start('errors retry', 0),
      reconnectMs: ctx.config.reconnectForMs,
      args: { ...selection, ids: selection.ids?.length ? selection.ids.slice(0, 100) : undefined, limit: f.limit },
    }),
  );
  ctx.out.result(summary, () => renderRetry(summary));
  return exitCodeOf(summary);
}

export function registerRetry(errors: Command, state: RunState): void {
  const cmd = errors
    .command('retry')
    .description('run the stage of the selected open errors again now; a success resolves the error with its output')
    .argument('[ids...]', 'error ids (from `errors list`)');
  groupOptions(cmd)
    .option(...RANGE_FLAG_OPTIONS.dryRun)
    .option('--batch-size <n>', `errors per batch (default: ${DEFAULT_BATCH_SIZE})`)
    .option('--limit <n>', 'at most this many errors (with --dry-run: how many to list, default 1000)')
    .option(...RANGE_FLAG_OPTIONS.timeBudget);
  addProviderOptions(cmd)
    .addHelpText(
      'after',
      `
normalize errors re-map their raw event as it is now (after a payload was corrected in place, or
a fix shipped); embed and insights errors put their interaction or contact back in the queue and
run it; import errors parse their kept record again. A success resolves the error in the same
transaction as the stage's writes; a failure adds an attempt and leaves it open. An item another
run holds is left to it (that run resolves the error). Safe to run in several processes at once,
and to kill: run it again.

Examples:
  omni-ingest errors retry 3f2a5c1e-8d4b-4c1a-9e2f-0a1b2c3d4e5f
  omni-ingest errors retry --group 9c1d2e3f4a5b6c7d --dry-run
  omni-ingest errors retry --stage normalize --provider webform --since 24h`,
    )
    .action(action<RetryFlags>(state, (ctx, flags, args) => runRetry(ctx, args, flags)));
}
