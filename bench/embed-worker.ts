// One embed run in a process of its own, so the benchmark measures its time and peak memory
// alone (the fake provider runs in the parent): the heap is set first, as bin/omni-ingest.js
// sets it before the CLI's modules load, then bench/embed-job.ts runs (and bounds the young
// generation once its modules are loaded, as the binary does).
import { boundHeapGrowth, holdYoungGeneration } from '../src/heap.js';

boundHeapGrowth();
holdYoungGeneration();
await import('./embed-job.js');
