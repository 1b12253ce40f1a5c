import type { Command } from 'commander';
import type { Context } from '../context.js';
import { runDemo, type DemoResult } from '../demo.js';
import { ExitCode } from '../errors.js';
import { nonEmpty, parseFlags, wholeNumber } from './flags.js';
import { renderBackfill } from './backfill.js';
import { withRunControls } from './batch-options.js';
import { action, type RunState } from './run.js';
import { renderSearch } from './search.js';
import { renderStats } from './stats.js';

const DEFAULT_QUERY = 'pricing for the team plan';

interface DemoFlags {
  events?: string;
  query?: string;
  force?: boolean;
}

function render(r: DemoResult): string[] {
  return [`database: ${r.database}`, '', ...renderBackfill(r.backfill), '', ...renderStats(r.stats), '', ...renderSearch(r.search)];
}

async function runDemoCommand(ctx: Context, flags: DemoFlags): Promise<number> {
  const f = parseFlags({ events: wholeNumber(0, 100_000), query: nonEmpty }, flags);
  const generated = f.events ?? 150;
  const result = await withRunControls(ctx, ({ progress }) =>
    runDemo(ctx, { generated, query: f.query ?? DEFAULT_QUERY, progress, force: flags.force === true }),
  );
  ctx.out.result(result, () => render(result));
  return ExitCode.ok;
}

export function registerDemo(cmd: Command, state: RunState): void {
  cmd
    .option('--events <n>', 'generated events per provider for each of two extra users (default: 150)')
    .option('--query <text>', `the semantic search to run at the end (default: "${DEFAULT_QUERY}")`)
    .option('--force', 'write the demo data into a server database that holds other data (refused without it)')
    .addHelpText(
      'after',
      `
Uses the embedded database unless --database-url is given, the offline embedder (lexical, not
semantic: it matches words) and the heuristic insights provider, so it needs no key and no
network. Running it again imports nothing new and changes nothing. On a server it refuses a
database that holds other data (tables it did not make, other users' events) unless --force.

Examples:
  omni-ingest demo
  omni-ingest demo --query "invoice overdue" --json`,
    )
    .action(action<DemoFlags>(state, (ctx, flags) => runDemoCommand(ctx, flags)));
}
