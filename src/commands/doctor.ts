import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, OmniError } from '../errors.js';
import { diagnose, type Finding } from '../doctor.js';
import { checkProviderKey } from '../doctor-provider.js';
import { action, type RunState } from './run.js';

async function runDoctor(ctx: Context, flags: { offline?: boolean }): Promise<number> {
  let findings: Finding[];
  try {
    findings = await diagnose(await ctx.db(), ctx.config.openai);
  } catch (err) {
    // Not being able to connect is the first thing doctor exists to report.
    if (!(err instanceof OmniError)) throw err;
    findings = [{ name: 'connect', ok: false, detail: err.message, ...(err.hint ? { hint: err.hint } : {}) }];
  }
  const key = flags.offline ? undefined : await checkProviderKey(ctx.config.openai);
  if (key) findings.push(key);
  const failed = findings.filter((f) => !f.ok);
  const { style } = ctx.out;
  ctx.out.result({ ok: failed.length === 0, findings }, () => [
    ...findings.flatMap((f) => [
      `${f.ok ? (f.warn ? style.yellow('!') : style.green('✓')) : style.red('✗')} ${f.name}: ${f.detail}`,
      ...(f.hint && (!f.ok || f.warn) ? [`    → ${f.hint}`] : []),
    ]),
    '',
    failed.length === 0 ? 'no problems found' : `${failed.length} problem${failed.length === 1 ? '' : 's'} found`,
  ]);
  return failed.length === 0 ? ExitCode.ok : ExitCode.checkFailed;
}

export function registerDoctor(cmd: Command, state: RunState): void {
  cmd
    .option('--offline', 'do not check the provider key with the provider (one GET /models when OPENAI_API_KEY is set)')
    .addHelpText(
      'after',
      '\nExamples:\n  omni-ingest doctor\n  omni-ingest doctor --offline\n  DATABASE_URL=postgres://… omni-ingest doctor --json',
    )
    .action(action<{ offline?: boolean }>(state, (ctx, flags) => runDoctor(ctx, flags)));
}
