// `omni-ingest embed`: chunk and embed queued interactions (SPEC §7).
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { providerNames } from '../providers/index.js';
import type { RunSummary } from '../stages/engine/runner.js';
import { addRangeOptions, exitCodeOf, leftNote, runStageCommand } from './batch-options.js';
import { addEmbedderOptions, type EmbedderFlags, embedderFromFlags, noteDefaultEmbedder } from './embedder-options.js';
import { concurrencyFlag, oneOf, parseFlags, parseRange, workersFlag, type RangeFlags } from './flags.js';
import { action, type RunState } from './run.js';
import { batchStatusLines, renderBatchLines } from './embed-batch-render.js';
import { BATCH_PRICE_FACTOR } from '../embed/openai-batch.js';
import { selectBatchApi } from '../embed/select.js';
import { UsageError } from '../errors.js';
import { openBatches, type OpenBatches } from '../stages/embed/batch-sql.js';

interface EmbedFlags extends RangeFlags, EmbedderFlags {
  concurrency?: string;
  workers?: string;
  via?: string;
}

export interface EmbedResultDocument extends RunSummary {
  embedder: { name: string; model: string; dimensions: number; lexical: boolean };
  costUsd: number | null;
  via: 'direct' | 'batch';
  /** A dry run's estimate at the Batch API's price (half), when the price is known. */
  batchCostUsd?: number | null | undefined;
  /** The Batch API batches of this embedder still at the provider after the run. */
  openBatches?: OpenBatches | undefined;
}

const LEXICAL_NOTE =
  'note: the local embedder is lexical (hashed words and character trigrams): it finds similar wording, not similar meaning; use --embedder openai for semantic search';

function dollars(micros: number): string {
  return `$${(micros / 1e6).toFixed(micros >= 1e6 ? 2 : 6)}`;
}

export function renderEmbed(d: EmbedResultDocument): string[] {
  if (d.via === 'batch' && !d.dryRun) return renderBatchLines(d);
  const c = (k: string) => d.counts[k] ?? 0;
  const n = (v: number) => v.toLocaleString('en-US');
  const stop =
    d.stopReason === 'done'
      ? d.status === 'incomplete'
        ? ' (incomplete)'
        : ''
      : ` (stopped: ${d.stopReason === 'signal' ? (d.stopSignal ?? 'signal') : d.stopReason})`;
  const head = `embed${d.dryRun ? ' (dry run)' : ''}: ${n(c('events'))} interactions in ${(d.elapsedMs / 1000).toFixed(1)} s${stop}${leftNote(d)}`;
  if (c('events') === 0 && d.stopReason === 'done')
    return [
      `embed: nothing queued${d.dryRun ? ' (dry run)' : ''} in the range (${d.embedder.name} ${d.embedder.model})`,
      ...batchStatusLines(d),
    ];
  const parts = d.dryRun
    ? [
        `${n(c('chunks'))} chunks: ${n(c('reused'))} already embedded, ${n(c('to_embed'))} to embed${c('empty') > 0 ? `; ${n(c('empty'))} without text` : ''}`,
      ]
    : [
        `${n(c('chunks'))} chunks: ${n(c('reused'))} reused, ${n(c('embedded'))} embedded, ${n(c('deleted'))} stale deleted, ${n(c('dead_lettered'))} dead-lettered`,
        ...(c('empty') + c('missing') + c('requeued') > 0
          ? [`${n(c('empty'))} without text, ${n(c('missing'))} no longer there, ${n(c('requeued'))} changed meanwhile (queued again)`]
          : []),
      ];
  const cost = d.embedder.lexical
    ? 'free'
    : d.costUsd === null
      ? `cost unknown for ${d.embedder.model}`
      : d.dryRun
        ? `≈ ${dollars(c('cost_usd_micros'))} direct, ≈ ${dollars(c('cost_usd_micros') * BATCH_PRICE_FACTOR)} with --via batch`
        : dollars(c('cost_usd_micros'));
  const sent = `${n(c('tokens'))} tokens in ${d.dryRun ? '~' : ''}${n(c('requests'))} requests, ${cost} (${d.embedder.name} ${d.embedder.model})`;
  return [
    `${head}: ${parts.join('; ')}`,
    d.dryRun ? `would send ${sent}; nothing sent, nothing written` : sent,
    ...batchStatusLines(d),
    ...(d.embedder.lexical ? [LEXICAL_NOTE] : []),
  ];
}

