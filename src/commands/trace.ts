// `trace`: one event's path through every table.
import type { Command } from 'commander';
import type { RunState } from './run.js';

export function registerTrace(_trace: Command, _state: RunState): void {}
