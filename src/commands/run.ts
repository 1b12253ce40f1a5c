// Turns a command's action into: resolve configuration, build the context, run, close the
// database, hand back an exit code. Errors propagate to the one catch in cli.ts.
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { resolveConfig, secretsOf, type Config, type GlobalFlags } from '../config.js';
import { createOutput, type Context } from '../context.js';
import type { Db } from '../db/connect.js';
import { createLogger, type Logger } from '../logger.js';
import { registerSecrets } from '../secrets.js';
import type { Readiness } from '../migrate/ready.js';

export type Action<O> = (ctx: Context, options: O, args: string[]) => Promise<number>;

/** What the one catch in cli.ts needs to know about the run, filled in as it goes. */
export interface RunState {
  exitCode: number;
  json: boolean;
  /** Show the stack of an unexpected error (--verbose, OMNI_INGEST_DEBUG). */
  verbose: boolean;
  secrets: string[];
}

interface DatabasePolicy {
  /** May it create the embedded database where there is none? */
  create: boolean;
  /** What it needs of the migrations before it runs ('none': it looks for itself). */
  needs: Readiness | 'none';
}

/**
 * What each command may meet (SPEC §4): only migrate and demo create a database; doctor reports
 * whatever it finds; verify checks a schema however it was applied (before `migrate --adopt`);
 * everything else needs every migration applied, or exits 2 saying to run migrate.
 */
const POLICIES: Record<string, DatabasePolicy> = {
  migrate: { create: true, needs: 'none' },
  demo: { create: true, needs: 'none' },
  doctor: { create: false, needs: 'none' },
  verify: { create: false, needs: 'schema' },
};
const DEFAULT_POLICY: DatabasePolicy = { create: false, needs: 'full' };
const READ_ONLY: DatabasePolicy = { create: false, needs: 'none' };

/** The top-level command (`errors` for `errors list`): commander's parent chain below the program. */
function topLevelName(command: Command): string {
  let c = command;
  while (c.parent?.parent) c = c.parent;
  return c.name();
}

/**
 * Connections a command needs: one for the ledger and, for each worker, one per batch it keeps
 * in flight (two for a pipelined stage), so `--workers` is never quietly capped by the pool.
 */
function poolSizeFor(options: object): number {
  // The flag is still text here; the command validates it (and refuses a bad one) itself.
  const n = Number((options as { workers?: unknown }).workers);
  const workers = Number.isInteger(n) && n >= 1 && n <= 32 ? n : 1;
  return Math.max(4, 2 * workers + 1);
}

async function openFor(config: Config, logger: Logger, policy: DatabasePolicy, poolSize: number): Promise<Db> {
  const { openDb } = await import('../db/connect.js');
  const db = await openDb(config, { logger, create: policy.create, poolSize });
  if (policy.needs === 'none') return db;
  try {
    const [{ assertMigrated }, { loadMigrationFiles }, { migrationsDir }] = await Promise.all([
      import('../migrate/ready.js'),
      import('../migrate/files.js'),
      import('../paths.js'),
    ]);
    await assertMigrated(db, loadMigrationFiles(migrationsDir), policy.needs);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Wraps an action for commander. The exit code lands in `state`; nothing calls process.exit. */
export function action<O>(state: RunState, fn: Action<O>) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received.at(-1) as Command;
    const options = command.optsWithGlobals<GlobalFlags & O>();
    const args = received.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a)]));
    state.json = options.json === true;
    const config = resolveConfig(options);
    state.secrets = secretsOf(config);
    registerSecrets(state.secrets);
    state.verbose ||= config.verbose || config.debug;
    const logger = createLogger(config);
    const top = topLevelName(command);
    // `migrate status` only reads: it must not create the database it reports on.
    const policy = top === 'migrate' && command.name() === 'status' ? READ_ONLY : (POLICIES[top] ?? DEFAULT_POLICY);
    let db: Db | undefined;
    let opening: Promise<Db> | undefined;
    const ctx: Context = {
      config,
      logger,
      clock: systemClock,
      out: createOutput(config.json, config.color),
      db: () => {
        opening ??= openFor(config, logger, policy, poolSizeFor(options)).then((opened) => (db = opened));
        return opening;
      },
    };
    try {
      state.exitCode = await fn(ctx, options, args);
    } finally {
      await db?.close();
    }
  };
}
