// `omni-ingest embed`: chunk and embed queued interactions (SPEC §7).
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import type { Embedder } from '../embed/embedder.js';
import { createLocalEmbedder } from '../embed/local.js';
import { createOpenAIEmbedder, DEFAULT_OPENAI_MODEL } from '../embed/openai.js';
import type { Logger } from '../logger.js';
import { providerNames } from '../providers/index.js';
import { parseRange, type RangeFlags } from '../stages/engine/range.js';
import type { RunSummary } from '../stages/engine/runner.js';
import { addRangeOptions, parseWorkers, runStageCommand } from './batch-options.js';
import { descriptionOf } from './catalog.js';
import { action, type RunState } from './run.js';

export const EMBEDDERS = ['openai', 'local'] as const;

export interface EmbedderFlags {
  embedder?: string | undefined;
  model?: string | undefined;
  dimensions?: string | undefined;
  inputsPerRequest?: string | undefined;
}

interface EmbedFlags extends RangeFlags, EmbedderFlags {
  concurrency?: string;
  workers?: string;
}

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new UsageError(`${flag} "${text}" must be a whole number between ${min} and ${max}`);
  return n;
}

/**
 * The embedder the flags and environment ask for: `--embedder`, else openai when OPENAI_API_KEY
 * is set, else the offline lexical one. openai without a key is a configuration error (exit 2);
 * a width other than 1536 is refused before anything runs. Synchronous and cheap (the SDK and
 * the tokenizer load on first use), so any command can call it (backfill does). `modelFlag`
 * names the model flag in messages (backfill calls it --embedding-model).
 */
export function createEmbedderFromFlags(flags: EmbedderFlags, options: { env?: Record<string, string | undefined>; logger?: Logger; modelFlag?: string } = {}): Embedder {
  const env = options.env ?? process.env;
  const modelFlag = options.modelFlag ?? '--model';
  const key = env.OPENAI_API_KEY?.trim() || undefined;
  const name = flags.embedder ?? (key ? 'openai' : 'local');
  if (!(EMBEDDERS as readonly string[]).includes(name)) throw new UsageError(`--embedder "${name}" is not one of ${EMBEDDERS.join(', ')}`);
  const model = flags.model?.trim();
  if (flags.model !== undefined && !model) throw new UsageError(`${modelFlag} must not be empty`);
  const dimensions = wholeNumber('--dimensions', flags.dimensions, 1, 65_536);
  const inputsPerRequest = wholeNumber('--inputs-per-request', flags.inputsPerRequest, 1, 2048);
  if (name === 'local') {
    if (model) throw new UsageError(`${modelFlag} "${model}" does not apply to the local embedder (it has one lexical model)`);
    if (flags.embedder === undefined) options.logger?.info('no OPENAI_API_KEY: using the local embedder (lexical: hashed words and character trigrams, not meaning)');
    const local = createLocalEmbedder({ maxInputsPerRequest: inputsPerRequest });
    if (dimensions !== undefined && dimensions !== local.dimensions) throw new UsageError(`--dimensions ${dimensions}: the local embedder makes ${local.dimensions}-dimensional vectors`);
    return local;
  }
  if (!key) {
    throw new ConfigError('--embedder openai needs an API key: OPENAI_API_KEY is not set', {
      hint: 'export OPENAI_API_KEY=… (and OPENAI_BASE_URL for a compatible server), or use --embedder local',
    });
  }
  const logger = options.logger;
  return createOpenAIEmbedder({
    apiKey: key,
    baseURL: env.OPENAI_BASE_URL?.trim() || undefined,
    model: model ?? DEFAULT_OPENAI_MODEL,
    dimensions,
    maxInputsPerRequest: inputsPerRequest,
    logger,
  });
}

export interface EmbedResultDocument extends RunSummary {
  embedder: { name: string; model: string; dimensions: number; lexical: boolean };
  costUsd: number | null;
}

const LEXICAL_NOTE = 'note: the local embedder is lexical (hashed words and character trigrams): it finds similar wording, not similar meaning; use --embedder openai for semantic search';

function dollars(micros: number): string {
  return `$${(micros / 1e6).toFixed(micros >= 1e6 ? 2 : 6)}`;
}

