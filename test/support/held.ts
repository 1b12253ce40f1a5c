// Interleavings made certain: another worker's transaction held open while the CLI runs.
import type { Queryable } from '../../src/db/connect.js';
import { type CliResult, runCli } from './cli.js';
import { someoneWaitsForLock, type TestTarget } from './db.js';

/**
 * Runs the CLI with `args` while another worker's transaction (`hold`'s writes and locks) is open,
 * and commits that transaction once the CLI waits for one of its locks — or once the CLI has
 * ended without waiting, so a CLI that should have waited fails its test instead of hanging it.
 */
export async function whileAnotherWorkerHolds(
  target: TestTarget,
  hold: (tx: Queryable) => Promise<void>,
  args: string[],
): Promise<CliResult> {
  const db = await target.open();
  const watcher = await target.open();
  try {
    let run: Promise<CliResult> | undefined;
    await db.transaction(async (tx) => {
      await hold(tx);
      run = runCli([...target.args, ...args]);
      await Promise.race([someoneWaitsForLock(watcher), run]);
    });
    return await run!;
  } finally {
    await watcher.close();
    await db.close();
  }
}
