// How the process's heap grows. V8 lets the heap reach up to 4× what the last full collection
// left live before it collects again: a batch run's live set is small (a normalize worker's is
// ~27 MB) but it allocates fast, so its peak memory was ~4× that plus the code, and grew with the
// batch size. At 1.5× the peak stays near what is really held, for ~10% more collector time.
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

const HEAP_GROWING_PERCENT = 50;

/** Call once at start-up; it governs every full collection after it. */
export function boundHeapGrowth(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * Holds V8's young generation at the size it has now: V8 reads the semispaces' growth factor each
 * time it would grow them, so this works at run time (their maximum does not), but only before the
 * modules load — loading them grows the semispaces to V8's 16 MB maximum, and V8 seldom shrinks
 * them. The binary calls it for every command before it imports the CLI, then lets them grow to
 * 4 MB (boundYoungGeneration). `embed` was once kept at the smallest for its whole run: at 1 MB
 * semispaces each answer's strings (~0.5 MB of JSON per 64 vectors) were promoted before they
 * died, the old generation filled with them and was marked every ~0.3 s — 19% of the run's time
 * in the collector and 3–4 points of the ideal rate, for no memory saved at 4 MB.
 */
export function holdYoungGeneration(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}

/** The semispace size a batch command's young generation grows to (V8's own maximum is 16 MB). */
const YOUNG_SEMI_SPACE_BYTES = 4 * 2 ** 20;

const semiSpaceBytes = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/**
 * A batch command (import, normalize, backfill…) holds a few batches at a time but allocates
 * fast: grown to V8's 16 MB semispaces, the young generation alone kept ~32 MB of RSS, and a
 * normalize worker peaked at ~150 MB. `--max-semi-space-size=4` kept it at 115–120 MB for ~13%
 * more of the process's CPU, but V8 takes that flag only at start-up. The growth factor it reads
 * whenever it would grow them: held at 1 while the modules load (`holdYoungGeneration`), then let
 * grow until the semispaces reach 4 MB, and held there. The watch sees collections only between
 * turns of the event loop: a long synchronous burst of allocation can grow them further (at most
 * to V8's default maximum) before it runs; `--max-semi-space-size` is the hard cap.
 */
export function boundYoungGeneration(): void {
  if (semiSpaceBytes() >= YOUNG_SEMI_SPACE_BYTES) return;
  v8.setFlagsFromString('--semi-space-growth-factor=2');
  const watch = new PerformanceObserver(() => {
    if (semiSpaceBytes() < YOUNG_SEMI_SPACE_BYTES) return;
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    watch.disconnect();
  });
  watch.observe({ entryTypes: ['gc'] });
}
