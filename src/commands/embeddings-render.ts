// The human output of `omni-ingest embeddings …` (the --json documents are the results as they are).
import type { ChalkInstance } from 'chalk';
import type { BackfillResult } from '../embeddings/backfill.js';
import type { IndexResult } from '../embeddings/hnsw.js';
import type { ReembedResult } from '../embeddings/reembed.js';
import type { EmbeddingsStatus, IndexInfo } from '../embeddings/status.js';
import type { SwapResult } from '../embeddings/swap.js';
import type { VerifyReport } from '../embeddings/verify.js';
import type { RunSummary } from '../stages/engine/runner.js';

const n = (v: number | undefined) => (v ?? 0).toLocaleString('en-US');
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function stateLine(phase: string, vector: string, legacy: string | null): string {
  const where = `vectors in ${vector}${legacy ? `, legacy text in ${legacy}` : ', no legacy text column'}`;
  return phase === 'swapped' ? `swapped: ${where}` : `before the swap: ${where}`;
}

function indexText(i: IndexInfo): string {
  const params = i.m !== null ? `, m ${i.m}, ef_construction ${i.efConstruction}` : '';
  return `${i.name} (${i.method} ${i.opclass}${params}, ${mb(i.bytes)}, ${i.valid ? 'valid' : 'INVALID: an interrupted build; `embeddings index` rebuilds it'})`;
}

export function renderStatus(s: EmbeddingsStatus): string[] {
  const l = s.legacy;
  const t = s.trigger;
  const trigger = !t.installed
    ? 'not installed'
    : `installed (${t.direction === 'vector' ? 'vector → legacy text' : 'legacy text → vector'})${t.enabled ? '' : ', DISABLED'}${t.direction === t.expected ? '' : ', the wrong direction for this state'}`;
  const b = s.backfill;
  const others = s.indexes.filter((i) => i !== s.index && i.name !== s.index?.name);
  return [
    `embeddings: ${n(s.rows)} rows, ${n(s.withVector)} with a vector, ${n(s.withoutVector)} without — ${stateLine(s.phase, s.vectorColumn, s.legacyColumn)}`,
    `legacy values: ${n(l.valid)} valid 1536-d (${n(s.toCopy)} still to copy), ${n(l.wrong_dimension)} wrong dimension, ${n(l.malformed)} malformed, ${n(l.non_finite)} non-finite, ${n(l.null)} none`,
    `sync trigger: ${trigger}`,
    `backfill: ${b ? `pass ${b.pass}, ${n(b.ranges_done)} of ${n(b.ranges)} ranges done, ${n(b.rows_examined)} rows examined${b.finished_at ? `, finished ${b.finished_at.toISOString()}` : ''}` : 'not run yet'}${s.reembedQueued ? `; ${n(s.reembedQueued)} rows queued for --reembed` : ''}`,
    `index: ${s.index ? indexText(s.index) : 'no valid HNSW cosine index (`embeddings index`)'}`,
    ...others.map((i) => `  also: ${indexText(i)}`),
    `next: ${s.next}`,
  ];
}

function stopped(s: RunSummary, what: string): string[] {
  if (s.stopReason === 'done' || s.stopReason === 'limit') return [];
  return [`stopped (${s.stopReason}) with ${what} left: run it again to continue from where it stopped`];
}

export function renderBackfill(r: BackfillResult): string[] {
  if (r.skipped || !r.summary) return [`embeddings backfill: nothing to do: ${r.skipped ?? 'no work'}`];
  const s = r.summary;
  const c = s.counts;
  const bad = `${n(c.wrong_dimension)} wrong dimension, ${n(c.malformed)} malformed, ${n(c.non_finite)} non-finite`;
  if (s.dryRun) {
    return [
      `embeddings backfill (dry run): ${n(c.events)} rows: ${n(c.copied)} would be copied, ${n(c.present)} have a vector, ${n(c.empty)} have no value; would be left null: ${bad}; nothing written`,
    ];
  }
  const head = `embeddings backfill: ${n(c.events)} rows in ${seconds(s.elapsedMs)} (${n(s.eventsPerSecond)}/s)`;
  const setup = [
    r.trigger === 'installed' ? 'sync trigger installed' : 'sync trigger in place',
    r.pass === null ? 'nothing left to copy' : `pass ${r.pass}${r.newPass ? ' (new)' : ''}`,
  ].join('; ');
  const leftNull = (c.wrong_dimension ?? 0) + (c.malformed ?? 0) + (c.non_finite ?? 0) + (c.empty ?? 0);
  return [
    `${head}: ${n(c.copied)} copied, ${n(c.present)} had a vector already, ${n(c.empty)} without any value; left null: ${bad} (${n(c.dead_lettered)} new dead letters, stage swap)`,
    setup,
    ...stopped(s, 'part of the pass'),
    ...(leftNull > 0 ? [`${n(leftNull)} rows have no vector: \`embeddings backfill --reembed\` embeds their interactions' text`] : []),
  ];
}

