// A test-only hook for the crash tests of `embed --via batch`: with
// OMNI_INGEST_EMBED_PAUSE_AT=<point>[,<point>…] the process announces on stderr that it reached
// the point and waits there until it is killed, so a test can `kill -9` it between two steps of
// a batch's state machine. Unset (always, outside tests) it costs one lookup.
const ENV = 'OMNI_INGEST_EMBED_PAUSE_AT';

/** After the upload (file not recorded), after the batch's creation (not recorded), after the download (not written). */
export type EmbedFaultPoint = 'uploaded' | 'created' | 'downloaded';

export async function embedFaultPoint(point: EmbedFaultPoint): Promise<void> {
  // Read here rather than through config.ts: it is no setting of the tool, only a test's lever.
  const wanted = process.env[ENV];
  if (!wanted?.split(',').includes(point)) return;
  process.stderr.write(`embed: paused at ${point}\n`);
  await new Promise<never>(() => setInterval(() => {}, 60_000));
}
