// How the process's heap grows. V8 lets the heap reach up to 4× what the last full collection
// left live before it collects again: a batch run's live set is small (a normalize worker's is
// ~27 MB) but it allocates fast, so its peak memory was ~4× that plus the code, and grew with the
// batch size. At 1.5× the peak stays near what is really held, for ~10% more collector time.
import v8 from 'node:v8';

const HEAP_GROWING_PERCENT = 50;

/** Call once at start-up; it governs every full collection after it. */
export function boundHeapGrowth(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