function dollars(micros: number | undefined): string {
  const m = micros ?? 0;
  return `$${(m / 1e6).toFixed(m >= 1e6 ? 2 : 6)}`;
}

export function renderReembed(r: ReembedResult, embedder: { name: string; model: string; lexical: boolean }): string[] {
  const s = r.summary;
  const c = s.counts;
  const cost = embedder.lexical ? 'free' : `${s.dryRun ? '≈ ' : ''}${dollars(c.cost_usd_micros)}`;
  const who = `${embedder.name} ${embedder.model}`;
  if (s.dryRun) {
    return [
      `reembed (dry run): ${n(c.events)} rows without a vector, from ${n(c.interactions)} interactions (${n(c.no_owner)} without an interaction, ${n(c.no_text)} without text)`,
      `would send ${n(c.chunks_embedded)} chunks (${n(c.chunks_reused)} already embedded): ${n(c.tokens)} tokens in ~${n(c.requests)} requests, ${cost} (${who}); nothing sent, nothing written`,
    ];
  }
  return [
    `reembed: ${n(c.events)} rows in ${seconds(s.elapsedMs)}: ${n(c.reembedded)} given the vector of their interaction's text, ${n(c.no_owner)} without an interaction, ${n(c.no_text)} without text, ${n(c.rejected)} refused by the provider`,
    `${n(c.chunks_embedded)} chunks embedded, ${n(c.chunks_reused)} reused: ${n(c.tokens)} tokens in ${n(c.requests)} requests, ${cost} (${who})`,
    ...stopped(s, 'rows'),
  ];
}

export function renderVerify(r: VerifyReport, style: ChalkInstance): string[] {
  const lines = r.checks.map((c) =>
    c.ok ? `${style.green('✓')} ${c.name}: none` : `${style.red('✗')} ${c.name}: ${n(c.count)} (e.g. ${c.examples.join(', ')})`,
  );
  const failed = r.checks.filter((c) => !c.ok).length;
  const verdict = r.stopped
    ? 'stopped before the last row: not verified'
    : failed === 0
      ? 'every check passed'
      : `${failed} of ${r.checks.length} checks failed`;
  return [
    ...lines,
    `embeddings verify: ${n(r.rows)} rows checked in ${seconds(r.elapsedMs)} (${stateLine(r.phase, r.vectorColumn, r.legacyColumn)}): ${verdict}`,
  ];
}

export function renderSwap(r: SwapResult, style: ChalkInstance): string[] {
  const name =
    r.action === 'rolled-back' || (r.action === 'already' && r.phase === 'before-swap') ? 'embeddings swap --rollback' : 'embeddings swap';
  const took = r.heldMs === null ? '' : ` in ${r.heldMs} ms (${r.attempts} attempt${r.attempts === 1 ? '' : 's'} at the lock)`;
  switch (r.action) {
    case 'refused':
      if (r.withoutVector)
        return [
          `embeddings swap: refused: ${r.withoutVector.count} row(s) of ${r.vectorColumn} have no vector, written after verify passed (${r.withoutVector.examples.join(', ')}); nothing changed`,
          '`embeddings backfill` (--reembed for values it cannot copy), then `embeddings swap` again',
        ];
      return [...(r.verify ? renderVerify(r.verify, style) : []), 'embeddings swap: refused: verify found problems; nothing changed'];
    case 'already':
      return [`${name}: nothing to do, ${stateLine(r.phase, r.vectorColumn, r.legacyColumn)}`];
    case 'swapped':
      return [
        `embeddings swap: done${took}: embedding is the vector(1536) column, the legacy text is embedding_legacy`,
        'the sync trigger now mirrors vectors written to embedding into embedding_legacy, so `embeddings swap --rollback` loses nothing',
      ];
    case 'rolled-back':
      return [
        `embeddings swap --rollback: done${took}: embedding_v is the vector column again, embedding the legacy text; legacy writes fill vectors`,
      ];
  }
}

export function renderIndex(r: IndexResult): string[] {
  const repaired = r.repaired.length ? [`dropped index(es) left by an interrupted build: ${r.repaired.join(', ')}`] : [];
  if (r.adopted !== null && r.index)
    return [
      ...repaired,
      `embeddings index: took over ${r.adopted}, finished by an interrupted rebuild, as ${indexText(r.index)}${r.replaced ? `; replaced ${r.replaced}` : ''}`,
    ];
  if (r.action === 'present' || !r.index)
    return [
      ...repaired,
      `embeddings index: ${r.index ? indexText(r.index) : 'no index'} is there; nothing to do (--rebuild builds it again)`,
    ];
  const how = r.concurrently ? 'concurrently' : 'without CONCURRENTLY (embedded database: one connection)';
  return [
    ...repaired,
    `embeddings index: ${r.action} ${indexText(r.index)} on ${r.column} in ${r.seconds.toFixed(1)} s, ${how}; maintenance_work_mem ${r.maintenanceWorkMem ?? 'as set'}${r.replaced ? `; replaced ${r.replaced}` : ''}`,
  ];
}
