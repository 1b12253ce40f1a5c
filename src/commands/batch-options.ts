// What every batch command shares (SPEC §4): the range flags, the stop signal, the progress
// bars, running one stage through the engine, and the one-line summary.
import os from 'node:os';
import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { Db } from '../db/connect.js';
import { ExitCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { createProgress, type Progress } from '../stages/engine/progress.js';
import type { RangeOptions } from '../stages/engine/range.js';
import { runStage, type RunSummary, type Stage } from '../stages/engine/runner.js';
import { ALL_RANGE_FLAGS, FIXED_BATCH_SIZE_OPTION, RANGE_FLAG_OPTIONS, type RangeFlag } from './flags.js';

/** Adds the range flags a command honours (all of them unless `only` says which). */
export function addRangeOptions(cmd: Command, only: readonly RangeFlag[] = ALL_RANGE_FLAGS): Command {
  // Batches adapt only where the command offers --batch-target (parseRange's 'adaptive').
  const adaptive = only.includes('batchTarget');
  for (const name of only) cmd.option(...(name === 'batchSize' && !adaptive ? FIXED_BATCH_SIZE_OPTION : RANGE_FLAG_OPTIONS[name]));
  return cmd;
}

/**
 * SIGINT/SIGTERM ask the run to stop after the current batch; a second signal stops at once
 * (the open batch's transaction rolls back, so nothing is lost either way).
 */
async function withStopSignal<T>(logger: Logger, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.kill(process.pid, sig);
      return;
    }
    logger.warn(`${sig}: stopping after the current batch (send it again to stop now)`);
    controller.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Progress bars (stderr, TTY only) and the stop signal, for the length of one run. */
export async function withRunControls<T>(
  ctx: Pick<Context, 'config' | 'logger'>,
  fn: (controls: { progress: Progress; signal: AbortSignal }) => Promise<T>,
): Promise<T> {
  const progress = createProgress({ enabled: ctx.config.progress && !ctx.config.quiet, intervalMs: ctx.config.progressIntervalMs });
  try {
    return await withStopSignal(ctx.logger, (signal) => fn({ progress, signal }));
  } finally {
    progress.stop();
  }
}

/** One stage as a command: the engine with a progress bar named after the stage and the stop signal. */
export function runStageCommand<K extends string, C>(
  ctx: Context,
  db: Db,
  stage: Stage<K, C>,
  options: { range: RangeOptions; workers?: number | undefined; args?: Record<string, unknown> },
): Promise<RunSummary> {
  return withRunControls(ctx, ({ progress, signal }) =>
    runStage(stage, {
      db,
      clock: ctx.clock,
      logger: ctx.logger,
      ...options,
      signal,
      bar: progress.start(stage.name, 0),
      reconnectMs: ctx.config.reconnectForMs,
    }),
  );
}

/**
 * The exit code of a run: 0 when it ended as planned (done, --limit, --time-budget), 128 + the
 * signal's number when a signal stopped it before the end, so cron does not take it for finished.
 */
export function exitCodeOf(s: { stopReason?: string | undefined; stopSignal?: string | undefined }): number {
  if (s.stopReason !== 'signal') return ExitCode.ok;
  const signals = os.constants.signals as Record<string, number>;
  return 128 + (signals[s.stopSignal ?? 'SIGTERM'] ?? signals.SIGTERM!);
}

/** What the end of a run says about the work it left: nothing, or how much and why. */
export function leftNote(s: Pick<RunSummary, 'status' | 'stopReason' | 'left'>): string {
  if (s.status === 'incomplete') return `; ${s.left} left that were pending at the start (held by another run, or blocked)`;
  if (s.stopReason === 'time-budget' || s.stopReason === 'signal') return `; ${s.left} left: run it again to continue`;
  return '';
}

/** The one-line summary of a stage run: events, time, rate, every count, and why it stopped. */
export function renderSummary(s: RunSummary): string {
  const c = s.counts;
  const stop =
    s.stopReason === 'done'
      ? s.status === 'incomplete'
        ? ' (incomplete)'
        : ''
      : ` (stopped: ${s.stopReason === 'signal' ? (s.stopSignal ?? 'signal') : s.stopReason})`;
  const parts = Object.entries(c)
    .filter(([k]) => k !== 'events')
    .map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`);
  return `${s.stage}${s.dryRun ? ' (dry run)' : ''}: ${c.events ?? 0} events in ${(s.elapsedMs / 1000).toFixed(1)} s (${s.eventsPerSecond}/s)${parts.length ? `: ${parts.join(', ')}` : ''}${stop}${leftNote(s)}`;
}
