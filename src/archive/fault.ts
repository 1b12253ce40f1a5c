// A test-only hook for the crash tests: with OMNI_INGEST_ARCHIVE_PAUSE_AT=<point>[,<point>…] the
// process announces on stderr that it reached the point and waits there until it is killed, so a
// test can `kill -9` it at an exact step of the state machine, or until SIGUSR2 lets it go on (a
// writer that stalls there and wakes later, then pauses nowhere again). Unset (always, outside
// tests) it costs one lookup.
const FAULT_POINTS = ['planned', 'part', 'manifest', 'written', 'verified', 'deleting', 'deleted'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

const ENV = 'OMNI_INGEST_ARCHIVE_PAUSE_AT';

export async function faultPoint(point: FaultPoint): Promise<void> {
  // Read here rather than through config.ts: it is no setting of the tool, only a test's lever.
  const wanted = process.env[ENV];
  if (!wanted?.split(',').includes(point)) return;
  // An interval keeps the event loop (and the lease renewal) alive while the test decides. The
  // handler is in place before the test can read that the process is here: a test that stops it
  // (SIGSTOP) at once and later sends SIGUSR2 must never meet the default action (terminate).
  const released = new Promise<void>((resolve) => {
    const alive = setInterval(() => {}, 60_000);
    process.once('SIGUSR2', () => {
      clearInterval(alive);
      // Let go once: the writer goes on as if it had never been held.
      delete process.env[ENV];
      resolve();
    });
  });
  process.stderr.write(`archive: paused at ${point}\n`);
  await released;
}
