#!/usr/bin/env node
// Runs the compiled CLI: no TypeScript loader on the hot path, so `--help` starts fast.
import { main } from '../dist/src/cli.js';
import { boundHeapGrowth } from '../dist/src/heap.js';

boundHeapGrowth();
process.exitCode = await main(process.argv);
