#!/usr/bin/env node
// Runs the compiled CLI: no TypeScript loader on the hot path, so `--help` starts fast.
import { boundHeapGrowth, holdYoungGeneration, boundYoungGeneration } from '../dist/src/heap.js';

boundHeapGrowth();
// Before the CLI's modules load, which would grow the young generation to its maximum (heap.ts).
holdYoungGeneration();
const { main } = await import('../dist/src/cli.js');
// embed keeps the smallest young generation; every other command lets it grow to 4 MB semispaces.
if (!process.argv.slice(2).includes('embed')) boundYoungGeneration();
process.exitCode = await main(process.argv);
