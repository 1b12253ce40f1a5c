// Progress on stderr (SPEC §4): on a TTY, bars (done/total, rate, ETA; several share one
// MultiBar so `backfill` shows one per stage); elsewhere (cron, a log file), a timestamped line
// per running stage every `intervalMs`. Each stage's rate and ETA are measured from its own
// start (the engine's setTotal), never from when its bar was drawn, and a stage not started yet
// is shown as waiting rather than as 0/0 100%.
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

/** One stage's figures, from its own start. */
class Meter {
  started: number | undefined;
  done = 0;
  constructor(
    readonly label: string,
    public total: number | undefined,
  ) {}

  begin(now: number): void {
    this.started ??= now;
  }

  rate(now: number): number {
    const seconds = this.started === undefined ? 0 : (now - this.started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  /** Seconds left at the current rate; undefined when unknown. */
  eta(now: number): number | undefined {
    const rate = this.rate(now);
    if (this.total === undefined || rate <= 0) return undefined;
    return Math.max(0, (this.total - this.done) / rate);
  }

  get finished(): boolean {
    return this.total !== undefined && this.started !== undefined && this.done >= this.total;
  }
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const rateText = (r: number) => Math.round(r).toLocaleString('en-US');

/** The line a log gets: `2026-11-30T02:50:00Z resolve 1,200/5,000 24% 150/s ETA 25s`. */
function progressLine(m: Meter, now: number): string {
  const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (m.started === undefined) return `${stamp} ${m.label} waiting`;
  const of = m.total === undefined ? '' : `/${m.total.toLocaleString('en-US')}`;
  const pct = m.total ? ` ${Math.floor((100 * m.done) / m.total)}%` : '';
  const eta = m.total === undefined ? '' : ` ETA ${formatSeconds(m.eta(now))}`;
  return `${stamp} ${m.label} ${m.done.toLocaleString('en-US')}${of}${pct} ${rateText(m.rate(now))}/s${eta}`;
}

/** Timestamped lines for a stream that is not a terminal: every `intervalMs`, one per running stage. */
function lineProgress(stream: NodeJS.WritableStream, intervalMs: number): Progress {
  const meters: Meter[] = [];
  let last = Date.now();
  const report = (force = false) => {
    const now = Date.now();
    if (!force && now - last < intervalMs) return;
    last = now;
    for (const m of meters) if (m.started !== undefined && !m.finished) stream.write(`${progressLine(m, now)}\n`);
  };
  // The timer covers a slow batch on a server; on the embedded database a batch holds the event
  // loop, so increments also look at the clock.
  const timer = setInterval(() => report(), intervalMs);
  timer.unref();
  return {
    start(label, total) {
      const m = new Meter(label, total);
      meters.push(m);
      return {
        increment(n) {
          m.begin(Date.now());
          m.done += n;
          report();
        },
        setTotal(t) {
          m.begin(Date.now());
          m.total = Math.max(t, m.done);
        },
      };
    },
    stop() {
      clearInterval(timer);
    },
  };
}

function barProgress(stream: NodeJS.WriteStream): Progress {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{label} [{bar}] {value}/{total} {state} | {rate}/s | ETA {eta_text}',
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let drawn = 0;
  return {
    start(label, total) {
      const m = new Meter(label, total);
      const payload = (now: number) => ({
        label: label.padEnd(10),
        rate: rateText(m.rate(now)),
        eta_text: formatSeconds(m.eta(now)),
        state: m.started === undefined ? 'waiting' : m.total ? `${Math.floor((100 * m.done) / m.total)}%` : '',
      });
      const bar =
        total === undefined
          ? multi.create(0, 0, payload(Date.now()), { format: '{label} {value} | {rate}/s' })
          : multi.create(Math.max(total, 0), 0, payload(Date.now()));
      // PGlite runs a batch synchronously, starving cli-progress's redraw timer: redraw on change.
      const redraw = () => {
        const now = Date.now();
        if (now - drawn > 200) {
          drawn = now;
          multi.update();
        }
      };
      return {
        increment(n) {
          const now = Date.now();
          m.begin(now);
          m.done += n;
          bar.increment(n, payload(now));
          redraw();
        },
        setTotal(t) {
          const now = Date.now();
          m.begin(now);
          m.total = Math.max(t, m.done);
          bar.setTotal(m.total);
          bar.update(m.done, payload(now));
          redraw();
        },
      };
    },
    stop() {
      multi.stop();
    },
  };
}

export function createProgress(options: { enabled: boolean; intervalMs?: number; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  if (!options.enabled) return noProgress;
  if (stream.isTTY) return barProgress(stream);
  return options.intervalMs && options.intervalMs > 0 ? lineProgress(stream, options.intervalMs) : noProgress;
}
