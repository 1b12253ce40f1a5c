// `errors retry`, `errors discard`, `errors export`, `errors purge`.
import type { Command } from 'commander';
import type { RunState } from './run.js';

export function registerErrorWrites(_errors: Command, _state: RunState): void {}
