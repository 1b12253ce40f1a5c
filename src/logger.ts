// Logs go to stderr so stdout stays the command's result (SPEC §4: `--json` prints exactly one
// document there). Colour only on a TTY and never with NO_COLOR.
import { Chalk, type ChalkInstance } from 'chalk';
import { scrub } from './secrets.js';
import { printable } from './text.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  readonly style: ChalkInstance;
}

export interface LoggerOptions {
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stderr;
  const style = new Chalk({ level: options.color && stream.isTTY ? 1 : 0 });
  // Every level goes through the scrubber: a provider's error may quote the key it was sent.
  const write = (line: string) => stream.write(`${scrub(line)}\n`);
  // Messages quote input (ids, file lines): its control characters are shown, not obeyed.
  return {
    style,
    info: (message) => {
      if (!options.quiet) write(printable(message));
    },
    warn: (message) => write(style.yellow(`warning: ${printable(message)}`)),
    error: (message) => write(style.red(`error: ${printable(message)}`)),
    debug: (message) => {
      if (options.verbose) write(style.dim(printable(message)));
    },
  };
}

/** A logger that keeps lines in memory, for tests. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const style = new Chalk({ level: 0 });
  return {
    lines,
    style,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    debug: (m) => lines.push(`debug: ${m}`),
  };
}
