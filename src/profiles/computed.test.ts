import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DAY, HOUR } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { computed, type ComputedState } from './index.js';
import { ORDER_TRAITS } from '../../test/helpers/runtime.js';

const { applyEvent, computedValues, mergeStates } = computed;

const model = resolveModel(
  parseBlueprint(
    `version: 1
workspace:
  name: Computed
computed_traits:
${ORDER_TRAITS}  - name: shoes_viewed_7d
    kind: count
    event: Product Viewed
    where:
      category: [shoes, boots]
    window: 7d
  - name: views_6h
    kind: count
    event: Product Viewed
    window: 6h
  - name: orders_total
    kind: count
    event: Order Completed
  - name: last_category
    kind: last
    event: Product Viewed
    property: category
  - name: first_order
    kind: first_seen
    event: Order Completed
  - name: last_page
    kind: last_seen
    types: [page]
`,
    'computed.yaml',
  ).blueprint,
);
const defs = model.computed;
// A Monday, mid-day: day buckets start at 00:00 UTC.
const NOW = Date.parse('2026-03-16T12:00:00.000Z');

interface E {
  type: string;
  name: string | null;
  ts: number;
  properties?: Record<string, unknown>;
}
const order = (ts: number, revenue?: unknown): E => ({ type: 'track', name: 'Order Completed', ts, properties: revenue === undefined ? {} : { revenue } });
const view = (ts: number, category?: string): E => ({ type: 'track', name: 'Product Viewed', ts, properties: category === undefined ? {} : { category } });

function fold(events: readonly E[], now: number, into: Record<string, ComputedState> = {}): Record<string, ComputedState> {
  for (const e of events) applyEvent(defs, into, { type: e.type, name: e.name, ts: e.ts, properties: e.properties }, now);
  return into;
}

describe('computed traits', () => {
  it('count and sum only what falls inside the rolling window, in whole UTC days', () => {
    const s = fold([order(NOW - DAY, 1250), order(NOW - 59 * DAY, '10.5'), order(NOW - 61 * DAY, 99), order(NOW, 'n/a')], NOW);
    const v = computedValues(defs, s, NOW);
    expect(v.orders_60d).toBe(3);
    expect(v.revenue_60d).toBe(1260.5);
    expect(v.orders_total).toBe(4);
    expect(v.first_order).toBe(new Date(NOW - 61 * DAY).toISOString());
  });

  it('the window slides as time passes: old buckets stop counting without any new event', () => {
    const s = fold([order(NOW - 10 * DAY, 100), order(NOW - DAY, 5)], NOW);
    expect(computedValues(defs, s, NOW + 49 * DAY)).toMatchObject({ orders_60d: 2, revenue_60d: 105 });
    // The day bucket of NOW-10d leaves the 60-day window 50 days later (whole days).
    expect(computedValues(defs, s, NOW + 51 * DAY)).toMatchObject({ orders_60d: 1, revenue_60d: 5, orders_total: 2 });
    expect(computedValues(defs, s, NOW + 70 * DAY)).toMatchObject({ orders_60d: 0, revenue_60d: 0, orders_total: 2 });
  });

  it('windows under a day count in hours', () => {
    const s = fold([view(NOW - 5 * HOUR), view(NOW - 7 * HOUR), view(NOW)], NOW);
    expect(computedValues(defs, s, NOW).views_6h).toBe(2);
    expect(computedValues(defs, s, NOW + HOUR).views_6h).toBe(1);
  });

  it('property filters match any listed value; last keeps the latest by event time', () => {
    const s = fold([view(NOW - HOUR, 'boots'), view(NOW - 3 * HOUR, 'shoes'), view(NOW - 2 * HOUR, 'hats'), view(NOW - 4 * HOUR)], NOW);
    const v = computedValues(defs, s, NOW);
    expect(v.shoes_viewed_7d).toBe(2);
    expect(v.last_category).toBe('boots');
    // An older view arriving later does not replace the last value.
    fold([view(NOW - 10 * HOUR, 'socks')], NOW, s);
    expect(computedValues(defs, s, NOW).last_category).toBe('boots');
    expect(v.last_page).toBeNull();
  });

  it('incremental updates at any moments and merges in any order equal one fold of the whole history', () => {
    const evArb = fc.oneof(
      fc.record({ kind: fc.constant('order'), age: fc.integer({ min: -2 * HOUR, max: 70 * DAY }), cents: fc.integer({ min: 0, max: 100_000 }) }),
      fc.record({ kind: fc.constant('view'), age: fc.integer({ min: 0, max: 10 * DAY }), cat: fc.constantFrom('shoes', 'boots', 'hats', undefined) }),
      fc.record({ kind: fc.constant('page'), age: fc.integer({ min: 0, max: 90 * DAY }) }),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ e: evArb, profile: fc.nat(2), lag: fc.integer({ min: 0, max: 3 * DAY }) }), { maxLength: 40 }), fc.integer({ min: 0, max: 80 * DAY }), (items, later) => {
        const toE = (x: (typeof items)[number]['e']): E =>
          x.kind === 'order' ? order(NOW - x.age, (x as { cents: number }).cents / 100) : x.kind === 'view' ? view(NOW - x.age, (x as { cat?: string }).cat) : { type: 'page', name: null, ts: NOW - x.age };
        // Incremental: each event applied to one of three profiles at a moment that only moves forward.
        const profiles: Record<string, ComputedState>[] = [{}, {}, {}];
        let clock = NOW - 3 * DAY;
        for (const it of items) {
          clock = Math.min(NOW, clock + it.lag);
          fold([toE(it.e)], clock, profiles[it.profile]);
        }
        const merged: Record<string, ComputedState> = {};
        for (const p of [profiles[2], profiles[0], profiles[1]]) mergeStates(defs, merged, p as Record<string, ComputedState>, NOW);
        // Recompute: the whole history folded at once.
        const all = fold(items.map((i) => toE(i.e)), NOW);
        expect(computedValues(defs, merged, NOW)).toEqual(computedValues(defs, all, NOW));
        expect(computedValues(defs, merged, NOW + later)).toEqual(computedValues(defs, all, NOW + later));
      }),
      { numRuns: 300 },
    );
  });
});