export function renderEmbed(d: EmbedResultDocument): string[] {
  const c = (k: string) => d.counts[k] ?? 0;
  const n = (v: number) => v.toLocaleString('en-US');
  const stop = d.stopReason === 'done' ? '' : ` (stopped: ${d.stopReason})`;
  const head = `embed${d.dryRun ? ' (dry run)' : ''}: ${n(c('events'))} interactions in ${(d.elapsedMs / 1000).toFixed(1)} s${stop}`;
  if (c('events') === 0 && d.stopReason === 'done') return [`embed: nothing queued${d.dryRun ? ' (dry run)' : ''} in the range (${d.embedder.name} ${d.embedder.model})`];
  const parts = d.dryRun
    ? [`${n(c('chunks'))} chunks: ${n(c('reused'))} already embedded, ${n(c('to_embed'))} to embed${c('empty') > 0 ? `; ${n(c('empty'))} without text` : ''}`]
    : [
        `${n(c('chunks'))} chunks: ${n(c('reused'))} reused, ${n(c('embedded'))} embedded, ${n(c('deleted'))} stale deleted, ${n(c('dead_lettered'))} dead-lettered`,
        ...(c('empty') + c('missing') + c('requeued') > 0 ? [`${n(c('empty'))} without text, ${n(c('missing'))} no longer there, ${n(c('requeued'))} changed meanwhile (queued again)`] : []),
      ];
  const cost = d.embedder.lexical ? 'free' : d.costUsd === null ? `cost unknown for ${d.embedder.model}` : `${d.dryRun ? '≈ ' : ''}${dollars(c('cost_usd_micros'))}`;
  const sent = `${n(c('tokens'))} tokens in ${d.dryRun ? '~' : ''}${n(c('requests'))} requests, ${cost} (${d.embedder.name} ${d.embedder.model})`;
  return [`${head}: ${parts.join('; ')}`, d.dryRun ? `would send ${sent}; nothing sent, nothing written` : sent, ...(d.embedder.lexical ? [LEXICAL_NOTE] : [])];
}

async function runEmbed(ctx: Context, flags: EmbedFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock, providerNames);
  const workers = parseWorkers(flags.workers, 2);
  const concurrency = wholeNumber('--concurrency', flags.concurrency, 1, 64) ?? 4;
  const embedder = createEmbedderFromFlags(flags, { logger: ctx.logger });
  // Loaded here, not at the top: the tokenizer is only for runs, never for `--help`.
  const { createEmbedStage } = await import('../stages/embed.js');
  const stage = createEmbedStage({ embedder, concurrency, logger: ctx.logger });
  const db = await ctx.db();
  const summary = await runStageCommand(ctx, db, stage, {
    range,
    workers,
    args: { embedder: embedder.name, model: embedder.model, concurrency, inputsPerRequest: embedder.maxInputsPerRequest },
  });
  const doc: EmbedResultDocument = {
    ...summary,
    embedder: { name: embedder.name, model: embedder.model, dimensions: embedder.dimensions, lexical: embedder.lexical },
    costUsd: embedder.usdPerMillionTokens === undefined ? null : (summary.counts.cost_usd_micros ?? 0) / 1e6,
  };
  ctx.out.result(doc, () => renderEmbed(doc));
  return ExitCode.ok;
}

export function registerEmbed(program: Command, state: RunState): void {
  const cmd = program
    .command('embed')
    .description(descriptionOf('embed'))
    .option('--embedder <name>', 'openai or local (default: openai when OPENAI_API_KEY is set, else local)')
    .option('--model <model>', `openai: the embedding model (default ${DEFAULT_OPENAI_MODEL})`)
    .option('--dimensions <n>', 'openai: ask text-embedding-3-* for this width (only 1536 fits the column)')
    .option('--concurrency <n>', 'provider requests in flight at once', '4')
    .option('--inputs-per-request <n>', 'at most this many chunks per request (provider limit 2048)')
    .option('--workers <n>', 'batches at once in this process, so one batch\'s database work overlaps another\'s requests (real server only)', '2');
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

Embedders: openai (OPENAI_API_KEY; OPENAI_BASE_URL for a compatible server; $0.02 per million
tokens for text-embedding-3-small) and local — offline, deterministic and free, but LEXICAL:
hashed words and character trigrams, so it matches wording, not meaning.

Examples:
  omni-ingest embed
  omni-ingest embed --embedder openai --since 24h --concurrency 8
  omni-ingest embed --dry-run --json            # chunks, tokens and estimated cost; sends nothing
  OPENAI_BASE_URL=http://localhost:8080/v1 omni-ingest embed --embedder openai --model my-model`,
    )
    .action(action<EmbedFlags>(state, (ctx, flags) => runEmbed(ctx, flags)));
}
