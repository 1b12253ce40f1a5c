// Configuration is parsed once, here: flags over environment over defaults. Every setting
// knows its flag and its variable, so an invalid value is reported under both names (exit 2).
// Settings that only come from the environment (API keys) are in the same table, so every
// command sees one typed Config and nothing else reads process.env.
import path from 'node:path';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';

export const DEFAULT_DATA_DIR = '.omni-ingest/pglite';

/** A run that loses its connection keeps reconnecting this long before it fails. */
export const DEFAULT_RECONNECT_FOR = '2m';

/** How often a run writes a progress line when stderr is not a terminal (cron, a log file). */
export const DEFAULT_PROGRESS_INTERVAL = '30s';

interface Setting<T> {
  flag: string | undefined;
  env: string | undefined;
  schema: z.ZodType<T>;
}

const postgresUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a URL (expected postgres://user:password@host:5432/database)' });
    return;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    ctx.addIssue({
      code: 'custom',
      message: `is a ${url.protocol.replace(/:$/, '')}:// URL; omni-ingest needs PostgreSQL (postgres:// or postgresql://)`,
    });
  }
});

const httpUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a URL (expected https://host/v1)' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    ctx.addIssue({ code: 'custom', message: `is a ${url.protocol} URL; expected http:// or https://` });
});

/** Keys are trimmed (a pasted key often carries a newline); blank means unset. */
const secret = z
  .string()
  .transform((s) => s.trim())
  .transform((s) => (s === '' ? undefined : s));

const flagLike = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.enum(['1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'], { message: 'must be 1/true/yes/on or 0/false/no/off' }))
  .transform((s) => ['1', 'true', 'yes', 'on'].includes(s));

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 0) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 90s, 5m or 1h` });
    return z.NEVER;
  }
  return ms;
});

const settings = {
  databaseUrl: { flag: '--database-url', env: 'DATABASE_URL', schema: postgresUrl.optional() },
  dataDir: { flag: '--data-dir', env: 'OMNI_INGEST_DATA_DIR', schema: z.string().min(1, 'must not be empty') },
  openaiApiKey: { flag: undefined, env: 'OPENAI_API_KEY', schema: secret.optional() },
  openaiBaseUrl: { flag: undefined, env: 'OPENAI_BASE_URL', schema: httpUrl.optional() },
  debug: { flag: undefined, env: 'OMNI_INGEST_DEBUG', schema: flagLike.optional() },
  reconnectFor: { flag: '--reconnect-for', env: 'OMNI_INGEST_RECONNECT_FOR', schema: duration },
  progressInterval: { flag: '--progress-interval', env: 'OMNI_INGEST_PROGRESS_INTERVAL', schema: duration },
} satisfies Record<string, Setting<unknown>>;

/** What the OpenAI-backed providers need; both undefined means "use the offline ones". */
export interface OpenAISettings {
  apiKey: string | undefined;
  baseUrl: string | undefined;
}

export interface Config {
  /** A real server's URL; undefined means the embedded database. */
  databaseUrl: string | undefined;
  /** The embedded database's folder (absolute). */
  dataDir: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  progress: boolean;
  color: boolean;
  openai: OpenAISettings;
  /** OMNI_INGEST_DEBUG: stacks of unexpected errors, like --verbose. */
  debug: boolean;
  /** How long a run keeps reconnecting after losing its database connection (ms). */
  reconnectForMs: number;
  /** Progress lines on a stream that is not a terminal, every this many ms (0: none). */
  progressIntervalMs: number;
}

export interface GlobalFlags {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  json?: boolean | undefined;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
  progress?: boolean | undefined;
  reconnectFor?: string | undefined;
  progressInterval?: string | undefined;
}

export type Env = Record<string, string | undefined>;

function pick<T>(setting: Setting<T>, flagValue: unknown, env: Env, fallback: unknown): T {
  const fromEnv = setting.env === undefined ? undefined : env[setting.env];
  // An empty variable counts as unset, the way shells and cron files usually mean it.
  const raw = flagValue ?? (fromEnv === '' ? undefined : fromEnv) ?? fallback;
  const parsed = setting.schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const source = flagValue !== undefined ? setting.flag : setting.env !== undefined && fromEnv ? setting.env : 'default';
  const names = [setting.flag, setting.env].filter((n) => n !== undefined).join(' / ');
  const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
  throw new ConfigError(`invalid ${names} (from ${source}): ${reason}`);
}

export function resolveConfig(flags: GlobalFlags, env: Env = process.env, cwd = process.cwd()): Config {
  const databaseUrl = pick(settings.databaseUrl, flags.databaseUrl, env, undefined);
  const dataDir = pick(settings.dataDir, flags.dataDir, env, DEFAULT_DATA_DIR);
  const json = flags.json ?? false;
  const quiet = flags.quiet ?? false;
  const verbose = flags.verbose ?? false;
  if (quiet && verbose) throw new ConfigError('--quiet and --verbose cannot be used together');
  const color = env.NO_COLOR === undefined || env.NO_COLOR === '';
  return {
    databaseUrl,
    dataDir: path.resolve(cwd, dataDir),
    json,
    quiet,
    verbose,
    progress: flags.progress ?? true,
    color: color && env.FORCE_COLOR !== '0',
    openai: {
      apiKey: pick(settings.openaiApiKey, undefined, env, undefined),
      baseUrl: pick(settings.openaiBaseUrl, undefined, env, undefined)?.trim(),
    },
    debug: pick(settings.debug, undefined, env, undefined) ?? false,
    reconnectForMs: pick(settings.reconnectFor, flags.reconnectFor, env, DEFAULT_RECONNECT_FOR),
    progressIntervalMs: pick(settings.progressInterval, flags.progressInterval, env, DEFAULT_PROGRESS_INTERVAL),
  };
}

/** The URL with its password replaced, safe to print. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    parsed.searchParams.forEach((_, key) => {
      if (/pass|secret|key|token/i.test(key)) parsed.searchParams.set(key, '****');
    });
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

/** Secrets that must never reach output: the URL's password, API keys. */
export function secretsOf(config: Config, env: Env = process.env): string[] {
  const secrets: string[] = [];
  if (config.databaseUrl) {
    try {
      const { password } = new URL(config.databaseUrl);
      if (password) {
        secrets.push(password);
        try {
          secrets.push(decodeURIComponent(password));
        } catch {
          // A literal % that is not an escape: the raw form is the secret.
        }
      }
    } catch {
      // Unparseable URLs were rejected by resolveConfig already.
    }
  }
  if (config.openai.apiKey) secrets.push(config.openai.apiKey);
  for (const key of ['OPENAI_API_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'PGPASSWORD']) {
    const value = env[key];
    if (value && value.length >= 4) secrets.push(value);
  }
  return [...new Set(secrets.filter((s) => s.length > 0))];
}
