import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { runChecks } from '../verify/run.js';
import { action, type RunState } from './run.js';

async function runVerify(ctx: Context): Promise<number> {
  const db = await ctx.db();
  const checks = await runChecks(db);
  const failed = checks.filter((c) => !c.ok);
  const { style } = ctx.out;
  ctx.out.result(
    { ok: failed.length === 0, database: db.target, passed: checks.length - failed.length, failed: failed.length, checks },
    () => [
      ...checks.map((c) => (c.ok ? `${style.green('✓')} ${c.name}: ${c.detail}` : `${style.red('✗')} ${c.name}: ${c.detail}`)),
      '',
      failed.length === 0 ? `all ${checks.length} checks passed` : `${failed.length} of ${checks.length} checks failed`,
    ],
  );
  return failed.length === 0 ? ExitCode.ok : ExitCode.checkFailed;
}

export function registerVerify(cmd: Command, state: RunState): void {
  cmd
    .addHelpText(
      'after',
      `
Checks column types, the embedding_v dimension, the single ON DELETE SET NULL foreign key, the
absence of the duplicate index, the helper tables, every unique constraint, row level security
and its policies per role, the GIN and timeline/contact/provider indexes, and the extension.

Examples:
  omni-ingest verify
  omni-ingest --database-url postgres://… verify --json`,
    )
    .action(action(state, (ctx) => runVerify(ctx)));
}
