import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isCairnError } from '../core/index.js';
import { fieldsAt, parseCron } from '../core/index.js';
import { nextLocalTime, wallToUtc } from './time.js';
import { zoneOffset } from '../conditions/index.js';

const at = (iso: string) => fieldsAt(Date.parse(iso), 0);

describe('parseCron', () => {
  it('matches minutes, hours, names, ranges, steps and lists', () => {
    const c = parseCron('0 9 * * mon-fri');
    expect(c.matches(at('2026-11-23T09:00:00Z'))).toBe(true); // Monday
    expect(c.matches(at('2026-11-22T09:00:00Z'))).toBe(false); // Sunday
    expect(c.matches(at('2026-11-23T09:01:00Z'))).toBe(false);
    const s = parseCron('*/15 8-10 1,15 jan,nov *');
    expect(s.matches(at('2026-11-15T10:45:00Z'))).toBe(true);
    expect(s.matches(at('2026-11-15T10:50:00Z'))).toBe(false);
    expect(s.matches(at('2026-12-15T10:45:00Z'))).toBe(false);
    expect(parseCron('0 0 * * 7').matches(at('2026-11-22T00:00:00Z'))).toBe(true); // 7 is Sunday
    expect(parseCron('30 6 * * SUN').matches(at('2026-11-22T06:30:00Z'))).toBe(true);
  });

  it('ORs day of month and day of week when both are restricted (Vixie cron)', () => {
    const c = parseCron('0 12 1 * fri');
    expect(c.matches(at('2026-12-01T12:00:00Z'))).toBe(true); // the 1st, a Tuesday
    expect(c.matches(at('2026-11-27T12:00:00Z'))).toBe(true); // a Friday
    expect(c.matches(at('2026-11-26T12:00:00Z'))).toBe(false);
  });

  it.each([
    ['0 9 * *', /expected 5 fields/],
    ['60 9 * * *', /60 in the minute field is outside 0–59/],
    ['0 9 * * funday', /"funday" in the day of week field/],
    ['*/0 * * * *', /step "0"/],
    ['0 10-9 * * *', /runs backwards/],
  ])('refuses %s saying what is wrong', (src, reason) => {
    try {
      parseCron(src);
      expect.unreachable();
    } catch (e) {
      expect(isCairnError(e) && e.code).toBe('CAIRN_ERR_JOURNEY_CRON');
      expect((e as Error).message).toMatch(reason);
    }
  });

  it('"* * * * *" matches every minute (property)', () => {
    const every = parseCron('* * * * *');
    fc.assert(fc.property(fc.integer({ min: 0, max: 4_000_000_000_000 }), (t) => every.matches(fieldsAt(t, 0))));
  });
});

describe('nextLocalTime', () => {
  it('finds the next local time on an allowed weekday across a DST change', () => {
    // Saturday noon before Europe's switch to summer time (2026-03-29): next Monday 09:00 is CEST (+2).
    expect(new Date(nextLocalTime('Europe/Berlin', Date.parse('2026-03-28T12:00:00Z'), '09:00', ['mon'])).toISOString()).toBe('2026-03-30T07:00:00.000Z');
    // Same day when still ahead, the next day when passed.
    expect(new Date(nextLocalTime('America/New_York', Date.parse('2026-11-23T13:00:00Z'), '09:00')).toISOString()).toBe('2026-11-23T14:00:00.000Z');
    expect(new Date(nextLocalTime('America/New_York', Date.parse('2026-11-23T14:00:00Z'), '09:00')).toISOString()).toBe('2026-11-24T14:00:00.000Z');
  });

  it('maps a wall time in the spring-forward gap past the gap, and a repeated one to its first occurrence', () => {
    // 02:30 does not exist in Berlin on 2026-03-29: 03:30 CEST = 01:30Z.
    expect(new Date(wallToUtc('Europe/Berlin', Date.parse('2026-03-29T02:30:00Z'))).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // 02:30 happens twice on 2026-10-25: first at CEST (00:30Z).
    expect(new Date(wallToUtc('Europe/Berlin', Date.parse('2026-10-25T02:30:00Z'))).toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });

  it('always lands strictly after now, on the requested local time and day (property)', () => {
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe'];
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    fc.assert(
      fc.property(fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }), fc.constantFrom(...zones), fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 15, 30, 45), fc.subarray(days, { minLength: 1 }), (now, zone, h, m, allowed) => {
        const time = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
        const t = nextLocalTime(zone, now, time, allowed);
        expect(t).toBeGreaterThan(now);
        expect(t - now).toBeLessThanOrEqual(8 * 86_400_000);
        const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', weekday: 'short' }).formatToParts(t);
        const get = (type: string) => parts.find((p) => p.type === type)?.value;
        expect(allowed).toContain((get('weekday') as string).toLowerCase());
        // A time in a DST gap lands past it; otherwise exactly on the wall time.
        if (`${get('hour')}:${get('minute')}` !== time) expect(zoneOffset(zone, t)).not.toBe(zoneOffset(zone, t - 3 * 3_600_000));
      }),
      { numRuns: 300 },
    );
  });
});
