// What a target is to the rest of the archive code: objects under '/'-separated keys, written
// whole or not at all. Kept apart from target.ts (which picks and loads an implementation) so the
// implementations need not import the module that imports them.
import type { Readable } from 'node:stream';

export interface ArchiveTarget {
  /** The base URI, printable (it never holds credentials). */
  readonly uri: string;
  /** The URI of a key under the base. */
  objectUri(key: string): string;
  /** Streams `body` into `key`; the object appears whole or not at all (rename / multipart completion). */
  write(key: string, body: Readable): Promise<void>;
  /** A small object in one request (the manifest: one PUT on S3). */
  put(key: string, data: Buffer): Promise<void>;
  /** The object's bytes; ArchiveObjectMissingError when there is no such object. */
  read(key: string): Promise<Readable>;
  /** Deletes the object; a key that is not there is no error. */
  remove(key: string): Promise<void>;
  /** Every key under `prefix` (a '/'-separated folder of the base), in key order. */
  list(prefix: string): Promise<string[]>;
  /** Throws (ArchiveTargetError) unless the target can be written: what a dry run checks. */
  probe(): Promise<void>;
}

/** Joins key segments with '/'. */
export const joinKey = (...parts: string[]): string => parts.filter((p) => p !== '').join('/');
