// Imported first by a benchmark's worker, so that its flags are set before the other modules
// load, as bin/omni-ingest.js sets them before it imports the CLI: the peak memory measured is
// the command's.
import { boundHeapGrowth, holdYoungGeneration } from '../src/heap.js';

boundHeapGrowth();
holdYoungGeneration();
