// Progress on stderr (SPEC §4): on a TTY, bars (done/total, rate, ETA; several share one
// MultiBar so `backfill` shows one per stage); elsewhere (cron, a log file), a timestamped line
// per running stage every `intervalMs`. Each stage's rate and ETA are measured from its own
// start (the engine's setTotal), never from when its bar was drawn, and a stage not started yet
// is shown as waiting rather than as 0/0 100%.
import cliProgress from 'cli-progress';

export interface Progress {
  /**
   * A bar with done/total, rate and ETA; with no total (a stream), a running count and rate.
   * `unit: 'bytes'` shows amounts as kB/MB/GB (import reads files by bytes).
   */
  start(label: string, total: number | undefined, options?: { unit?: Unit }): ProgressBar;
  stop(): void;
}

export interface ProgressBar {
  increment(n: number): void;
  setTotal(total: number): void;
}

type Unit = 'items' | 'bytes';

const silentBar: ProgressBar = { increment: () => {}, setTotal: () => {} };

const noProgress: Progress = { start: () => silentBar, stop: () => {} };

/** One stage's figures, from its own start. */
class Meter {
  started: number | undefined;
  done = 0;
  constructor(
    readonly label: string,
    public total: number | undefined,
    readonly unit: Unit = 'items',
  ) {}

  /** When the last of the total was done: a finished stage's rate stays what it was. */
  ended: number | undefined;

  add(n: number, now: number): void {
    this.started ??= now;
    this.done += n;
    this.ended = this.finished ? (this.ended ?? now) : undefined;
  }

  setTotal(t: number, now: number): void {
    this.started ??= now;
    this.total = Math.max(t, this.done);
    this.ended = this.finished ? (this.ended ?? now) : undefined;
  }

  rate(now: number): number {
    const seconds = this.started === undefined ? 0 : ((this.ended ?? now) - this.started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  /** Seconds left at the current rate; undefined when unknown. */
  eta(now: number): number | undefined {
    const rate = this.rate(now);
    if (this.total === undefined || rate <= 0) return undefined;
    return Math.max(0, (this.total - this.done) / rate);
  }

  /** All of a known total done; counting past a total of 0 (set before anything was known) is still running. */
  get finished(): boolean {
    if (this.total === undefined || this.started === undefined) return false;
    return this.total === 0 ? this.done === 0 : this.done >= this.total;
  }

  amount(n: number): string {
    return this.unit === 'bytes' ? formatBytes(n) : Math.round(n).toLocaleString('en-US');
  }

  /** `1,200/5,000 24% 150/s ETA 25s`, or for a stream `1,200 150/s`. */
  figures(now: number, sep: string): string {
    const rate = `${this.amount(this.rate(now))}/s`;
    // No total, or counted past the one set (increments before the total is known): a running count.
    if (this.total === undefined || this.total < this.done) return `${this.amount(this.done)}${sep}${rate}`;
    const pct = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    return `${this.amount(this.done)}/${this.amount(this.total)} ${pct}%${sep}${rate}${sep}ETA ${formatSeconds(this.eta(now))}`;
  }
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const [value, unit] = n < 1e6 ? [n / 1e3, 'kB'] : n < 1e9 ? [n / 1e6, 'MB'] : [n / 1e9, 'GB'];
  return `${value.toFixed(1)} ${unit}`;
}

/** The line a log gets: `2026-11-30T02:50:00Z resolve 1,200/5,000 24% 150/s ETA 25s`. */
function progressLine(m: Meter, now: number): string {
  const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `${stamp} ${m.label} ${m.started === undefined ? 'waiting' : m.figures(now, ' ')}`;
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
    start(label, total, options) {
      const m = new Meter(label, total, options?.unit);
      meters.push(m);
      return {
        increment(n) {
          m.add(n, Date.now());
          report();
        },
        setTotal(t) {
          m.setTotal(t, Date.now());
        },
      };
    },
    stop() {
      clearInterval(timer);
    },
  };
}

/**
 * One bar's line, drawn from its meter rather than cli-progress's own figures: a stage not
 * started is an empty bar "waiting" (cli-progress draws a total of 0 as full), a started one with
 * nothing to do says so, and amounts keep their unit.
 */
function barLine(options: cliProgress.Options, meter: Meter): string {
  const now = Date.now();
  const label = meter.label.padEnd(10);
  if (meter.started === undefined) return `${label} [${cliProgress.Format.BarFormat(0, options)}] waiting`;
  if (meter.total === undefined || meter.total < meter.done) return `${label} ${meter.figures(now, ' | ')}`;
  if (meter.total === 0) return `${label} [${cliProgress.Format.BarFormat(1, options)}] nothing to do`;
  return `${label} [${cliProgress.Format.BarFormat(Math.min(1, meter.done / meter.total), options)}] ${meter.figures(now, ' | ')}`;
}

function barProgress(stream: NodeJS.WriteStream): Progress {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: (options, _params, payload: { meter: Meter }) => barLine(options, payload.meter),
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let drawn = 0;
  return {
    start(label, total, options) {
      const meter = new Meter(label, total, options?.unit);
      // cli-progress's own value and total only drive its redraws; the line comes from the meter.
      const bar = multi.create(Math.max(total ?? 0, 0), 0, { meter });
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
          meter.add(n, Date.now());
          bar.increment(n);
          redraw();
        },
        setTotal(t) {
          meter.setTotal(t, Date.now());
          bar.setTotal(meter.total ?? 0);
          bar.update(meter.done);
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
