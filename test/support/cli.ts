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

/**
 * Runs the binary with `args` (plus `--verbose`, whose "batch N took" lines count the committed
 * batches of any stage) and SIGKILLs it `delayMs` after the `batches`-th batch. Resolves whether
 * the kill landed (a run that ended first was not killed).
 */
export function killAfterBatches(
  args: string[],
  batches: number,
  delayMs = 0,
  env: Record<string, string> = {},
): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, '--verbose', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    let seen = 0;
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk.split('\n').filter((l) => /: batch \d+ took/.test(l)).length;
      if (seen >= batches && !killed) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL' }));
  });
}

/**
 * Runs the binary with a test pause point set (`env` names it, e.g. OMNI_INGEST_EMBED_PAUSE_AT)
 * and SIGKILLs it as soon as it says it paused there. Resolves whether it paused (a run that
 * ended first did not) and what it printed on stderr.
 */
export function killAtPause(args: string[], env: Record<string, string>): Promise<{ paused: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    let stderr = '';
    let paused = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!paused && /paused at /.test(stderr)) {
        paused = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ paused, stderr });
    });
  });
}
