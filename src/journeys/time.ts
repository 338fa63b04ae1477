import { zoneOffset } from '../conditions/index.js';

const DAY = 86_400_000;
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * The UTC instant of a wall-clock time in `zone`. The offsets 14 hours before and after are tried
 * (any DST change in between is one of them): a wall time that exists once gives one valid answer; in
 * the repeated hour of a fall-back night the first occurrence is taken; a wall time in the gap of a
 * spring-forward night does not exist and maps to the later candidate, just past the gap.
 */
export function wallToUtc(zone: string, wallMs: number): number {
  const a = wallMs - zoneOffset(zone, wallMs - 14 * 3_600_000);
  const b = wallMs - zoneOffset(zone, wallMs + 14 * 3_600_000);
  const valid = [a, b].filter((c) => c + zoneOffset(zone, c) === wallMs);
  return valid.length > 0 ? Math.min(...valid) : Math.max(a, b);
}

/**
 * The first instant strictly after `now` at which the clock in `zone` shows `time` (HH:MM) on one of
 * `days` (mon…sun; any day when omitted). Looks at most 8 local days ahead, which always finds one.
 *
 * @example
 *   nextLocalTime('Europe/Berlin', Date.parse('2026-03-28T12:00:00Z'), '09:00', ['mon'])
 *   // 2026-03-30T07:00:00Z (09:00 CEST, after the switch to summer time)
 */
export function nextLocalTime(zone: string, now: number, time: string, days?: readonly string[]): number {
  const [h, m] = time.split(':').map(Number) as [number, number];
  const localNow = now + zoneOffset(zone, now);
  const localMidnight = Math.floor(localNow / DAY) * DAY;
  for (let d = 0; d <= 8; d++) {
    const wall = localMidnight + d * DAY + h * 3_600_000 + m * 60_000;
    const weekday = WEEKDAYS[(((Math.floor(wall / DAY) + 4) % 7) + 7) % 7] as string;
    if (days && days.length > 0 && !days.includes(weekday)) continue;
    const at = wallToUtc(zone, wall);
    if (at > now) return at;
  }
  /* c8 ignore next */
  return now + DAY;
}
