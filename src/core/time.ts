/** Two digits per value 0–99, three per value 0–999. */
const D2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const D3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/** 10000-01-01T00:00:00Z: from here on toISOString writes a six-digit, signed year. */
const YEAR_10000 = 253402300800000;
const DAY = 86_400_000;

/**
 * `new Date(ms).toISOString()` for integer ms from 1970 to year 9999 (anything else goes to Date,
 * as do invalid times, which throw as before). The same text, written from a days-to-civil-date
 * conversion and digit tables: no Date object, and about 0.2 µs against 0.65 µs for Date on Node 20
 * (ingest formats two to four per event).
 *
 * @example isoTime(0) === '1970-01-01T00:00:00.000Z'
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000 && Number.isInteger(ms))) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY);
  let rest = ms - days * DAY;
  // Days since 0000-03-01 in eras of 400 years (146,097 days); March-based years put the leap day last.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  return `${D2[Math.floor(year / 100)] as string}${D2[year % 100] as string}-${D2[month] as string}-${D2[day] as string}T${D2[hour] as string}:${D2[minute] as string}:${D2[second] as string}.${D3[milli] as string}Z`;
}
