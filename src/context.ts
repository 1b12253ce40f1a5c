// What every command and stage gets from outside: configuration, database, logger, clock and
// output. Tests build their own Context to swap any of them.
import { Chalk, type ChalkInstance } from 'chalk';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { Db } from './db/connect.js';
import type { Logger } from './logger.js';
import { scrub, scrubValue } from './secrets.js';
import { printable } from './text.js';

export interface Output {
  /** Prints the command's result: one JSON document with --json, else the text lines. */
  result(value: unknown, text: () => string | string[]): void;
  /** Colours for the text result: on only when stdout is a TTY and colour is allowed. */
  readonly style: ChalkInstance;
}

export interface Context {
  config: Config;
  logger: Logger;
  clock: Clock;
  out: Output;
  /** Opens the database on first use, so commands that need none (or fail early) stay fast. */
  db(): Promise<Db>;
}

export function createOutput(json: boolean, color: boolean, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Output {
  const style = new Chalk({ level: color && !json && stream.isTTY ? 1 : 0 });
  return {
    style,
    result(value, text) {
      if (json) {
        stream.write(`${JSON.stringify(scrubValue(value), null, 2)}\n`);
        return;
      }
      const lines = text();
      const body = scrub(Array.isArray(lines) ? lines.join('\n') : lines);
      // Without colours there are no escape sequences of ours: any left came from the data.
      if (body.length > 0) stream.write(`${style.level === 0 ? printable(body) : body}\n`);
    },
  };
}
