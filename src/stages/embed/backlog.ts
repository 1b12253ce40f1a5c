// How many answered vectors may wait for their write, across every batch of a stage. The
// provider can answer faster than the database writes (a table past the page cache, a busy
// server): answers then piled up in memory — a 2,000,000-chunk run grew from 164 to 188 MB as
// its writes slowed. Past this budget a request slot waits for writes to catch up before it sends.
// What is counted: the vectors of interactions whose every chunk is answered (what the writer
// holds or will take next). An interaction still waiting on another request holds its answered
// chunks uncounted; they are few, as a batch's chunks are sent in order. Requests already in
// flight can add up to `concurrency × inputs per request` past the limit: that much is the
// requests' own size, whatever the budget.
import { EXPECTED_DIMENSIONS } from '../../embed/embedder.js';

/**
 * About 4 MB of float32 vectors (682 at 1536 dimensions). A write holds what waits three times
 * over at its peak — the vectors, the binary parameter, the driver's message — so 16 MB let a
 * lagging database's writes add ~50 MB of RSS; on a quiet machine the database keeps up and the
 * budget costs nothing (4, 16 and 256 MB measured the same rate within a point or two).
 */
const BACKLOG_BYTES = 4 * 2 ** 20;

export class WriteBacklog {
  private held = 0;
  private waiters = new Set<() => void>();

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('the write backlog limit must be a positive whole number');
  }

  static standard(): WriteBacklog {
    return new WriteBacklog(Math.floor(BACKLOG_BYTES / (EXPECTED_DIMENSIONS * 4)));
  }

  get waiting(): number {
    return this.held;
  }

  /** Resolves once fewer than `limit` vectors wait for their write, or when `signal` aborts. */
  async room(signal: AbortSignal): Promise<void> {
    while (this.held >= this.limit && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  add(vectors: number): void {
    this.held += vectors;
  }

  remove(vectors: number): void {
    if (vectors === 0) return;
    // Releasing more than was added is a bug in the caller's accounting: say so, never hide it.
    if (vectors > this.held) throw new Error(`write backlog: ${vectors} vectors released, ${this.held} held`);
    this.held -= vectors;
    if (this.held >= this.limit) return;
    for (const wake of [...this.waiters]) wake();
  }
}
