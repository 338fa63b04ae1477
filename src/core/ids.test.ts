import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { uuidv7 } from './ids.js';

/** UUIDv7 as RFC 9562 lays it out: 48 bits of Unix ms, version 7, variant 10, random bits. */
describe('uuidv7', () => {
  const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('has the version and variant bits and carries the millisecond time in its first 48 bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
        const id = uuidv7(ms);
        expect(id).toMatch(FORMAT);
        expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
      }),
      { numRuns: 500 },
    );
  });

  it('sorts by time as text, and ids of one millisecond differ', () => {
    const a = uuidv7(Date.UTC(2026, 10, 23, 10));
    const b = uuidv7(Date.UTC(2026, 10, 23, 10) + 1);
    expect(a < b).toBe(true);
    const same = new Set(Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000)));
    expect(same.size).toBe(5000);
  });
});
