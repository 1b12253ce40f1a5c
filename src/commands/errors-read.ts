// `errors list`, `errors groups`, `errors show`.
import type { Command } from 'commander';
import type { RunState } from './run.js';

export function registerErrorReads(_errors: Command, _state: RunState): void {}
