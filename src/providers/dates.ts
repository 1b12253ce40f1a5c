// Strict time parsing. `new Date(string)` accepts nearly anything and reads zone-less strings
// in the process's local zone: a CRM timeline silently shifted by hours. These parsers accept
// only the formats providers send and always yield UTC instants.

const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
const MIN_PLAUSIBLE_MS = 100_000_000_000; // 1973-03-03: below this, milliseconds are probably seconds

export type TimeResult = { ok: true; date: Date } | { ok: false; problem: string };

/** Milliseconds since the epoch, given as a number or a string of digits. */
export function fromEpochMs(value: number | string): TimeResult {
  const ms = typeof value === 'number' ? value : /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) return { ok: false, problem: `is not milliseconds since the epoch: ${JSON.stringify(value)}` };
  if (ms > MAX_MS) return { ok: false, problem: `is after the year 9999: ${JSON.stringify(value)}` };
  if (ms < MIN_PLAUSIBLE_MS) {
    return {
      ok: false,
      problem: `${JSON.stringify(value)} is ${new Date(ms).toISOString()}: it looks like seconds, milliseconds since the epoch expected`,
    };
  }
  return { ok: true, date: new Date(ms) };
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const ZONES: Record<string, number> = {
  ut: 0,
  utc: 0,
  gmt: 0,
  z: 0,
  edt: -240,
  est: -300,
  cdt: -300,
  cst: -360,
  mdt: -360,
  mst: -420,
  pdt: -420,
  pst: -480,
};
const RFC2822 =
  /^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?\s+(?:([+-])(\d{2})(\d{2})|([A-Za-z]{1,3}))\s*$/;

/** `Thu, 24 Aug 2023 05:01:45 +0000` (RFC 2822; the zone is required). */
export function parseRfc2822(s: string): TimeResult {
  const m = RFC2822.exec(s);
  if (!m) return { ok: false, problem: `is not an RFC 2822 date like "Thu, 24 Aug 2023 05:01:45 +0000": ${JSON.stringify(s)}` };
  const month = MONTHS[(m[2] as string).toLowerCase()];
  let offset: number | undefined;
  if (m[7]) offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  else offset = ZONES[(m[10] as string).toLowerCase()];
  if (month === undefined) return { ok: false, problem: `has an unknown month ${JSON.stringify(m[2])}: ${JSON.stringify(s)}` };
  if (offset === undefined) return { ok: false, problem: `has an unknown time zone ${JSON.stringify(m[10])}: ${JSON.stringify(s)}` };
  return build(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), 0, offset, s);
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$/;

/**
 * ISO 8601 / RFC 3339 with a UTC offset (`2025-08-01T10:00:00+02:00`, `…Z`). A time without
 * an offset is refused: guessing a zone would shift the timeline silently.
 */
export function parseIsoWithOffset(s: string): TimeResult {
  const m = ISO.exec(s.trim());
  if (!m) return { ok: false, problem: `is not an ISO 8601 date-time like "2025-08-01T10:00:00+02:00": ${JSON.stringify(s)}` };
  if (m[4] === undefined) return { ok: false, problem: `has a date but no time and UTC offset: ${JSON.stringify(s)}` };
  if (m[8] === undefined && m[9] === undefined) {
    return { ok: false, problem: `has no UTC offset, so the instant is ambiguous (add "Z" or e.g. "+02:00"): ${JSON.stringify(s)}` };
  }
  const offset = m[9] ? (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) : 0;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  return build(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), ms, offset, s);
}

/** RFC 2822 (Twilio's REST format) or, for exports that converted it, ISO 8601 with offset. */
export function parseRfc2822OrIso(s: string): TimeResult {
  if (/^\d{4}-/.test(s.trim())) return parseIsoWithOffset(s);
  return parseRfc2822(s);
}

function build(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
  offsetMinutes: number,
  s: string,
): TimeResult {
  // A leap second (…:60) is read as the last millisecond of its minute.
  const leap = second === 60;
  // Date.UTC reads the years 0-99 as 1900-1999: the year is set on its own.
  const check = new Date(Date.UTC(2000, month, day, hour, minute, leap ? 59 : second, leap ? 999 : ms));
  check.setUTCFullYear(year, month, day);
  const local = check.getTime();
  const valid =
    month >= 0 &&
    month <= 11 &&
    check.getUTCFullYear() === year &&
    check.getUTCMonth() === month &&
    check.getUTCDate() === day &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 60 &&
    Math.abs(offsetMinutes) <= 18 * 60;
  if (!valid) return { ok: false, problem: `is not a valid date-time: ${JSON.stringify(s)}` };
  return { ok: true, date: new Date(local - offsetMinutes * 60_000) };
}
