// Where `trace` learns that an event was archived (SPEC §11): the raw event is gone from
// raw_events, and the archive batch that deleted it names the manifest holding it.
import { findArchive } from '../archive/find.js';
import type { Queryable } from '../db/connect.js';

/** What trace reports about an archived event: where it went and when. */
export interface ArchivedEvent {
  uri: string;
  archivedAt: Date;
  /** The manifest's part holding it, when it says. */
  part?: string | undefined;
}

/**
 * The archive of one raw event that is no longer in raw_events, or null when it was never
 * archived. A batch deletes only after its verify, and a row it leaves hot loses its claim: a
 * claim of a verified batch whose row is gone is a row its delete (begun, not yet finished) took.
 */
export async function archivedEvent(db: Queryable, rawEventId: string): Promise<ArchivedEvent | null> {
  const found = await findArchive(db, rawEventId);
  if ((found?.state !== 'deleted' && found?.state !== 'verified') || !found.archivedAt) return null;
  return { uri: found.manifestUri ?? found.target, archivedAt: found.archivedAt };
}
