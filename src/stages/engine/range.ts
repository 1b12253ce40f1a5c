// The range options every batch command shares (SPEC §4), parsed once with zod into values
// the engine can use. A bad value is a usage error naming the flag (exit 2).
import { z } from 'zod';
import type { Clock } from '../../context.js';
import { UsageError } from '../../errors.js';

export interface RangeOptions {
  since: Date | undefined;
  until: Date | undefined;
  userId: string | undefined;
  provider: string | undefined;
  batchSize: number;
  /** At most this many events in this run. */
  limit: number | undefined;
  /** Stop cleanly between batches after this many milliseconds. */
  timeBudgetMs: number | undefined;
  dryRun: boolean;
}

export interface RangeFlags {
  since?: string;
  until?: string;
  user?: string;
  provider?: string;
  batchSize?: string;
  limit?: string;
  timeBudget?: string;
  dryRun?: boolean;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90d`, `24h`, `30m`, `45s`, `1500ms`, `2w`; undefined if it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/** An ISO 8601 date or date-time, or a duration back from now (`90d`). */
export function parseInstant(flag: string, text: string, clock: Clock): Date {
  const back = parseDuration(text);
  if (back !== undefined) return new Date(clock.now().getTime() - back);
  // Only ISO 8601: Date.parse also accepts "March 7" and friends, which cron files should not rely on.
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    throw new UsageError(`${flag} "${text}" is not an ISO 8601 date (2025-06-01, 2025-06-01T12:00:00Z) or a duration (90d, 24h)`);
  }
  // A date or a date-time without an offset is read as UTC, like every timestamp we store.
  const iso = /[T ]\d{2}:\d{2}/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/.test(text.trim()) ? `${text.trim()}Z` : text.trim();
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new UsageError(`${flag} "${text}" is not a valid date`);
  return new Date(ms);
}

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');

function positiveInt(flag: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > max) {
    throw new UsageError(`${flag} "${text}" must be a whole number between 1 and ${max}`);
  }
  return Number(text);
}

export function parseRange(flags: RangeFlags, clock: Clock, knownProviders?: readonly string[]): RangeOptions {
  const since = flags.since === undefined ? undefined : parseInstant('--since', flags.since, clock);
  const until = flags.until === undefined ? undefined : parseInstant('--until', flags.until, clock);
  if (since && until && since >= until) throw new UsageError(`--since (${since.toISOString()}) must be before --until (${until.toISOString()})`);
  if (flags.user !== undefined && !uuid.safeParse(flags.user).success) throw new UsageError(`--user "${flags.user}" must be a UUID`);
  if (flags.provider !== undefined && knownProviders && !knownProviders.includes(flags.provider)) {
    throw new UsageError(`--provider "${flags.provider}" is not one of ${knownProviders.join(', ')}`);
  }
  let timeBudgetMs: number | undefined;
  if (flags.timeBudget !== undefined) {
    timeBudgetMs = parseDuration(flags.timeBudget);
    if (timeBudgetMs === undefined || timeBudgetMs <= 0) throw new UsageError(`--time-budget "${flags.timeBudget}" must be a duration such as 5m, 90s or 1h`);
  }
  return {
    since,
    until,
    userId: flags.user?.toLowerCase(),
    provider: flags.provider,
    batchSize: positiveInt('--batch-size', flags.batchSize, 50_000) ?? 1_000,
    limit: positiveInt('--limit', flags.limit, Number.MAX_SAFE_INTEGER),
    timeBudgetMs,
    dryRun: flags.dryRun === true,
  };
}

/** The range as the ledger records it (and as `runs show` prints it). */
export function describeRange(range: RangeOptions): Record<string, unknown> {
  return {
    since: range.since?.toISOString(),
    until: range.until?.toISOString(),
    user: range.userId,
    provider: range.provider,
    batchSize: range.batchSize,
    limit: range.limit,
    timeBudgetMs: range.timeBudgetMs,
    dryRun: range.dryRun || undefined,
  };
}
