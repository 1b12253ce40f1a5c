// The batches of an import in flight: each is written in a transaction of its own while the
// next is read and checked, and up to `writers` are written at once on connections of their own.
// Reading is CPU in this process, writing mostly CPU in the server (the payload's GIN index), so
// they overlap. Bounded: a batch is handed on only when a writer is free, so at most `writers`
// batches written plus the one being read are held. Two batches that share an id are never
// written at once: the later waits for the earlier, so which one is stored, which one is the
// conflict (or, with --update, which one wins) is decided by their order in the file, as when
// one batch followed the other, and two of this import's batches never deadlock on an id.

interface InFlight {
  done: Promise<void>;
  ids: Set<string>;
}

export class Writes {
  private readonly inFlight: InFlight[] = [];

  constructor(private readonly writers: number) {}

  /** Waits for a free writer (and for any batch writing one of `ids`), then starts `write`. */
  async start(ids: Set<string>, write: () => Promise<void>): Promise<void> {
    while (this.inFlight.length > 0) {
      const clash = this.inFlight.find((w) => [...ids].some((id) => w.ids.has(id)));
      if (!clash && this.inFlight.length < this.writers) break;
      await this.settle((clash ?? this.inFlight[0])!);
    }
    const w: InFlight = { done: write(), ids };
    // Heard when settled; until then a failure must not count as unhandled.
    w.done.catch(() => {});
    this.inFlight.push(w);
  }

  /** Waits for every batch in flight; the first failure is thrown once all have ended. */
  async drain(): Promise<void> {
    const all = this.inFlight.splice(0);
    const results = await Promise.allSettled(all.map((w) => w.done));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Waits for every batch in flight and forgets how they ended (another error is being told). */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0).map((w) => w.done));
  }

  private async settle(w: InFlight): Promise<void> {
    this.inFlight.splice(this.inFlight.indexOf(w), 1);
    try {
      await w.done;
    } catch (err) {
      await this.abandon();
      throw err;
    }
  }
}
