// The normalize benchmark's tables: speed beside the in-database baseline, then the memory curve.
import type { NormalizeBenchRow } from './normalize-rounds.js';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const timeAndRate = (events: number, seconds: number) => `${seconds.toFixed(1)} s (${int(events / seconds)}/s)`;
/** The server's CPU meanwhile, where it could be read (a server on this machine). */
const server = (cpu: number | undefined) => (cpu === undefined ? '' : `; server ${cpu.toFixed(1)} s CPU`);

/** Rows of cells → a Markdown table with aligned columns (pasted into the README as it is). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The speed ratio of worker count `k`; over several rounds, the median and the rounds' lowest and highest. */
function ratioCell(r: NormalizeBenchRow, k: number): string {
  const each = r.rounds.map((round) => round.baseline.seconds / round.normalize[k]!.seconds);
  const median = `${r.ratios[k]!.toFixed(2)}×`;
  return each.length < 2 ? median : `${median} (${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)})`;
}

/**
 * Speed: each contender's time and rate, and normalize's speed ratio to the plain INSERT … SELECT
 * (baseline time ÷ normalize time, the median of the rounds': ≥ 0.8× with one worker and ≥ 1.0× with two is the goal).
 * Interactions: what the SQL and the tool wrote (they differ only where the SQL leaves a case out).
 * CPU: normalize's own process, and the server's for every contender (a baseline is all server):
 * together they say whether a run waited on the tool or on the database, and how much of the
 * machine's cores both used.
 */
function speedTable(rows: NormalizeBenchRow[]): string {
  const workers = rows[0]?.normalize.map((n) => n.workers) ?? [];
  const head = [
    'provider',
    'events',
    'payload',
    'interactions SQL / tool',
    'INSERT … SELECT',
    '+ queue deletes',
    ...workers.flatMap((w) => [`normalize, ${w} worker${w > 1 ? 's' : ''} (its own CPU)`, 'speed ÷ SQL']),
    'peak RSS',
  ];
  const body = rows.map((r) => [
    r.provider,
    int(r.events),
    `${r.payloadMb.toFixed(0)} MB`,
    `${int(r.baseline.interactions)} / ${r.normalize.map((n) => int(n.inserted)).join(', ')}`,
    `${timeAndRate(r.events, r.baseline.seconds)}${server(r.baseline.serverCpuSeconds)}`,
    `${timeAndRate(r.events, r.baselineWithQueue.seconds)}${server(r.baselineWithQueue.serverCpuSeconds)}`,
    ...r.normalize.flatMap((n, k) => [
      `${timeAndRate(r.events, n.seconds)}; ${n.cpuSeconds.toFixed(1)} s CPU${server(n.serverCpuSeconds)}`,
      ratioCell(r, k),
    ]),
    r.normalize.map((n) => `${n.peakRssMb.toFixed(0)} MB`).join(' / '),
  ]);
  return table(head, body);
}

/** Memory: normalize's peak RSS at each size, per provider and worker count, and how far it moved. */
function memoryTable(rows: NormalizeBenchRow[]): string {
  const sizes = [...new Set(rows.map((r) => r.events))];
  const head = ['provider', 'workers', ...sizes.map((s) => `${int(s)} events`), 'max ÷ min', '< 150 MB and within 10%'];
  const body: string[][] = [];
  for (const provider of new Set(rows.map((r) => r.provider))) {
    const mine = rows.filter((r) => r.provider === provider);
    for (const workers of mine[0]?.normalize.map((n) => n.workers) ?? []) {
      const rss = sizes.map((s) => mine.find((r) => r.events === s)?.normalize.find((n) => n.workers === workers)?.peakRssMb);
      const known = rss.filter((m): m is number => m !== undefined);
      const spread = Math.max(...known) / Math.min(...known);
      const met = Math.max(...known) < 150 && spread <= 1.1;
      body.push([
        provider,
        String(workers),
        ...rss.map((m) => (m === undefined ? '' : `${m.toFixed(0)} MB`)),
        `${spread.toFixed(2)}×`,
        met ? 'yes' : 'no',
      ]);
    }
  }
  return table(head, body);
}

export function printNormalize(rows: NormalizeBenchRow[]): string {
  const rounds = rows[0]?.rounds.length ?? 1;
  const note =
    rounds > 1
      ? `\n\nEvery contender ran ${rounds} times, in turn: times are medians, a ratio is the median of the rounds' ratios (lowest–highest in brackets), peak RSS the highest.`
      : '';
  return `${speedTable(rows)}${note}\n\nnormalize's peak RSS, each run in a process of its own:\n\n${memoryTable(rows)}`;
}
