// The text summary of `embed --via batch`: what was submitted, what was collected, and what is
// still at the provider (the next run collects it).
import type { OpenBatches } from '../stages/embed/batch-sql.js';
import type { RunSummary } from '../stages/engine/runner.js';

/** What of embed's result document these lines read (the document itself is embed.ts's). */
interface BatchDoc extends Pick<RunSummary, 'counts' | 'stopReason' | 'stopSignal' | 'elapsedMs'> {
  embedder: { name: string; model: string };
  costUsd: number | null;
  openBatches?: OpenBatches | undefined;
}

const n = (v: number) => v.toLocaleString('en-US');
const plural = (k: number, one: string, many = `${one}s`) => `${n(k)} ${k === 1 ? one : many}`;

function dollars(micros: number): string {
  return `$${(micros / 1e6).toFixed(micros >= 1e6 ? 2 : 6)}`;
}

/** What the Batch API part of an embed run did, and what it left open (empty when nothing). */
export function batchStatusLines(d: BatchDoc): string[] {
  const c = (k: string) => d.counts[k] ?? 0;
  const lines: string[] = [];
  if (c('batches_collected') > 0) {
    const again =
      c('batches_resubmitted') > 0 ? `, ${plural(c('batches_resubmitted'), 'batch', 'batches')} expired or failed and submitted again` : '';
    const failed = c('batches_failed') > 0 ? `, ${plural(c('batches_failed'), 'batch', 'batches')} out of attempts` : '';
    lines.push(`collected ${plural(c('batches_collected'), 'Batch API batch', 'Batch API batches')}${again}${failed}`);
  }
  const open = d.openBatches;
  if (open && open.batches > 0)
    lines.push(
      `at the provider: ${plural(open.batches, 'batch', 'batches')} (${plural(open.interactions, 'interaction')}, ${plural(open.lines, 'chunk')}); the next embed or backfill run collects them`,
    );
  return lines;
}

export function renderBatchLines(d: BatchDoc): string[] {
  const c = (k: string) => d.counts[k] ?? 0;
  const stop = d.stopReason === 'done' ? '' : ` (stopped: ${d.stopReason === 'signal' ? (d.stopSignal ?? 'signal') : d.stopReason})`;
  const submitted =
    c('batches_submitted') > 0
      ? `submitted ${plural(c('submitted'), 'interaction')} (${plural(c('lines'), 'chunk')}) in ${plural(c('batches_submitted'), 'batch', 'batches')}`
      : 'nothing new to submit';
  const written =
    c('events') > 0
      ? `; wrote ${plural(c('events'), 'interaction')}: ${n(c('chunks'))} chunks, ${n(c('reused'))} reused, ${n(c('embedded'))} embedded, ${n(c('deleted'))} stale deleted, ${n(c('dead_lettered'))} dead-lettered`
      : '';
  const released = c('released') > 0 ? `; ${plural(c('released'), 'interaction')} back in the queue` : '';
  const cost = d.costUsd === null ? `cost unknown for ${d.embedder.model}` : `${dollars(c('cost_usd_micros'))} at the Batch API price`;
  return [
    `embed via batch in ${(d.elapsedMs / 1000).toFixed(1)} s${stop}: ${submitted}${written}${released}`,
    ...(c('batches_collected') + c('tokens') > 0
      ? [`${n(c('tokens'))} tokens collected, ${cost} (${d.embedder.name} ${d.embedder.model})`]
      : []),
    ...batchStatusLines(d),
  ];
}
