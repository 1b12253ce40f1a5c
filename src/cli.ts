// Wires commander: global options, the commands of the catalog (only the one being run is
// loaded), and the single catch that turns errors into exit codes (SPEC §4).
import { Command, CommanderError } from 'commander';
import { DEFAULT_DATA_DIR, DEFAULT_PROGRESS_INTERVAL, DEFAULT_RECONNECT_FOR } from './config.js';
import { CATALOG } from './commands/catalog.js';
import type { RunState } from './commands/run.js';
import { ExitCode, OmniError, UsageError } from './errors.js';
import { registerSecrets, scrub } from './secrets.js';
import { printable } from './text.js';
import { packageVersion } from './version.js';

/** The command named on the command line (skipping global options and their values). */
export function requestedCommand(argv: string[]): string | undefined {
  const withValue = new Set(['--database-url', '--data-dir', '--reconnect-for', '--progress-interval']);
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (withValue.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a === 'help' ? args[i + 1] : a;
  }
  return undefined;
}

export async function buildProgram(state: RunState, argv: string[]): Promise<Command> {
  const program = new Command('omni-ingest')
    .description("Operate a CRM's ingestion pipeline over PostgreSQL + pgvector.")
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--database-url <url>', 'PostgreSQL URL (env DATABASE_URL); absent: the embedded database')
    .option('--data-dir <dir>', `folder of the embedded database (env OMNI_INGEST_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--json', 'print exactly one JSON document (the result) on stdout')
    .option('--quiet', 'print only warnings and errors on stderr')
    .option('--no-progress', 'no progress bars or lines')
    .option(
      '--progress-interval <duration>',
      `when stderr is not a terminal (cron), a timestamped progress line this often; 0 for none (env OMNI_INGEST_PROGRESS_INTERVAL, default ${DEFAULT_PROGRESS_INTERVAL})`,
    )
    .option('--verbose', 'print debug detail (and the stack of an unexpected error) on stderr')
    .option(
      '--reconnect-for <duration>',
      `a run that loses its database connection reconnects and retries its batch for this long (env OMNI_INGEST_RECONNECT_FOR, default ${DEFAULT_RECONNECT_FOR})`,
    )
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Exit codes: 0 done, 1 the run failed, 2 usage or configuration error,
            3 a check found problems, 75 already running elsewhere (retry later),
            128+n stopped by signal n (130 SIGINT, 143 SIGTERM) before it finished.
Without --database-url the embedded database (PGlite + pgvector) in --data-dir is used.`,
    );
  // Only the command being run is loaded; the others are listed by name and description.
  const wanted = requestedCommand(argv);
  for (const entry of CATALOG) {
    const cmd = program.command(entry.name).description(entry.description);
    if (entry.name === wanted) (await entry.load())(cmd, state);
  }
  // Errors commander finds (unknown flag, missing argument) go through report() like every
  // other error, so --json still prints exactly one document; exitOverride and the silenced
  // output must be set on every subcommand, including those the command added.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride().configureOutput({ outputError: () => {} });
  return program;
}

/** Prints an error the way the run's flags ask (one JSON document with --json) and returns its exit code. */
export function report(err: unknown, state: RunState): number {
  const omni = err instanceof OmniError ? err : undefined;
  const exitCode = omni?.exitCode ?? ExitCode.failed;
  registerSecrets(state.secrets);
  const message = scrub(err instanceof Error ? err.message : String(err));
  const hint = omni?.hint ? scrub(omni.hint) : undefined;
  if (state.json) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: { code: omni?.code ?? 'internal', message, hint } }, null, 2)}\n`);
  }
  process.stderr.write(`error: ${printable(message)}\n`);
  if (hint) process.stderr.write(`hint: ${printable(hint)}\n`);
  if (!omni && state.verbose && err instanceof Error && err.stack) process.stderr.write(`${scrub(err.stack)}\n`);
  return exitCode;
}

/** What commander rejected, as our usage error: its message, and where to read the usage. */
function usageError(err: CommanderError, argv: string[]): UsageError {
  const message = err.message.replace(/^error: /, '');
  const command = requestedCommand(argv);
  const known = command !== undefined && CATALOG.some((c) => c.name === command);
  return new UsageError(message, { hint: `run \`omni-ingest ${known ? `${command} ` : ''}--help\` for usage` });
}

/** A reader that closed the pipe (`omni-ingest --help | head -1`) is not an error of ours. */
function ignoreClosedPipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') process.stderr.write(`error: cannot write to stdout: ${err.message}\n`);
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', ignoreClosedPipe);
  const state: RunState = {
    exitCode: ExitCode.ok,
    json: argv.includes('--json'),
    // OMNI_INGEST_DEBUG joins it once the configuration is read (run.ts).
    verbose: argv.includes('--verbose'),
    secrets: [],
  };
  try {
    const program = await buildProgram(state, argv);
    await program.parseAsync(argv);
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help (--help, `help <command>`) and --version are successes; the rest is usage (exit 2).
      if (err.exitCode === 0) return ExitCode.ok;
      // No command at all: the usage was printed on stderr already.
      if (err.code === 'commander.help') return ExitCode.usage;
      return report(usageError(err, argv), state);
    }
    return report(err, state);
  }
}
