// The range every batch command narrows its work with (SPEC §4), as values, and the one SQL
// predicate that applies it. Commands parse flags into a RangeOptions (commands/flags.ts);
// stages and tests build one with makeRange.

export const DEFAULT_BATCH_SIZE = 1000;

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
    batchSize: range.batchSize,
    limit: range.limit,
    timeBudgetMs: range.timeBudgetMs,
    dryRun: range.dryRun || undefined,
  };
}

/** The columns a table's rows are ranged by. */
export interface RangeColumns {
  at: string;
  user: string;
  provider: string;
}

/**
 * The range predicate over `columns`, reading $1..$4 (give it rangeParams first). Column names
 * are the caller's constants, never values: every value travels as a parameter. An absent bound
 * is a NULL parameter, so one prepared shape serves every combination of flags.
 */
export function rangeWhere(c: RangeColumns): string {
  return `($1::timestamptz IS NULL OR ${c.at} >= $1)
  AND ($2::timestamptz IS NULL OR ${c.at} < $2)
  AND ($3::uuid IS NULL OR ${c.user} = $3)
  AND ($4::text IS NULL OR ${c.provider} = $4)`;
}

/** $1..$4 of rangeWhere. */
export function rangeParams(
  range: Pick<RangeOptions, 'since' | 'until' | 'userId' | 'provider'>,
): [Date | null, Date | null, string | null, string | null] {
  return [range.since ?? null, range.until ?? null, range.userId ?? null, range.provider ?? null];
}
