// The normalize benchmark's rounds: what one contender measured, one round of every contender,
// and the rounds folded into the row the tables print (medians, the highest peak memory).
import { median } from './median.js';
import type { BenchProvider } from './normalize-baselines.js';

/** A baseline's time, what it wrote, and the server's CPU meanwhile (undefined: not measurable). */
interface BaselineRun {
  seconds: number;
  interactions: number;
  serverCpuSeconds: number | undefined;
}

export interface NormalizeRun {
  workers: number;
  seconds: number;
  /** The normalize process's own CPU (user + system), start-up included. */
  cpuSeconds: number;
  /** The database server's CPU during the run (undefined: the server is not this machine's to read). */
  serverCpuSeconds: number | undefined;
  inserted: number;
  skipped: number;
  peakRssMb: number;
}

/** One round: every contender once, in turn, each from the same state. */
export interface NormalizeRound {
  baseline: BaselineRun;
  baselineWithQueue: BaselineRun;
  normalize: NormalizeRun[];
}

export interface NormalizeBenchRow {
  provider: BenchProvider;
  events: number;
  payloadMb: number;
  /** The rounds' medians (time, CPU) and highest peak RSS. */
  baseline: BaselineRun;
  baselineWithQueue: BaselineRun;
  normalize: NormalizeRun[];
  /** Per worker count (as `normalize`): the median of the rounds' speed ratios to the plain INSERT … SELECT. */
  ratios: number[];
  rounds: NormalizeRound[];
}

/** Every round's figures folded into one row: medians, and the highest peak memory. */
export function summarizeRounds(provider: BenchProvider, events: number, payloadMb: number, rounds: NormalizeRound[]): NormalizeBenchRow {
  const first = rounds[0]!;
  /** The median of what every round measured; undefined if any round could not. */
  const medianOf = (xs: (number | undefined)[]) => (xs.every((x) => x !== undefined) ? median(xs) : undefined);
  const baselineOf = (pick: (r: NormalizeRound) => BaselineRun): BaselineRun => ({
    seconds: median(rounds.map((r) => pick(r).seconds)),
    interactions: pick(first).interactions,
    serverCpuSeconds: medianOf(rounds.map((r) => pick(r).serverCpuSeconds)),
  });
  // Every round starts from the same state, so every round writes the same: say so (once) if not.
  const differ =
    rounds.some((r) => r.baseline.interactions !== first.baseline.interactions) ||
    first.normalize.some((run, k) => rounds.some((r) => r.normalize[k]!.inserted !== run.inserted));
  if (differ) process.stderr.write(`normalize bench: ${provider}: the rounds wrote different numbers of interactions\n`);
  const runs = first.normalize.map((run, k) => {
    const all = rounds.map((r) => r.normalize[k]!);
    return {
      workers: run.workers,
      seconds: median(all.map((n) => n.seconds)),
      cpuSeconds: median(all.map((n) => n.cpuSeconds)),
      serverCpuSeconds: medianOf(all.map((n) => n.serverCpuSeconds)),
      inserted: run.inserted,
      skipped: run.skipped,
      peakRssMb: Math.max(...all.map((n) => n.peakRssMb)),
    };
  });
  return {
    provider,
    events,
    payloadMb,
    baseline: baselineOf((r) => r.baseline),
    baselineWithQueue: baselineOf((r) => r.baselineWithQueue),
    normalize: runs,
    ratios: runs.map((_, k) => median(rounds.map((r) => r.baseline.seconds / r.normalize[k]!.seconds))),
    rounds,
  };
}
