// The embedder flags every command that embeds text shares (embed, search, embeddings backfill
// --reembed), so a query is embedded exactly as the stored chunks were.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { Embedder } from '../embed/embedder.js';
import { DEFAULT_OPENAI_MODEL } from '../embed/openai.js';
import { LOCAL_BY_DEFAULT_NOTICE, selectEmbedder } from '../embed/select.js';
import { embedderFlag, nonEmpty, PROVIDER_TIME_OPTIONS, parseFlags, providerTimeFlags, wholeNumber } from './flags.js';

export interface EmbedderFlags {
  embedder?: string;
  model?: string;
  dimensions?: string;
  inputsPerRequest?: string;
  requestTimeout?: string;
  retryFor?: string;
}

export function addEmbedderOptions(cmd: Command): Command {
  return cmd
    .option('--embedder <name>', 'openai or local (default: openai when OPENAI_API_KEY is set, else local)')
    .option('--model <model>', `openai: the embedding model (default ${DEFAULT_OPENAI_MODEL})`)
    .option('--dimensions <n>', 'openai: ask text-embedding-3-* for this width (only 1536 fits the column)')
    .option(...PROVIDER_TIME_OPTIONS[0]!)
    .option(...PROVIDER_TIME_OPTIONS[1]!);
}

/** The embedder the flags and the configuration choose (the rule of select.ts). */
export function embedderFromFlags(ctx: Context, flags: EmbedderFlags): Embedder {
  const f = parseFlags(
    {
      embedder: embedderFlag,
      model: nonEmpty,
      dimensions: wholeNumber(1, 65_536),
      inputsPerRequest: wholeNumber(1, 2048),
      ...providerTimeFlags,
    },
    flags,
  );
  return selectEmbedder(
    {
      embedder: f.embedder,
      model: f.model,
      dimensions: f.dimensions,
      inputsPerRequest: f.inputsPerRequest,
      requestTimeoutMs: f.requestTimeout,
      retryForMs: f.retryFor,
    },
    ctx.config.openai,
    ctx.logger,
  );
}

/** "no OPENAI_API_KEY: using the local embedder", once the database is open and the embedder about to be used. */
export function noteDefaultEmbedder(ctx: Context, flags: EmbedderFlags, embedder: Embedder): void {
  if (flags.embedder === undefined && embedder.name === 'local') ctx.logger.info(LOCAL_BY_DEFAULT_NOTICE);
}
