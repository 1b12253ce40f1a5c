// Runs the real, built binary the way a user or cron does, and collects what it printed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

export const binary = path.join(packageRoot, 'bin', 'omni-ingest.js');

/**
 * Tests start the binary hundreds of times, each run short: V8's optimizing tier for PGlite's
 * WebAssembly costs more CPU than such a run gains from it (measured: about 40% less CPU per
 * embedded-database run with the baseline tier only).
 */
export const NODE_FLAGS = ['--liftoff-only'];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output if it is not exactly one document). */
  json<T = Record<string, unknown>>(): T;
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: '1',
    DATABASE_URL: undefined,
    OMNI_INGEST_DATA_DIR: undefined,
    ...options.env,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...args], {
      env: env as NodeJS.ProcessEnv,
      cwd: options.cwd ?? packageRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch (err) {
            throw new Error(`stdout is not one JSON document: ${String(err)}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
          }
        },
      });
    });
  });
}
