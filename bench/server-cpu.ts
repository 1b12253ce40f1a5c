// The database server's own CPU over one contender of a benchmark, when the server runs on this
// machine (Linux): the postmaster's time, the time of the processes it has reaped (the backends of
// connections that closed: a worker's whole run) and of its children still running (the
// benchmark's own connection, the WAL writer, the checkpointer). With the process CPU the
// benchmarks already print, it says where a run's time went: in the tool or in the database,
// and how much of the two cores both together used.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Queryable } from '../src/db/connect.js';

export interface ServerCpuMeter {
  /** Runs `work`, and returns its value and the server's CPU seconds meanwhile. */
  measure<T>(work: () => Promise<T>): Promise<{ value: T; serverCpuSeconds: number }>;
}

interface Stat {
  comm: string;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  const n = (k: number) => Number(f[k] ?? 0);
  return { comm: text.slice(text.indexOf('(') + 1, close), ppid: n(1), ticks: n(11) + n(12) + n(13) + n(14) };
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** The postmaster's ticks and those of all its children, living or not yet reaped. */
function serverTicks(postmaster: number): number {
  let ticks = stat(postmaster)?.ticks ?? 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s?.ppid === postmaster) ticks += s.ticks;
  }
  return ticks;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A meter of the server behind `db`, or undefined when its processes are not this machine's to
 * read (a server elsewhere, in a container of its own, or not Linux): the benchmarks then print
 * no server CPU.
 */
export async function serverCpuMeter(db: Queryable): Promise<ServerCpuMeter | undefined> {
  if (process.platform !== 'linux') return undefined;
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = stat(rows[0]?.pid ?? -1);
  const postmaster = backend && stat(backend.ppid);
  if (!backend || !postmaster || backend.comm !== 'postgres' || postmaster.comm !== 'postgres') return undefined;
  const pid = backend.ppid;
  const hz = clockTicks();
  return {
    async measure(work) {
      const before = serverTicks(pid);
      const value = await work();
      // A backend that has just exited shows its time only once the postmaster has reaped it:
      // read until two readings 100 ms apart agree (an idle server uses none), at most 2 s.
      let last = serverTicks(pid);
      for (let waited = 0; waited < 2000; waited += 100) {
        await sleep(100);
        const now = serverTicks(pid);
        if (now === last) break;
        last = now;
      }
      return { value, serverCpuSeconds: (last - before) / hz };
    },
  };
}

/** `work`'s value and, with a meter, the server's CPU meanwhile (undefined without one). */
export async function withServerCpu<T>(
  meter: ServerCpuMeter | undefined,
  work: () => Promise<T>,
): Promise<{ value: T; serverCpuSeconds: number | undefined }> {
  return meter ? meter.measure(work) : { value: await work(), serverCpuSeconds: undefined };
}
