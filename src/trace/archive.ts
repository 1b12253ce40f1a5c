// Where `trace` learns that an event was archived (SPEC §11): the raw event is gone from
// raw_events but its archive manifest knows it. Archiving is being built separately and will
// export `findArchive(db, rawEventId)`; until then no event is ever archived, so this says so.
import type { Queryable } from '../db/connect.js';

/** What trace reports about an archived event: where it went and when. */
export interface ArchivedEvent {
  uri: string;
  archivedAt: Date;
  /** The manifest's part holding it, when it says. */
  part?: string | undefined;
}

/**
 * THE SEAM: the archive lookup of one raw event, or null when it was never archived.
 * When archiving lands this becomes `return findArchive(db, rawEventId);`.
 */
export async function archivedEvent(_db: Queryable, _rawEventId: string): Promise<ArchivedEvent | null> {
  return null;
}
