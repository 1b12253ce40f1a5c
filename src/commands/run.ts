// Turns a command's action into: resolve configuration, build the context, run, close the
// database, hand back an exit code. Errors propagate to the one catch in cli.ts.
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { resolveConfig, secretsOf, type GlobalFlags } from '../config.js';
import { createOutput, type Context } from '../context.js';
import type { Db } from '../db/connect.js';
import { createLogger } from '../logger.js';

export type Action<O> = (ctx: Context, options: O, args: string[]) => Promise<number>;

/** What the one catch in cli.ts needs to know about the run, filled in as it goes. */
export interface RunState {
  exitCode: number;
  json: boolean;
  /** Show the stack of an unexpected error (--verbose, OMNI_INGEST_DEBUG). */
  verbose: boolean;
  secrets: string[];
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
    state.verbose ||= config.verbose || config.debug;
    const logger = createLogger(config);
    let db: Db | undefined;
    let opening: Promise<Db> | undefined;
    const ctx: Context = {
      config,
      logger,
      clock: systemClock,
      out: createOutput(config.json, config.color),
      db: () => {
        opening ??= import('../db/connect.js').then(({ openDb }) => openDb(config, { logger })).then((opened) => (db = opened));
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
