// Every command-line value goes through a zod schema declared here, so `--concurrency 0x10`
// means the same thing (an error) in every command. A schema's message completes the sentence
// `--flag "value" …`; parseFlags adds the flag's name and the value, and throws a UsageError
// (exit 2).
import { isSupportedCountry } from 'libphonenumber-js/min';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { EMBEDDERS } from '../embed/select.js';
import { INSIGHT_PROVIDERS } from '../insights/select.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TARGET_MS, type RangeOptions } from '../stages/engine/range.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A whole number written in decimal digits (no 0x10, 1e3, 1.0 or -1), within bounds. */
export const wholeNumber = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const t = text.trim();
    const n = Number(t);
    if (!/^\d+$/.test(t) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number between ${min} and ${max}` });
      return z.NEVER;
    }
    return n;
  });

export const uuidFlag = z
  .string()
  .trim()
  .regex(UUID, 'must be a UUID')
  .transform((s) => s.toLowerCase());

export const oneOf = <const T extends string>(values: readonly [T, ...T[]]) =>
  z.enum(values, { message: `is not one of ${values.join(', ')}` });

export const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** ISO 3166-1 alpha-2 with a phone numbering plan: `gb` → `GB`. */
export const regionFlag = z.string().transform((text, ctx) => {
  const region = text.trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(region) || !isSupportedCountry(region)) {
    ctx.addIssue({ code: 'custom', message: 'is not a country code with a phone numbering plan (ISO 3166-1 alpha-2, e.g. US, GB, IT)' });
    return z.NEVER;
  }
  return region;
});

export const durationFlag = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 5m, 90s or 1h' });
    return z.NEVER;
  }
  return ms;
});

const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO 8601 date or date-time, or a duration back from now (`90d`); a string saying what is
 * wrong otherwise.
 */
export function parseInstant(text: string, clock: Clock): Date | string {
  const back = parseDuration(text);
  if (back !== undefined) return new Date(clock.now().getTime() - back);
  // Only ISO 8601: Date.parse also accepts "March 7" and friends, which cron files should not rely on.
  const t = text.trim();
  if (!ISO.test(t)) return 'is not an ISO 8601 date (2025-06-01, 2025-06-01T12:00:00Z) or a duration (90d, 24h)';
  // A date or a date-time without an offset is read as UTC, like every timestamp we store.
  const iso = /[T ]\d{2}:\d{2}/.test(t) && !/(Z|[+-]\d{2}:?\d{2})$/.test(t) ? `${t}Z` : t;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms) || !calendarDate(t)) return 'is not a valid date';
  return new Date(ms);
}

/** Date.parse rolls 2026-02-30 over to March 2: the day must exist in its month. */
function calendarDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (!m) return true;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const last = new Date(0);
  last.setUTCFullYear(year, month, 0); // day 0 of the next month: the last day of this one
  return month >= 1 && month <= 12 && day >= 1 && day <= last.getUTCDate();
}

const instantFlag = (clock: Clock) =>
  z.string().transform((text, ctx) => {
    const at = parseInstant(text, clock);
    if (typeof at === 'string') {
      ctx.addIssue({ code: 'custom', message: at });
      return z.NEVER;
    }
    return at;
  });

const kebab = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

type Shape = Record<string, z.ZodType>;
type Parsed<S extends Shape> = { [K in keyof S]: z.output<S[K]> | undefined };

/**
 * Parses the flags named in `shape` (absent ones stay undefined). The first bad value is a
 * UsageError that names the flag and quotes the value: `--batch-size "0x10" must be …`.
 */
export function parseFlags<S extends Shape>(shape: S, flags: object): Parsed<S> {
  const values = flags as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(shape)) {
    const raw = values[key];
    if (raw === undefined) continue;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const shown = typeof raw === 'string' ? ` "${raw}"` : '';
      throw new UsageError(`${kebab(key)}${shown} ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
    }
    out[key] = parsed.data;
  }
  return out as Parsed<S>;
}

/** The range flags as commander hands them over (strings). */
export interface RangeFlags {
  since?: string;
  until?: string;
  user?: string;
  provider?: string;
  batchSize?: string;
  batchTarget?: string;
  maxRate?: string;
  limit?: string;
  timeBudget?: string;
  dryRun?: boolean;
}

export type RangeFlag = keyof RangeFlags;

/** Each range flag's commander definition; a command declares the ones it honours. */
export const RANGE_FLAG_OPTIONS: Record<RangeFlag, [flags: string, description: string]> = {
  since: ['--since <date|duration>', 'only events at or after this time (ISO 8601, or 90d, 24h back from now)'],
  until: ['--until <date|duration>', 'only events before this time'],
  user: ['--user <uuid>', "only this user's events"],
  provider: ['--provider <name>', 'only this provider (gmail, twilio, instagram, webform)'],
  batchSize: [
    '--batch-size <n|auto>',
    `events per batch, one short transaction each; auto sizes each batch to take about --batch-target and backs off when the database pushes back (default: auto, starting at ${DEFAULT_BATCH_SIZE})`,
  ],
  batchTarget: [
    '--batch-target <duration>',
    `with --batch-size auto: how long a batch should take (default: ${DEFAULT_BATCH_TARGET_MS / 1000}s)`,
  ],
  maxRate: ['--max-rate <events/s>', 'at most this many events per second: waits between batches (a gentle daytime run)'],
  limit: ['--limit <n>', 'at most this many events in this run'],
  timeBudget: ['--time-budget <duration>', 'stop cleanly between batches after this long (e.g. 5m)'],
  dryRun: ['--dry-run', 'report what would happen, write nothing'],
};

