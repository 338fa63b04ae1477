/**
 * Time comes from a Clock everywhere, so tests and simulations run in virtual time and never sleep.
 * All times in Cairn are epoch milliseconds (UTC) unless a name says otherwise.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
export class VirtualClock implements Clock {
  private t: number;
  constructor(start: number | string = '2026-01-05T09:00:00.000Z') {
    this.t = typeof start === 'number' ? start : Date.parse(start);
  }
  now(): number {
    return this.t;
  }
  set(t: number | string): void {
    this.t = typeof t === 'number' ? t : Date.parse(t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

const UNIT_MS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY };

/** Parses "90s", "15m", "12h", "60d", "2w" into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = UNIT_MS[m[2] as string];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}
