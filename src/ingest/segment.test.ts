import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { normalizeMessage } from './segment.js';

/**
 * The spec's timestamps, read by hand (segment.ts readTime): checked against a reference built on
 * Date's own calendar for every field combination, valid or not.
 */
const model = resolveModel(parseBlueprint('version: 1\nworkspace: { name: T }\n', 'bp.yaml').blueprint);
const NOW = Date.UTC(2026, 10, 23, 12);

/** Date's calendar: a date-time is valid when Date does not roll it over. */
function reference(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, offMin: number): number | null {
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, s, ms);
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== s) return null;
  return t.getTime() - offMin * 60_000;
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

describe('timestamps', () => {
  it('reads every ISO date-time as Date does and refuses the ones Date would roll over', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1990, max: 2027 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        (y, mo, d, h, mi, s, ms, off) => {
          const zone = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60), 2)}:${pad(Math.abs(off) % 60, 2)}`;
          const text = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(ms, 3)}${zone}`;
          const r = normalizeMessage({ type: 'track', userId: 'u', event: 'E', timestamp: text }, { model, source: 'web', receivedAt: NOW });
          const want = reference(y, mo, d, h, mi, s, ms, off);
          if (want === null) expect(r.ok, text).toBe(false);
          else if (r.ok) expect(r.event.ts, text).toBe(want);
          // A valid date-time outside 1990 … one year ahead is refused for its range, not its form.
          else expect(want < Date.UTC(1990, 0, 1) || want > NOW + 366 * 86_400_000, text).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
