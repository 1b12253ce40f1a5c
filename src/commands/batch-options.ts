// The flags every batch command shares (SPEC §4), and the stop signal they honour.
import type { Command } from 'commander';
import type { Logger } from '../logger.js';

export function addRangeOptions(cmd: Command): Command {
  return cmd
    .option('--since <date|duration>', 'only events at or after this time (ISO 8601, or 90d, 24h back from now)')
    .option('--until <date|duration>', 'only events before this time')
    .option('--user <uuid>', 'only this user\'s events')
    .option('--provider <name>', 'only this provider (gmail, twilio, instagram, webform)')
    .option('--batch-size <n>', 'events per batch (one short transaction each)', '1000')
    .option('--limit <n>', 'at most this many events in this run')
    .option('--time-budget <duration>', 'stop cleanly between batches after this long (e.g. 5m)')
    .option('--dry-run', 'report what would happen, write nothing');
}

/**
 * SIGINT/SIGTERM ask the run to stop after the current batch; a second signal stops at once
 * (the open batch's transaction rolls back, so nothing is lost either way).
 */
export async function withStopSignal<T>(logger: Logger, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
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
