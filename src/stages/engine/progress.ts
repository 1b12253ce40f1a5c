// Progress on stderr, only on a TTY (SPEC §4): done/total, rate, ETA. Several bars share one
// MultiBar so `backfill` can show one per stage.
import cliProgress from 'cli-progress';

export interface Progress {
  /** A bar with done/total, rate and ETA; with no total (a stream), a running count and rate. */
  start(label: string, total: number | undefined): ProgressBar;
  stop(): void;
}

export interface ProgressBar {
  increment(n: number): void;
  setTotal(total: number): void;
}

const silentBar: ProgressBar = { increment: () => {}, setTotal: () => {} };

const noProgress: Progress = { start: () => silentBar, stop: () => {} };

export function createProgress(options: { enabled: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  if (!options.enabled || !stream.isTTY) return noProgress;
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start(label, total) {
      const started = Date.now();
      const bar =
        total === undefined
          ? multi.create(0, 0, { label: label.padEnd(10), rate: '0' }, { format: '{label} {value} | {rate}/s' })
          : multi.create(Math.max(total, 0), 0, { label: label.padEnd(10), rate: '0' });
      let done = 0;
      return {
        increment(n) {
          done += n;
          const seconds = (Date.now() - started) / 1000;
          bar.increment(n, { rate: seconds > 0 ? Math.round(done / seconds).toLocaleString('en-US') : '0' });
        },
        setTotal(t) {
          bar.setTotal(Math.max(t, done));
        },
      };
    },
    stop() {
      multi.stop();
    },
  };
}
