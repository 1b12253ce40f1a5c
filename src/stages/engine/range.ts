// The range every batch command narrows its work with (SPEC §4), as values, and the one SQL
// predicate that applies it. Commands parse flags into a RangeOptions (commands/flags.ts);
// stages and tests build one with makeRange.

export const DEFAULT_BATCH_SIZE = 1000;
/** What an adaptive batch (`--batch-size auto`) aims to take: short transactions, few of them. */
export const DEFAULT_BATCH_TARGET_MS = 1000;

export interface RangeOptions {
  since: Date | undefined;
  until: Date | undefined;
  userId: string | undefined;
  provider: string | undefined;
  /** Every batch's size; with batchTargetMs, the first batch's. */
  batchSize: number;
  /** `--batch-size auto`: each batch sized to take about this long (ms). Absent: a fixed size. */
  batchTargetMs?: number | undefined;
  /** At most this many events per second: the run waits between batches to hold it. */
  maxRate?: number | undefined;
  /** At most this many events in this run. */
  limit: number | undefined;
  /** Stop cleanly between batches after this many milliseconds. */
  timeBudgetMs: number | undefined;
  dryRun: boolean;
  /**
   * Only these items of the stage (raw events for normalize, interactions for embed, contacts
   * for insights): what `errors retry` re-runs. Absent: every item in the range.
   */
  items?: string[] | undefined;
}

/** A range with the defaults: everything, batches of DEFAULT_BATCH_SIZE, for real. */
export function makeRange(partial: Partial<RangeOptions> = {}): RangeOptions {
  return {
    since: undefined,
    until: undefined,
    userId: undefined,
    provider: undefined,
    batchSize: DEFAULT_BATCH_SIZE,
    limit: undefined,
    timeBudgetMs: undefined,
    dryRun: false,
    ...partial,
  };
}

/** The range as the ledger records it (and as `runs show` prints it). */
export function describeRange(range: RangeOptions): Record<string, unknown> {
  return {
    since: range.since?.toISOString(),
    until: range.until?.toISOString(),
    user: range.userId,
    provider: range.provider,
    batchSize: range.batchTargetMs === undefined ? range.batchSize : 'auto',
    batchTargetMs: range.batchTargetMs,
    maxRate: range.maxRate,
    limit: range.limit,
    timeBudgetMs: range.timeBudgetMs,
    dryRun: range.dryRun || undefined,
    items: range.items?.length,
  };
}

/** The columns a table's rows are ranged by. */
export interface RangeColumns {
  at: string;
  user: string;
  provider: string;
  /** The item's id, for RangeOptions.items. */
  item: string;
}

/**
 * The range predicate over `columns`, reading $1..$5 (give it rangeParams first). Column names
 * are the caller's constants, never values: every value travels as a parameter. An absent bound
 * is a NULL parameter, so one prepared shape serves every combination of flags.
 */
export function rangeWhere(c: RangeColumns): string {
  return `($1::timestamptz IS NULL OR ${c.at} >= $1)
  AND ($2::timestamptz IS NULL OR ${c.at} < $2)
  AND ($3::uuid IS NULL OR ${c.user} = $3)
  AND ($4::text IS NULL OR ${c.provider} = $4)
  AND ($5::uuid[] IS NULL OR ${c.item} = ANY($5))`;
}

/** $1..$5 of rangeWhere. */
export function rangeParams(
  range: Pick<RangeOptions, 'since' | 'until' | 'userId' | 'provider' | 'items'>,
): [Date | null, Date | null, string | null, string | null, string[] | null] {
  return [range.since ?? null, range.until ?? null, range.userId ?? null, range.provider ?? null, range.items ?? null];
}
