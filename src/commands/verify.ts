import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { DEFAULT_SAMPLE } from '../verify/deep.js';
import { runChecks } from '../verify/run.js';
import { parseFlags, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';

interface VerifyFlags {
  thorough?: boolean;
  sample?: string;
}

async function runVerify(ctx: Context, flags: VerifyFlags): Promise<number> {
  const f = parseFlags({ sample: wholeNumber(1, 100_000_000) }, flags);
  const db = await ctx.db();
  const checks = await runChecks(db, { thorough: flags.thorough === true, sample: f.sample ?? DEFAULT_SAMPLE });
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
    .option('--thorough', 'recompute every insight fingerprint, not a sample')
    .option('--sample <n>', `insight fingerprints recomputed without --thorough (default: ${DEFAULT_SAMPLE})`)
    .addHelpText(
      'after',
      `
Checks column types, the embedding_v dimension, the single ON DELETE SET NULL foreign key, the
absence of the duplicate index, the helper tables, every unique constraint, row level security
and its policies per role, the GIN and timeline/contact/provider indexes, and the extension;
then the table privileges of service_role, authenticated and anon, the insight fingerprint
trigger and values (recomputed: a sample, or all with --thorough), and omni-ingest's own tables
and queue triggers for each of its migrations applied.

Examples:
  omni-ingest verify
  omni-ingest verify --thorough
  omni-ingest --database-url postgres://… verify --json`,
    )
    .action(action<VerifyFlags>(state, (ctx, flags) => runVerify(ctx, flags)));
}
