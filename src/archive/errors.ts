// The archive's own failures, each with the exit code SPEC §4 gives it.
import { ExitCode, OmniError } from '../errors.js';

/** The target could not be read or written (a missing folder, a refused request, a network error): exit 1. */
export class ArchiveTargetError extends OmniError {
  override readonly code: string = 'archive_target';
}

/**
 * The target answered, and the object is not there (ENOENT, NoSuchKey). Told apart from a target
 * that cannot be reached: an object the database says was written and is missing is a damaged
 * archive (exit 3), while an endpoint that cannot be reached is only a failed run (exit 1).
 */
export class ArchiveObjectMissingError extends ArchiveTargetError {
  override readonly code = 'archive_not_found';
}

/** What the target holds is not what the manifest (or the database) says: exit 3, nothing deleted. */
export class ArchiveMismatchError extends OmniError {
  override readonly exitCode = ExitCode.checkFailed;
  override readonly code = 'archive_mismatch';
}

/** Another process took over a batch this one was working on (its lease expired): stop touching it. */
export class LeaseLostError extends OmniError {
  override readonly code = 'lease_lost';
}
