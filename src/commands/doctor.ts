import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode, OmniError } from '../errors.js';
import { diagnose, type Finding } from '../doctor.js';
import { action, type RunState } from './run.js';

async function runDoctor(ctx: Context): Promise<number> {
  let findings: Finding[];
  try {
    findings = await diagnose(await ctx.db(), ctx.config.openai);
  } catch (err) {
    // Not being able to connect is the first thing doctor exists to report.
    if (!(err instanceof OmniError)) throw err;
    findings = [{ name: 'connect', ok: false, detail: err.message, ...(err.hint ? { hint: err.hint } : {}) }];
  }
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
    .addHelpText('after', '\nExamples:\n  omni-ingest doctor\n  DATABASE_URL=postgres://… omni-ingest doctor --json')
    .action(action(state, (ctx) => runDoctor(ctx)));
}
