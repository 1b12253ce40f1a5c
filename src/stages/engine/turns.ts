// Write turns for pipelined stages: a worker runs two batches at once, one claiming and mapping
// while the other writes, and only `n` of them write at a time. What a worker overlaps is then
// its own work in this process and on its claim's connection with the database's work on the
// write, not two writes competing for the same server.

export interface Turns {
  /** Runs `fn` when a turn is free; turns are given in the order they were asked for. */
  take<T>(fn: () => Promise<T>): Promise<T>;
}

/** Turns for every batch at once: a stage run without pipelining. */
export const noTurns: Turns = { take: (fn) => fn() };

export function writeTurns(n: number): Turns {
  let free = n;
  const waiting: (() => void)[] = [];
  return {
    async take(fn) {
      if (free > 0) free--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await fn();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}
