// Wires commander: global options, one register() per command file, and the single catch that
// turns errors into exit codes (SPEC §4).
import { Command, CommanderError } from 'commander';
import { DEFAULT_DATA_DIR } from './config.js';
import { registerBackfill } from './commands/backfill.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerEmbed } from './commands/embed.js';
import { registerImport } from './commands/import.js';
import { registerInsights } from './commands/insights.js';
import { registerMigrate } from './commands/migrate.js';
import { registerNormalize } from './commands/normalize.js';
import { registerPurge } from './commands/purge.js';
import { registerResolve } from './commands/resolve.js';
import { registerRuns } from './commands/runs.js';
import { registerStats } from './commands/stats.js';
import { registerTimeline } from './commands/timeline.js';
import type { RunState } from './commands/run.js';
import { registerVerify } from './commands/verify.js';
import { ExitCode, OmniError } from './errors.js';
import { packageVersion } from './version.js';

export function buildProgram(state: RunState): Command {
  const program = new Command('omni-ingest')
    .description("Operate a CRM's ingestion pipeline over PostgreSQL + pgvector.")
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--database-url <url>', 'PostgreSQL URL (env DATABASE_URL); absent: the embedded database')
    .option('--data-dir <dir>', `folder of the embedded database (env OMNI_INGEST_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--json', 'print exactly one JSON document (the result) on stdout')
    .option('--quiet', 'print only warnings and errors on stderr')
    .option('--no-progress', 'no progress bars')
    .option('--verbose', 'print debug detail on stderr')
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 done, 1 the run failed, 2 usage or configuration error,
            3 a check found problems, 75 already running elsewhere (retry later).
Without --database-url the embedded database (PGlite + pgvector) in --data-dir is used.`,
    );
  registerMigrate(program, state);
  registerVerify(program, state);
  registerDoctor(program, state);
  registerImport(program, state);
  registerNormalize(program, state);
  registerResolve(program, state);
  registerEmbed(program, state);
  registerInsights(program, state);
  registerTimeline(program, state);
  registerPurge(program, state);
  registerRuns(program, state);
  registerStats(program, state);
  registerBackfill(program, state);
  registerDemo(program, state);
  // Subcommands inherit exitOverride only when set before they are added; set it on all.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}

function scrub(text: string, secrets: string[]): string {
  return secrets.reduce((acc, secret) => acc.split(secret).join('****'), text);
}

function report(err: unknown, state: RunState): number {
  const omni = err instanceof OmniError ? err : undefined;
  const exitCode = omni?.exitCode ?? ExitCode.failed;
  const message = scrub(err instanceof Error ? err.message : String(err), state.secrets);
  const hint = omni?.hint ? scrub(omni.hint, state.secrets) : undefined;
  if (state.json) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: { code: omni?.code ?? 'internal', message, hint } }, null, 2)}\n`);
  }
  process.stderr.write(`error: ${message}\n`);
  if (hint) process.stderr.write(`hint: ${hint}\n`);
  if (!omni && process.env.OMNI_INGEST_DEBUG && err instanceof Error && err.stack) {
    process.stderr.write(`${scrub(err.stack, state.secrets)}\n`);
  }
  return exitCode;
}

export async function main(argv: string[]): Promise<number> {
  const state: RunState = { exitCode: ExitCode.ok, json: argv.includes('--json'), secrets: [] };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is usage (exit 2).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
      if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
      return ExitCode.usage;
    }
    return report(err, state);
  }
}
