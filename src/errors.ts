// Typed errors. Every error that leaves a command is one of these; the top-level catch in
// cli.ts turns `exitCode` into the process exit code (SPEC §4).

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  checkFailed: 3,
  busy: 75,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class OmniError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  /** A stable machine-readable name, printed in `--json` error documents. */
  readonly code: string = 'failed';
  /** What the operator can do about it, printed after the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad flags, bad values, unknown names: exit 2. */
export class UsageError extends OmniError {
  override readonly exitCode = ExitCode.usage;
  override readonly code = 'usage';
}

/** A configuration value (flag or environment variable) is invalid: exit 2. */
export class ConfigError extends OmniError {
  override readonly exitCode = ExitCode.usage;
  override readonly code = 'config';
}

/** A check (verify, doctor, …) found problems: exit 3. */
export class CheckFailedError extends OmniError {
  override readonly exitCode = ExitCode.checkFailed;
  override readonly code = 'check_failed';
}

/** A singleton operation is already running elsewhere: exit 75 (retry later). */
export class BusyError extends OmniError {
  override readonly exitCode = ExitCode.busy;
  override readonly code = 'busy';
}

/** The database refused or could not be reached: exit 1. */
export class DatabaseError extends OmniError {
  override readonly code: string;
  /** The SQLSTATE, when the server sent one. */
  readonly sqlState: string | undefined;

  constructor(message: string, options: { cause?: unknown; hint?: string; sqlState?: string; code?: string } = {}) {
    super(message, options);
    this.sqlState = options.sqlState;
    this.code = options.code ?? 'database';
  }
}

/**
 * The database named in the configuration cannot be used as configured (no such database, no
 * such role, wrong password): exit 2, like any other configuration error; retrying will not help.
 */
export class DatabaseConfigError extends DatabaseError {
  override readonly exitCode = ExitCode.usage;
}

/** A migration file or the migration history is not what it should be: exit 1. */
export class MigrationError extends OmniError {
  override readonly code = 'migration';
}

/**
 * The migration files and this database's history disagree (a file edited after it was applied,
 * migrations this version does not know): nothing ran and nothing will until the files or the
 * version are put right, a configuration error (exit 2) like every other command reports it.
 */
export class MigrationMismatchError extends MigrationError {
  override readonly exitCode = ExitCode.usage;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
