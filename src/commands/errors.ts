// `errors`: dead letters an operator can work with (SPEC §12). Reading them (list, groups, show)
// and acting on them (retry, discard, export, purge) live in two files.
import type { Command } from 'commander';
import { registerErrorReads } from './errors-read.js';
import { registerErrorWrites } from './errors-write.js';
import type { RunState } from './run.js';

export function registerErrors(errors: Command, state: RunState): void {
  registerErrorReads(errors, state);
  registerErrorWrites(errors, state);
}
