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

/**
 * For a provider-bound run (embed), which allocates fast (each answer is ~2 MB of JSON, base64
 * and arrays) but holds little, and whose pace the requests set, not the collector: the young
 * generation stays at its initial size (1 MB semispaces) instead of growing to V8's 16 MB ones,
 * which alone kept ~30 MB of RSS. V8 reads this flag each time it would grow them, so it works
 * when set at run time (their maximum does not), but only before the modules load: loading them
 * grows the semispaces, and V8 seldom shrinks them. (Letting the old generation grow only 20%
 * between collections saved ~5 MB more and cost 6 points of the ideal rate on a quiet machine.)
 */
export function boundProviderBoundHeap(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
