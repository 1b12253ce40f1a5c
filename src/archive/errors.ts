// The archive's own failures, each with the exit code SPEC §4 gives it.
import { ExitCode, OmniError } from '../errors.js';

/** The target could not be read or written (a missing folder, a refused request, a network error): exit 1. */
export class ArchiveTargetError extends OmniError {
  override readonly code = 'archive_target';
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
