// Is a process that left its mark in the database (a run, a lease, a lock file) still alive?
// Only answerable for processes of this host; elsewhere heartbeats and lease expiry decide.
import os from 'node:os';

export const thisHost = (): string => os.hostname();

/** True unless the pid is certainly gone (EPERM means it exists but belongs to another user). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