export const ALL_RANGE_FLAGS = Object.keys(RANGE_FLAG_OPTIONS) as RangeFlag[];

/** --batch-size of a command whose batches cannot adapt (it has no --batch-target). */
export const FIXED_BATCH_SIZE_OPTION: [flags: string, description: string] = [
  '--batch-size <n>',
  `events per batch, one short transaction each (default: ${DEFAULT_BATCH_SIZE})`,
];

const fixedBatchSize = wholeNumber(1, 50_000);

/** --batch-size where batches may adapt: auto, or a fixed whole number. */
const batchSizeFlag = z.string().transform((text, ctx): number | 'auto' => {
  if (text.trim().toLowerCase() === 'auto') return 'auto';
  const n = fixedBatchSize.safeParse(text);
  if (n.success) return n.data;
  ctx.addIssue({ code: 'custom', message: 'must be a whole number between 1 and 50000, or auto' });
  return z.NEVER;
});

/** --batch-target: a batch of a minute is already a long transaction (vacuum, replicas wait on it). */
const batchTargetFlag = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 50 || ms > 60_000) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration between 50ms and 60s, such as 500ms or 2s' });
    return z.NEVER;
  }
  return ms;
});

/** --max-rate: events per second, fractions allowed (0.5 is one event every two seconds). */
const maxRateFlag = z.string().transform((text, ctx) => {
  const t = text.trim();
  const n = Number(t);
  if (!/^\d+(\.\d+)?$/.test(t) || n <= 0 || n > 1_000_000) {
    ctx.addIssue({ code: 'custom', message: 'must be a number of events per second above 0 (at most 1000000)' });
    return z.NEVER;
  }
  return n;
});

/**
 * The range from flags. `batching` 'adaptive': the command runs its batches through the engine,
 * which may size them (`--batch-size auto`, the default, `--batch-target`, `--max-rate`).
 */
export function parseRange(
  flags: RangeFlags,
  clock: Clock,
  knownProviders?: readonly string[],
  batching: 'adaptive' | 'fixed' = 'fixed',
): RangeOptions {
  const adaptive = batching === 'adaptive';
  const f = parseFlags(
    {
      since: instantFlag(clock),
      until: instantFlag(clock),
      user: uuidFlag,
      provider: knownProviders ? oneOf(knownProviders as [string, ...string[]]) : nonEmpty,
      batchSize: adaptive ? batchSizeFlag : fixedBatchSize,
      batchTarget: batchTargetFlag,
      maxRate: maxRateFlag,
      limit: wholeNumber(1, Number.MAX_SAFE_INTEGER),
      timeBudget: durationFlag,
    },
    flags,
  );
  if (f.since && f.until && f.since >= f.until)
    throw new UsageError(`--since (${f.since.toISOString()}) must be before --until (${f.until.toISOString()})`);
  const auto = adaptive && (f.batchSize === undefined || f.batchSize === 'auto');
  if (f.batchTarget !== undefined && !auto)
    throw new UsageError(
      `--batch-target applies only to --batch-size auto (this run takes fixed batches of ${f.batchSize ?? DEFAULT_BATCH_SIZE})`,
    );
  return {
    since: f.since,
    until: f.until,
    userId: f.user,
    provider: f.provider,
    batchSize: typeof f.batchSize === 'number' ? f.batchSize : DEFAULT_BATCH_SIZE,
    batchTargetMs: auto ? (f.batchTarget ?? DEFAULT_BATCH_TARGET_MS) : undefined,
    maxRate: f.maxRate,
    limit: f.limit,
    timeBudgetMs: f.timeBudget,
    dryRun: flags.dryRun === true,
  };
}

/** --workers: batch loops at once in this process. */
export const workersFlag = wholeNumber(1, 32);

/** --concurrency: provider requests in flight at once. */
export const concurrencyFlag = wholeNumber(1, 64);

/** --embedder and --insights-provider: the providers of embed and insights. */
export const embedderFlag = oneOf(EMBEDDERS);
export const insightsProviderFlag = oneOf(INSIGHT_PROVIDERS);

/** --request-timeout and --retry-for: how long one provider request may take, and how long to keep retrying it. */
export const providerTimeFlags = { requestTimeout: durationFlag, retryFor: durationFlag };

/** The help lines of those two flags. */
export const PROVIDER_TIME_OPTIONS: [flags: string, description: string][] = [
  ['--request-timeout <duration>', 'openai: one request may take this long before it is retried (default: 60s)'],
  ['--retry-for <duration>', 'openai: keep retrying a failing request this long, then stop the run (default: 5m)'],
];

/** --lock-timeout: how long one attempt waits for a table lock (at most a minute: readers queue behind). */
export const lockTimeoutFlag = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0 || ms > 60_000) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration between 1ms and 60s, such as 500ms or 2s' });
    return z.NEVER;
  }
  return ms;
});

const MEMORY_UNITS: Record<string, string> = { kb: 'kB', mb: 'MB', gb: 'GB', tb: 'TB' };

/** --maintenance-work-mem: a PostgreSQL memory size, `512MB`, `2GB` (units as PostgreSQL spells them). */
export const memorySizeFlag = z.string().transform((text, ctx) => {
  const m = /^(\d{1,9})\s*(kB|MB|GB|TB)$/i.exec(text.trim());
  if (!m || Number(m[1]) === 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a memory size such as 512MB or 2GB' });
    return z.NEVER;
  }
  return `${Number(m[1])}${MEMORY_UNITS[m[2]!.toLowerCase()]!}`;
});
