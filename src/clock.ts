// Time comes from a Clock so tests can pin it (durations such as `--since 90d`, expiry, budgets).
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
