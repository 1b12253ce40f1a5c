#!/usr/bin/env node
// Runs the compiled CLI: no TypeScript loader on the hot path, so `--help` starts fast.
import { boundHeapGrowth, holdYoungGeneration, boundYoungGeneration } from '../dist/src/heap.js';

boundHeapGrowth();
// Before the CLI's modules load, which would grow the young generation to its maximum (heap.ts).
holdYoungGeneration();
const { main } = await import('../dist/src/cli.js');
// Then every command lets it grow to 4 MB semispaces, and no further.
boundYoungGeneration();
process.exitCode = await main(process.argv);
