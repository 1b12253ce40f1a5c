// `omni-ingest search "<text>"`: the interactions nearest to a text, by embedding (SPEC §4).
import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { SearchHit, SearchResult } from '../embeddings/search.js';
import { ExitCode, UsageError } from '../errors.js';
import { providerNames } from '../providers/index.js';
import { addRangeOptions } from './batch-options.js';
import { addEmbedderOptions, type EmbedderFlags, embedderFromFlags, noteDefaultEmbedder } from './embedder-options.js';
import { parseFlags, parseRange, type RangeFlags, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

interface SearchFlags extends Pick<RangeFlags, 'since' | 'until' | 'user' | 'provider'>, EmbedderFlags {
  limit?: string;
  explain?: boolean;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

const when = (d: Date | number | null) =>
  d instanceof Date ? d.toISOString().slice(0, 16).replace('T', ' ') : (d === null ? '-' : d > 0 ? 'infinity' : '-infinity').padEnd(16);

/** One line per hit: distance, when, who, type, subject — snippet. */
export function renderHits(hits: SearchHit[]): string[] {
  if (hits.length === 0) return ['  no embedded interactions match'];
  return hits.map((h) => {
    const text = [h.subject, h.snippet].filter((s): s is string => !!s && s.length > 0).map(oneLine);
    return `  ${h.distance.toFixed(3)}  ${when(h.occurred_at)}  ${oneLine(h.who ?? '-')
      .slice(0, 24)
      .padEnd(24)}  ${h.type.padEnd(16)} ${text.join(' — ').slice(0, 90)}`;
  });
}

export function renderSearch(r: SearchResult): string[] {
  const how = r.index ? `through ${r.index}` : 'no index: a sequential scan (`embeddings index` builds one)';
  const lexical = r.embedder.lexical ? ', lexical: it matches words, not meaning' : '';
  return [
    `search "${r.query}" (${r.embedder.name} ${r.embedder.model}${lexical}) over ${r.vectorColumn}, ${how}:`,
    ...renderHits(r.hits),
    ...(r.plan
      ? ['', `plan${r.usesIndex ? ` (uses ${r.index})` : r.index ? ` (does not use ${r.index})` : ''}:`, ...r.plan.map((l) => `  ${l}`)]
      : []),
  ];
}

async function runSearch(ctx: Context, words: string[], flags: SearchFlags): Promise<number> {
  const typed = words.join(' ');
  const text = typed.trim();
  if (text.length === 0) throw new UsageError(`search "${typed}": the text to look for must not be empty`);
  // --limit here counts hits, not a batch run's events: parsed on its own, not as a range flag.
  const { limit } = parseFlags({ limit: wholeNumber(1, 1000) }, flags);
  const range = parseRange(
    { since: flags.since, until: flags.until, user: flags.user, provider: flags.provider },
    ctx.clock,
    providerNames,
  );
  const embedder = embedderFromFlags(ctx, flags);
  // Loaded here: the tokenizer and pgvector are for runs, never for `--help`.
  const { searchInteractions } = await import('../embeddings/search.js');
  const db = await ctx.db();
  noteDefaultEmbedder(ctx, flags, embedder);
  const result = await searchInteractions(db, { text, limit: limit ?? 10, filters: range, embedder, explain: flags.explain === true });
  ctx.out.result(result, () => renderSearch(result));
  return ExitCode.ok;
}

export function registerSearch(cmd: Command, state: RunState): void {
  cmd.argument('<text...>', 'what to look for (quotes optional)').option('--limit <n>', 'how many interactions to show (default: 10)');
  addRangeOptions(cmd, ['since', 'until', 'user', 'provider']);
  addEmbedderOptions(cmd)
    .option('--explain', 'also print the query plan (EXPLAIN ANALYZE): does it use the HNSW index?')
    .addHelpText(
      'after',
      `
The text is embedded by the embedder embed uses (the same rule and flags: openai when
OPENAI_API_KEY is set, else the offline local one), so it lands in the space of the stored
vectors; search with the embedder that made them. The nearest chunks by cosine distance are
found through the HNSW index when there is one (embeddings index), in whichever column holds the
vectors (before or after embeddings swap), and collapsed to one line per interaction: distance,
when, who, type, subject and the start of the text.

Examples:
  omni-ingest search "pricing for the team plan"
  omni-ingest search invoice overdue --user 11111111-1111-4111-8111-111111111111 --limit 5
  omni-ingest search "renewal" --provider gmail --since 90d --json
  omni-ingest search "renewal" --explain`,
    )
    .action(action<SearchFlags>(state, (ctx, flags, args) => runSearch(ctx, args, flags)));
}
