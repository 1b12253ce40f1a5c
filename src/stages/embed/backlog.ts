// How many answered vectors may wait for their write, across every batch of a stage. The
// provider can answer faster than the database writes (a table past the page cache, a busy
// server): answers then piled up in memory — a 2,000,000-chunk run grew from 164 to 188 MB as
// its writes slowed. Past this budget a request slot waits for writes to catch up before it sends.
import { EXPECTED_DIMENSIONS } from '../../embed/embedder.js';

/**
 * About 4 MB of float32 vectors (682 at 1536 dimensions). A write holds what waits three times
 * over at its peak — the vectors, the binary parameter, the driver's message — so 16 MB let a
 * lagging database's writes add ~50 MB of RSS; on a quiet machine the database keeps up and the
 * budget is never reached (16 and 256 MB measured the same rate).
 */
export const BACKLOG_BYTES = 4 * 2 ** 20;

export class WriteBacklog {
  private held = 0;
  private waiters: (() => void)[] = [];

  /** `limit` vectors; at least one request's worth, so a request can always be answered. */
  constructor(readonly limit: number) {}

  static forRequests(maxInputsPerRequest: number): WriteBacklog {
    return new WriteBacklog(Math.max(maxInputsPerRequest, Math.floor(BACKLOG_BYTES / (EXPECTED_DIMENSIONS * 4))));
  }

  get waiting(): number {
    return this.held;
  }

  /** Resolves once fewer than `limit` vectors wait for their write, or when `signal` aborts. */
  async room(signal: AbortSignal): Promise<void> {
    while (this.held >= this.limit && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.push(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  add(vectors: number): void {
    this.held += vectors;
  }

  remove(vectors: number): void {
    if (vectors === 0) return;
    this.held = Math.max(0, this.held - vectors);
    if (this.held >= this.limit) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
