#!/usr/bin/env node
// Runs the compiled CLI: no TypeScript loader on the hot path, so `--help` starts fast.
import { boundHeapGrowth, boundProviderBoundHeap } from '../dist/src/heap.js';

boundHeapGrowth();
// Before the CLI's modules load, which would grow the young generation first (see heap.ts).
if (process.argv.slice(2).includes('embed')) boundProviderBoundHeap();
const { main } = await import('../dist/src/cli.js');
process.exitCode = await main(process.argv);
