import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isoTime } from './time.js';

const DAY_MS = 86_400_000;

/** isoTime writes stored and returned timestamps, so it must be Date's text exactly. */
describe('isoTime', () => {
  it("is Date's toISOString for any integer ms from 1970 to 9999", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253402300799999 }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });

  it('is right at the edges: epoch, leap days, century years, the last ms of 9999', () => {
    const edges = [0, 1, 999, DAY_MS - 1, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2000, 2, 1), Date.UTC(2100, 1, 28, 12), Date.UTC(2100, 2, 1), Date.UTC(2024, 11, 31, 23, 59, 59, 999), Date.UTC(2025, 0, 1), 253402300799999];
    for (const ms of edges) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('falls back to Date outside that range and for fractions (same text, same error)', () => {
    for (const ms of [-1, -62198755200000, 253402300800000, 8.64e15, 1.5, 1_700_000_000_000.7]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });
});