async function runEmbed(ctx: Context, flags: EmbedFlags): Promise<number> {
  const f = parseFlags({ concurrency: concurrencyFlag, workers: workersFlag, via: oneOf(['direct', 'batch']) }, flags);
  // A submission's time is an upload's, not the database's: --via batch takes fixed batches.
  const range = parseRange(flags, ctx.clock, providerNames, f.via === 'batch' ? 'fixed' : 'adaptive');
  const concurrency = f.concurrency ?? 4;
  const via = f.via ?? 'direct';
  const embedder = embedderFromFlags(ctx, flags);
  const api = selectBatchApi(embedder, ctx.config.openai, {}, ctx.logger);
  if (via === 'batch' && !api)
    throw new UsageError(`--via batch needs the openai embedder (the ${embedder.name} embedder has no Batch API)`, {
      hint: 'set OPENAI_API_KEY, or drop --via batch',
    });
  // Loaded here, not at the top: the tokenizer is only for runs, never for `--help`.
  const { createEmbedStage } = await import('../stages/embed/index.js');
  const { withBatches } = await import('../stages/embed/batch.js');
  const direct = createEmbedStage({ embedder, concurrency, logger: ctx.logger });
  // Every openai run collects the Batch API results that are in; --via batch then submits the rest.
  const stage = api ? withBatches(direct, { embedder, api, logger: ctx.logger, submit: via === 'batch' }) : direct;
  const db = await ctx.db();
  noteDefaultEmbedder(ctx, flags, embedder);
  const summary = await runStageCommand(ctx, db, stage, {
    range,
    // The default applies where it can: on the embedded database only an explicit --workers is noted as ignored.
    workers: f.workers ?? (db.kind === 'server' ? 2 : 1),
    args: { embedder: embedder.name, model: embedder.model, concurrency, inputsPerRequest: embedder.maxInputsPerRequest, via },
  });
  const micros = summary.counts.cost_usd_micros ?? 0;
  const known = embedder.usdPerMillionTokens !== undefined;
  const doc: EmbedResultDocument = {
    ...summary,
    embedder: { name: embedder.name, model: embedder.model, dimensions: embedder.dimensions, lexical: embedder.lexical },
    costUsd: known ? micros / 1e6 : null,
    via,
    ...(summary.dryRun && !embedder.lexical ? { batchCostUsd: known ? (micros * BATCH_PRICE_FACTOR) / 1e6 : null } : {}),
    ...(api && !summary.dryRun ? { openBatches: await openBatches(db, embedder.name, embedder.model) } : {}),
  };
  ctx.out.result(doc, () => renderEmbed(doc));
  return exitCodeOf(summary);
}

export function registerEmbed(cmd: Command, state: RunState): void {
  addEmbedderOptions(cmd)
    .option('--concurrency <n>', 'provider requests in flight at once (default: 4)')
    .option('--inputs-per-request <n>', 'at most this many chunks per request (provider limit 2048)')
    .option('--via <mode>', 'direct (requests now) or batch (the Batch API: half price, results within 24 h; openai only)', 'direct')
    .option(
      '--workers <n>',
      "batches at once in this process, so one batch's database work overlaps another's requests (real server only; default: 2)",
    );
  addRangeOptions(cmd)
    .addHelpText(
      'after',
      `
Text is subject + blank line + body, cut into chunks of at most 512 cl100k tokens that overlap
by 64. A chunk this model already embedded for the interaction (same SHA-256 and position) is
not sent again: a re-run sends nothing, an edited interaction only its changed chunks, and its
stale chunks are deleted. Requests are packed up to the provider's limits (2048 inputs, 300k
tokens), sent --concurrency at a time with no transaction open, and retried on 429/5xx with
backoff honouring Retry-After; a 429 insufficient_quota stops the run at once. An input the
provider rejects is isolated by splitting its request and dead-lettered (stage embed); its
neighbours are stored. Vectors that are not 1536-dimensional are refused before any write.

--via batch (openai) packs the chunks to embed into JSONL files (one request per chunk, at most
50,000 lines and 200 MB a file), uploads them, creates Batch API batches and returns: half the
price, results within the provider's 24 h window. The interactions stay leased to their batch.
Every later openai run — embed either way, or backfill — polls the open batches, writes the
vectors that are in (exactly as the direct path would), dead-letters the lines the provider
rejected, and submits an expired or failed batch again with what is still missing (3 attempts,
then its interactions go back to the queue). Run it from cron; the database holds every batch's
state, so any machine's next run continues. --dry-run prints the cost both ways.

Embedders: openai (OPENAI_API_KEY; OPENAI_BASE_URL for a compatible server; $0.02 per million
tokens for text-embedding-3-small) and local — offline, deterministic and free, but LEXICAL:
hashed words and character trigrams, so it matches wording, not meaning.

Examples:
  omni-ingest embed
  omni-ingest embed --embedder openai --since 24h --concurrency 8
  omni-ingest embed --dry-run --json            # chunks, tokens and estimated cost; sends nothing
  omni-ingest embed --embedder openai --via batch   # submit a backfill at half price; run again to collect
  OPENAI_BASE_URL=http://localhost:8080/v1 omni-ingest embed --embedder openai --model my-model`,
    )
    .action(action<EmbedFlags>(state, (ctx, flags) => runEmbed(ctx, flags)));
}
