import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { DAY, HOUR, MINUTE, VirtualClock, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel, type WorkspaceModel } from '../blueprint/index.js';
import { localHour, localWeekday } from '../conditions/index.js';
import {
  SegmentSweeper,
  applyProfileEvents,
  buildEvalInput,
  computed,
  extractIdentities,
  findCustomerId,
  getCustomerStages,
  getSegmentHistory,
  getSegmentMemberships,
  getStageHistory,
  nextChange,
  recomputeComputedTraits,
  recomputeSegments,
  sweepWorkspace,
  timePlan,
  type ProfileEvent,
  type ProfileRow,
} from './index.js';
import { flipOffsets } from './due.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');
const iso = (t: number): string => new Date(t).toISOString();

function modelOf(yaml: string): WorkspaceModel {
  const parsed = parseBlueprint(yaml, 'sweep.yaml');
  return resolveModel(parsed.blueprint, undefined, parsed.conditions);
}

// recent_buyers slides with time; lifetime_buyers does not. The stages read both segments.
const RECENT_YAML = `version: 1
workspace:
  name: Sweep
segments:
  - name: recent_buyers
    condition: count("Order Completed", "30d") > 0
  - name: lifetime_buyers
    condition: count("Order Completed") >= 1
stages:
  - name: active
    condition: in_segment("recent_buyers")
  - name: lapsed
    condition: in_segment("lifetime_buyers") && !in_segment("recent_buyers")
`;
const RECENT = modelOf(RECENT_YAML);
// Two windows.
const WINDOW = modelOf(RECENT_YAML.replace('stages:', `  - name: frequent
    condition: count("Order Completed", "7d") >= 2
stages:`));

const TIMELESS = modelOf(`version: 1
workspace:
  name: Timeless
segments:
  - name: lifetime_buyers
    condition: count("Order Completed") >= 1
  - name: shoe_buyers
    condition: last("Order Completed").category == "shoes"
`);

// Only days_since: exact thresholds on "Order Completed" (both sides, fractional, off the hour grid),
// the hourly grid on "Product Viewed" (one use in arithmetic), for the focused sweep property.
const THRESHOLDS = modelOf(`version: 1
workspace:
  name: Thresholds
segments:
  - name: half_day
    condition: days_since("Order Completed") < 0.5
  - name: between
    condition: 1.3 < days_since("Order Completed") && 2 >= days_since("Order Completed")
  - name: lapsed
    condition: exists("Order Completed") && days_since("Order Completed") >= 3
  - name: late
    condition: 2.71 <= days_since("Order Completed")
  - name: browsed
    condition: days_since("Product Viewed") * 24.0 >= 30.0 || days_since("Product Viewed") > 2
stages:
  - name: gone
    condition: in_segment("lapsed")
`);

const LAPSING = modelOf(`version: 1
workspace:
  name: Lapsing
segments:
  - name: lapsing
    condition: days_since("Order Completed") > 14
`);

// Everything time-dependent the sweep knows, for the property tests. days_since("Order Completed")
// is only compared with literals (exact thresholds: 0.5, 1.3 — off the hour grid — 2 and 3 days);
// days_since("Product Viewed") is also used in arithmetic, so it stays on the hourly grid.
const ALL = modelOf(`version: 1
workspace:
  name: All
  timezone: Europe/Berlin
computed_traits:
  - name: orders_3d
    kind: count
    event: Order Completed
    window: 3d
segments:
  - name: recent
    condition: count("Order Completed", "30d") > 0
  - name: shoes_2w
    condition: 'count("Order Completed", "14d", {"category": "shoes"}) >= 2'
  - name: big_week
    condition: sum("Order Completed", "revenue", "7d") >= 100.0
  - name: last_6h
    condition: count("Order Completed", "6h") >= 1
  - name: lapsing
    condition: exists("Order Completed") && days_since("Order Completed") >= 3
  - name: half_day
    condition: days_since("Order Completed") < 0.5
  - name: between
    condition: 1.3 < days_since("Order Completed") && 2 >= days_since("Order Completed")
  - name: browsed_30h
    condition: days_since("Product Viewed") * 24.0 >= 30.0 || days_since("Product Viewed") > 2
  - name: three_day
    condition: computed.orders_3d >= 1
  - name: office_hours
    condition: local_hour() >= 9 && local_hour() < 18 && in_segment("recent")
  - name: weekend
    condition: 'local_weekday() in [0, 6]'
  - name: lifetime
    condition: count("Order Completed") >= 2
stages:
  - name: active
    condition: in_segment("recent")
  - name: lapsed
    condition: in_segment("lifetime") && !in_segment("recent")
`);

function order(model: WorkspaceModel, userId: string, id: string, ts: number, props: Record<string, unknown> = {}, event = 'Order Completed'): ProfileEvent {
  const message = { type: 'track', userId, event, messageId: id, properties: props };
  return { source: 'web', messageId: id, type: 'track', name: event, ts, receivedAt: ts, identities: extractIdentities(model, message), properties: props, payload: JSON.stringify(message) };
}

/** Event ages (ms) that land near the days_since thresholds of ALL, or anywhere in 40 days. */
const NEAR = [0.5, 1.25, 1.3, 2, 3].map((d) => d * DAY);
const ageArb = fc.oneof(fc.integer({ min: 0, max: 40 * DAY }), fc.tuple(fc.constantFrom(...NEAR), fc.integer({ min: -3 * HOUR, max: 3 * HOUR })).map(([d, off]) => Math.max(0, d + off)));

function identify(model: WorkspaceModel, userId: string, id: string, ts: number, traits: Record<string, unknown>): ProfileEvent {
  const message = { type: 'identify', userId, messageId: id, traits };
  return { source: 'web', messageId: id, type: 'identify', name: null, ts, receivedAt: ts, identities: extractIdentities(model, message), traits, payload: JSON.stringify(message) };
}

function row(computedStates: Record<string, computed.ComputedState>, traits: Record<string, unknown> = {}): ProfileRow {
  return {
    id: 'c1',
    createdAt: NOW,
    updatedAt: NOW,
    mergedInto: null,
    traits: Object.fromEntries(Object.entries(traits).map(([k, v]) => [k, { v, ts: NOW, src: 'test' }])),
    computed: computedStates,
    firstSeen: NOW,
    lastSeen: NOW,
    identities: new Set(),
  };
}

/** Every segment's value for a profile at t (no consent, no stage). */
function segmentsAt(model: WorkspaceModel, r: ProfileRow, t: number): string {
  const members = new Set<string>();
  const input = buildEvalInput(model, r, { now: t, segments: members, stage: null, consent: [] });
  for (const s of model.segments) if (s.condition.evaluate(input)) members.add(s.name);
  return [...members].sort().join(',');
}

describe('time plan and next change (pure)', () => {
  it('plans only what a segment or stage reads with time', () => {
    expect(timePlan(TIMELESS).any).toBe(false);
    expect(nextChange(timePlan(TIMELESS), TIMELESS, row({}), NOW)).toBeUndefined();
    const w = timePlan(WINDOW);
    expect(w.windowed.map((d) => d.windowMs).sort((x, y) => (x as number) - (y as number))).toEqual([7 * DAY, 30 * DAY]);
    expect([w.utcGrid, w.localHour, w.localDay, w.anchored.length]).toEqual([false, false, false, 0]);
    const all = timePlan(ALL);
    // 30d, 14d filtered, 7d sum, 6h, and the declared 3d trait.
    expect(all.windowed.length).toBe(5);
    // days_since("Order Completed") only meets literals: exact offsets; "Product Viewed" is in arithmetic: the grid.
    expect(all.thresholds.map((x) => [x.counter.event, x.offsets])).toEqual([['Order Completed', [0.5 * DAY, 1.3 * DAY + 1, 2 * DAY + 1, 3 * DAY]]]);
    expect(all.anchored.map((d) => [d.kind, d.event])).toEqual([['last_seen', 'Product Viewed']]);
    expect([all.utcGrid, all.localHour, all.localDay]).toEqual([false, true, true]);
    expect(timePlan(modelOf('version: 1\nworkspace:\n  name: T\nsegments:\n  - name: old\n    condition: days_since(profile.first_seen) > 90\n')).utcGrid).toBe(true);
    expect(timePlan(modelOf('version: 1\nworkspace:\n  name: T\nsegments:\n  - name: later\n    condition: now() > timestamp("2027-01-01T00:00:00Z")\n')).utcGrid).toBe(true);
  });

  it('a window is due when its oldest non-empty bucket leaves it; an empty one never', () => {
    const plan = timePlan(WINDOW);
    const [d30] = plan.windowed.filter((d) => d.windowMs === 30 * DAY);
    if (!d30) throw new Error('no 30d counter');
    const k = Math.floor(NOW / DAY);
    expect(nextChange(plan, WINDOW, row({ [d30.name]: { b: { [k - 3]: 1, [k]: 2 } } }), NOW)).toBe((k - 3 + 30) * DAY);
    // Buckets already outside, or holding nothing, do not count.
    expect(nextChange(plan, WINDOW, row({ [d30.name]: { b: { [k - 40]: 1, [k - 2]: 0, [k]: 1 } } }), NOW)).toBe((k + 30) * DAY);
    expect(nextChange(plan, WINDOW, row({ [d30.name]: { b: { [k - 40]: 1 } } }), NOW)).toBeUndefined();
    expect(nextChange(plan, WINDOW, { ...row({ [d30.name]: { b: { [k]: 1 } } }), mergedInto: 'c2' }, NOW)).toBeUndefined();
  });

  it('no segment of a profile changes strictly before its due, whatever the buckets, zone and time', () => {
    const plan = timePlan(ALL);
    const defs = ALL.computed;
    const zones = ['America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Europe/Berlin', 'Not/AZone'];
    // Some times near the 2026 DST switches of New York and Berlin.
    const around = [Date.parse('2026-03-08T06:30:00Z'), Date.parse('2026-11-01T05:10:00Z'), Date.parse('2026-03-29T00:50:00Z'), NOW];
    const arb = fc.record({
      base: fc.constantFrom(...around),
      shift: fc.integer({ min: -3 * DAY, max: 3 * DAY }),
      zone: fc.option(fc.constantFrom(...zones), { nil: undefined }),
      orders: fc.array(fc.record({ age: ageArb, shoes: fc.boolean(), revenue: fc.integer({ min: 0, max: 90 }), viewed: fc.boolean() }), { maxLength: 6 }),
      probes: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
    });
    fc.assert(
      fc.property(arb, ({ base, shift, zone, orders, probes }) => {
        const t = base + shift;
        const states: Record<string, computed.ComputedState> = {};
        for (const o of orders) computed.applyEvent(defs, states, { type: 'track', name: o.viewed ? 'Product Viewed' : 'Order Completed', ts: t - o.age, properties: { category: o.shoes ? 'shoes' : 'hats', revenue: o.revenue } }, t);
        const r = row(states, zone === undefined ? {} : { timezone: zone });
        const due = nextChange(plan, ALL, r, t);
        // The local-time segments make every profile due at some point.
        expect(due).toBeDefined();
        const d = due as number;
        expect(d).toBeGreaterThan(t);
        const before = segmentsAt(ALL, r, t);
        for (const p of probes) {
          const probe = t + Math.floor(p * (d - t - 1));
          expect(segmentsAt(ALL, r, probe), `at ${iso(probe)} (due ${iso(d)})`).toBe(before);
        }
        expect(segmentsAt(ALL, r, d - 1)).toBe(before);
      }),
      { numRuns: 300 },
    );
  });

  it('days_since compared with literals is due exactly when a comparison can flip, and never once all have', () => {
    const T0 = Date.parse('2026-05-03T07:41:12.345Z');
    const lapsing = modelOf('version: 1\nworkspace:\n  name: T\nsegments:\n  - name: lapsing\n    condition: exists("Order Completed") && days_since("Order Completed") > 45\n');
    const plan = timePlan(lapsing);
    const [d] = plan.thresholds.map((x) => x.counter);
    if (!d) throw new Error('no exact days_since counter');
    expect(plan.anchored).toEqual([]);
    const at = (ts: number | undefined, t: number) => nextChange(plan, lapsing, row(ts === undefined ? {} : { [d.name]: { ts } }), t);
    // `> 45` holds from 1 ms after 45 days: due then, from any time before it (not on the next hour).
    expect(at(T0, T0)).toBe(T0 + 45 * DAY + 1);
    expect(at(T0, T0 + 30 * DAY + 17 * MINUTE)).toBe(T0 + 45 * DAY + 1);
    expect(at(T0, T0 + 45 * DAY)).toBe(T0 + 45 * DAY + 1);
    expect(segmentsAt(lapsing, row({ [d.name]: { ts: T0 } }), T0 + 45 * DAY)).toBe('');
    expect(segmentsAt(lapsing, row({ [d.name]: { ts: T0 } }), T0 + 45 * DAY + 1)).toBe('lapsing');
    // Past it nothing can change with time any more; never ordered: +Infinity, nothing either.
    expect(at(T0, T0 + 45 * DAY + 1)).toBeUndefined();
    expect(at(T0, T0 + 400 * DAY)).toBeUndefined();
    expect(at(undefined, T0)).toBeUndefined();
  });

  it('each operator flips at its own instant; a literal on the left is the mirrored operator; an event in the future too', () => {
    const T0 = Date.parse('2026-05-03T07:41:12.345Z');
    const due = (condition: string, t: number, ts = T0): number | undefined => {
      const m = modelOf(`version: 1\nworkspace:\n  name: T\nsegments:\n  - name: s\n    condition: '${condition}'\n`);
      const plan = timePlan(m);
      const d = plan.thresholds[0]?.counter;
      if (!d) throw new Error(`no exact days_since counter for ${condition}`);
      return nextChange(plan, m, row({ [d.name]: { ts } }), t);
    };
    expect(due('days_since("Order Completed") >= 0.5', T0)).toBe(T0 + 12 * HOUR);
    expect(due('days_since("Order Completed") < 0.5', T0)).toBe(T0 + 12 * HOUR);
    expect(due('days_since("Order Completed") <= 0.5', T0)).toBe(T0 + 12 * HOUR + 1);
    expect(due('7 > days_since("Order Completed")', T0)).toBe(T0 + 7 * DAY);
    expect(due('7 >= days_since("Order Completed")', T0)).toBe(T0 + 7 * DAY + 1);
    // == holds for exactly one millisecond: due at it, then just after it.
    expect(due('days_since("Order Completed") == 2.0', T0)).toBe(T0 + 2 * DAY);
    expect(due('days_since("Order Completed") != 2.0', T0 + 2 * DAY)).toBe(T0 + 2 * DAY + 1);
    expect(due('days_since("Order Completed") != 2.0', T0 + 2 * DAY + 1)).toBeUndefined();
    // Off the hour grid: 1.3 days is 31 h 12 min.
    expect(due('days_since("Order Completed") > 1.3', T0 + HOUR)).toBe(T0 + 31 * HOUR + 12 * MINUTE + 1);
    // An event stamped in the future (clock skew): days_since is negative until then.
    expect(due('days_since("Order Completed") > -1', T0, T0 + 3 * DAY)).toBe(T0 + 2 * DAY + 1);
    expect(due('days_since("Order Completed") >= 0', T0, T0 + 3 * DAY)).toBe(T0 + 3 * DAY);
    // Several thresholds: the next one after t.
    expect(due('days_since("Order Completed") > 3 && days_since("Order Completed") < 10', T0 + 4 * DAY)).toBe(T0 + 10 * DAY);
  });

  it('one use of an event that is not a comparison with a literal keeps that event on the hourly grid; other events stay exact', () => {
    const T0 = Date.parse('2026-05-03T07:41:12.345Z');
    const m = modelOf(`version: 1
workspace:
  name: T
segments:
  - name: lapsing
    condition: days_since("Order Completed") > 45 && days_since("Product Viewed") > 10
  - name: hours
    condition: days_since("Product Viewed") * 24.0 > 36.0
`);
    const plan = timePlan(m);
    expect(plan.thresholds.map((x) => [x.counter.event, x.offsets])).toEqual([['Order Completed', [45 * DAY + 1]]]);
    expect(plan.anchored.map((d) => d.event)).toEqual(['Product Viewed']);
    const byEvent = (e: string) => m.computed.find((d) => d.kind === 'last_seen' && d.event === e)?.name as string;
    const r = row({ [byEvent('Order Completed')]: { ts: T0 }, [byEvent('Product Viewed')]: { ts: T0 - 5 * MINUTE } });
    // Product Viewed: the next whole hour after it, and 1 ms after each.
    expect(nextChange(plan, m, r, T0)).toBe(T0 - 5 * MINUTE + HOUR);
    expect(nextChange(plan, m, r, T0 - 5 * MINUTE + HOUR)).toBe(T0 - 5 * MINUTE + HOUR + 1);
    // The timestamp overload stays on the UTC hour grid.
    const ts = modelOf('version: 1\nworkspace:\n  name: T\nsegments:\n  - name: old\n    condition: days_since(profile.first_seen) > 90.0 && days_since("Order Completed") > 1\n');
    expect([timePlan(ts).utcGrid, timePlan(ts).thresholds.length]).toEqual([true, 1]);
  });

  it('flip offsets match how days_since is evaluated, for any threshold', () => {
    const ops = ['<', '<=', '>', '>=', '==', '!='] as const;
    const holds = (op: (typeof ops)[number], x: number, days: number): boolean => {
      const v = x / DAY;
      return op === '<' ? v < days : op === '<=' ? v <= days : op === '>' ? v > days : op === '>=' ? v >= days : op === '==' ? v === days : v !== days;
    };
    fc.assert(
      fc.property(fc.constantFrom(...ops), fc.oneof(fc.double({ min: -400, max: 400, noNaN: true }), fc.integer({ min: -400 * 24, max: 400 * 24 }).map((h) => h / 24)), (op, days) => {
        const offsets = flipOffsets(op, days) as number[];
        expect(offsets).toBeDefined();
        // Around the threshold, every change of value (between x − 1 and x) is at an offset …
        const c = Math.round(days * DAY);
        for (const o of offsets) expect(Math.abs(o - c)).toBeLessThanOrEqual(2);
        for (let x = c - 4; x <= c + 4; x++) if (holds(op, x, days) !== holds(op, x - 1, days)) expect(offsets, `${op} ${days} changes at ${x}`).toContain(x);
        // … and an ordering comparison does change at its offset (exactly one).
        if (op !== '==' && op !== '!=') expect(offsets.map((o) => holds(op, o, days) !== holds(op, o - 1, days))).toEqual([true]);
      }),
      { numRuns: 500 },
    );
    expect(flipOffsets('>', 1e9)).toBeUndefined();
    expect(flipOffsets('>', 45)).toEqual([45 * DAY + 1]);
    expect(flipOffsets('==', 45)).toEqual([45 * DAY, 45 * DAY + 1]);
  });

  it('local hour and weekday boundaries follow the customer zone and its DST switches', () => {
    const plan = timePlan(ALL);
    // Asia/Kolkata is UTC+5:30: the next local hour starts at a half hour UTC.
    const t = Date.parse('2026-07-01T12:10:00Z');
    expect(iso(nextChange(plan, ALL, row({}, { timezone: 'Asia/Kolkata' }), t) as number)).toBe('2026-07-01T12:30:00.000Z');
    expect(localHour('Asia/Kolkata', Date.parse('2026-07-01T12:30:00Z'))).toBe(18);
    // Without a valid trait zone, the workspace zone (Berlin, UTC+2 in July).
    expect(iso(nextChange(plan, ALL, row({}, { timezone: 'Not/AZone' }), t) as number)).toBe('2026-07-01T13:00:00.000Z');
    // New York springs forward at 07:00Z on 2026-03-08: every due until then is at most a quarter hour or an hour away, never past a change.
    let at = Date.parse('2026-03-08T05:20:00Z');
    const hours: number[] = [];
    while (at < Date.parse('2026-03-08T09:00:00Z')) {
      const next = nextChange(plan, ALL, row({}, { timezone: 'America/New_York' }), at) as number;
      expect(localHour('America/New_York', next - 1)).toBe(localHour('America/New_York', at));
      expect(localWeekday('America/New_York', next - 1)).toBe(localWeekday('America/New_York', at));
      at = next;
      hours.push(localHour('America/New_York', at));
    }
    expect(hours).toContain(3);
    expect(hours).not.toContain(2);
  });
});

describe.each(ENGINES)('the time sweep on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const ingest = (ws: string, model: WorkspaceModel, events: ProfileEvent[], now: number) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, now));
  const dueRows = async (ws: string) => (await t.store.db.selectFrom('segment_sweep').select(['customer_id', 'due_at']).where('workspace_id', '=', ws).orderBy('customer_id').execute()).map((r) => ({ customer: r.customer_id, due: iso(Number(r.due_at)) }));
  async function members(ws: string): Promise<string[]> {
    const rows = await t.store.db.selectFrom('segment_membership').select(['customer_id', 'segment']).where('workspace_id', '=', ws).orderBy('customer_id').orderBy('segment').execute();
    const stages = await t.store.db.selectFrom('customer_stage').select(['customer_id', 'lifecycle', 'stage']).where('workspace_id', '=', ws).orderBy('customer_id').orderBy('lifecycle').execute();
    return [...rows.map((r) => `${r.customer_id}:${r.segment}`), ...stages.map((s) => `${s.customer_id}:stage:${s.stage}`)];
  }
  async function historyCount(ws: string): Promise<number> {
    const a = await t.store.db.selectFrom('segment_history').select('id').where('workspace_id', '=', ws).execute();
    const b = await t.store.db.selectFrom('stage_history').select('id').where('workspace_id', '=', ws).execute();
    return a.length + b.length;
  }
  /** A sweeper that knows only this workspace (the database holds the other tests' workspaces too). */
  function sweeper(ws: string, model: WorkspaceModel, clock: VirtualClock, lines: unknown[] = []): SegmentSweeper {
    const log = { info: (obj: object, msg: string) => lines.push({ ...obj, msg }), error: (obj: object, msg: string) => lines.push({ ...obj, msg, level: 'error' }) };
    return new SegmentSweeper({ store: t.store, clock, log, model: async (id) => (id === ws ? model : undefined) });
  }

  it('a buyer leaves "ordered in the last 30 days" when the window empties, with no event; history says when; recompute agrees', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const clock = new VirtualClock(NOW);
    await ingest(ws, RECENT, [order(RECENT, 'a', 'm1', NOW)], NOW);
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['lifetime_buyers', 'recent_buyers']);
    expect((await getCustomerStages(t.store.db, ws, a)).map((s) => s.stage)).toEqual(['active']);
    // The order's day bucket leaves the 30-day window at midnight UTC, 30 days after that day began.
    const empties = Date.parse('2026-07-31T00:00:00.000Z');
    expect(await dueRows(ws)).toEqual([{ customer: a, due: iso(empties) }]);

    const lines: unknown[] = [];
    const s = sweeper(ws, RECENT, clock, lines);
    // Nothing is due yet: nothing happens.
    clock.set(empties - 1);
    expect((await s.runOnce()).evaluated).toBe(0);

    clock.set(NOW + 31 * DAY);
    const r = await s.runOnce();
    expect(r).toMatchObject({ workspaces: 1, evaluated: 1, entered: 0, exited: 1, stageMoves: 1 });
    expect(lines).toEqual([expect.objectContaining({ msg: 'segment sweep', exited: 1, stageMoves: 1 })]);
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['lifetime_buyers']);
    // Dated when the window emptied, not when the sweep ran.
    expect((await getSegmentHistory(t.store.db, ws, a)).at(-1)).toEqual({ segment: 'recent_buyers', change: 'exited', at: iso(empties) });
    // The stage that reads the segment moved with it, at the same instant.
    expect(await getCustomerStages(t.store.db, ws, a)).toEqual([{ lifecycle: '', stage: 'lapsed', enteredAt: iso(empties) }]);
    expect((await getStageHistory(t.store.db, ws, a)).at(-1)).toEqual({ lifecycle: '', from: 'active', to: 'lapsed', at: iso(empties) });
    // Nothing can change with time any more: no row; a second sweep finds nothing.
    expect(await dueRows(ws)).toEqual([]);
    expect((await s.runOnce()).evaluated).toBe(0);

    const before = { members: await members(ws), history: await historyCount(ws) };
    await recomputeSegments(t.store, ws, RECENT, clock.now());
    expect({ members: await members(ws), history: await historyCount(ws) }).toEqual(before);
  });

  it('customers whose conditions are time-independent get no row and are never swept', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await ingest(ws, TIMELESS, [order(TIMELESS, 'a', 'm1', NOW, { category: 'shoes' }), order(TIMELESS, 'b', 'm2', NOW)], NOW);
    expect(await members(ws)).toHaveLength(3);
    expect(await dueRows(ws)).toEqual([]);
    await recomputeSegments(t.store, ws, TIMELESS, NOW + 90 * DAY);
    expect(await dueRows(ws)).toEqual([]);
    // The time-dependent model, run over the same workspace (counters rebuilt first), schedules the buyers.
    await recomputeComputedTraits(t.store, ws, WINDOW, NOW);
    await recomputeSegments(t.store, ws, WINDOW, NOW);
    expect(await dueRows(ws)).toHaveLength(2);
  });

  it('a late sweep replays the due instants in order (two exits, each at its own time)', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const clock = new VirtualClock(NOW);
    // Orders 3 days apart: "frequent" (2 in 7 days) ends when the first leaves the 7-day window,
    // "recent_buyers" when the second leaves the 30-day one.
    await ingest(ws, WINDOW, [order(WINDOW, 'a', 'm1', NOW - 3 * DAY), order(WINDOW, 'a', 'm2', NOW)], NOW);
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['frequent', 'lifetime_buyers', 'recent_buyers']);
    clock.set(NOW + 45 * DAY);
    const r = await sweeper(ws, WINDOW, clock).runOnce();
    // Due instants: the first order's 7d, the second's 7d, the first's 30d, the second's 30d.
    expect(r.evaluated).toBe(4);
    const exits = (await getSegmentHistory(t.store.db, ws, a)).filter((h) => h.change === 'exited');
    expect(exits).toEqual([
      { segment: 'frequent', change: 'exited', at: '2026-07-05T00:00:00.000Z' },
      { segment: 'recent_buyers', change: 'exited', at: '2026-07-31T00:00:00.000Z' },
    ]);
    expect(await dueRows(ws)).toEqual([]);
  });

  it('days_since crossing a threshold is due at the exact millisecond, not every hour; a recompute leaves the due alone', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const ts = Date.parse('2026-07-01T10:17:23.456Z');
    const clock = new VirtualClock(NOW);
    await ingest(ws, LAPSING, [order(LAPSING, 'a', 'm1', ts)], NOW);
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    // `> 14` holds from 1 ms after 14 days: that is the only instant it can flip.
    expect(await dueRows(ws)).toEqual([{ customer: a, due: iso(ts + 14 * DAY + 1) }]);
    // A recompute days later (nothing changed) does not move it.
    await recomputeSegments(t.store, ws, LAPSING, NOW + 3 * DAY + 17 * MINUTE);
    expect(await dueRows(ws)).toEqual([{ customer: a, due: iso(ts + 14 * DAY + 1) }]);
    const s = sweeper(ws, LAPSING, clock);
    clock.set(ts + 14 * DAY);
    expect((await s.runOnce()).evaluated).toBe(0);
    expect(await getSegmentMemberships(t.store.db, ws, a)).toEqual([]);
    clock.set(ts + 14 * DAY + 5 * MINUTE);
    expect((await s.runOnce()).evaluated).toBe(1);
    expect(await getSegmentHistory(t.store.db, ws, a)).toEqual([{ segment: 'lapsing', change: 'entered', at: iso(ts + 14 * DAY + 1) }]);
    // In the segment for good (until an order): no row.
    expect(await dueRows(ws)).toEqual([]);
    // A new order ends it in real time and schedules its own 14 days.
    await ingest(ws, LAPSING, [order(LAPSING, 'a', 'm2', clock.now())], clock.now());
    expect(await getSegmentMemberships(t.store.db, ws, a)).toEqual([]);
    expect((await dueRows(ws))[0]?.due).toBe(iso(clock.now() + 14 * DAY + 1));
  });

  it('runs periodically when started, and stops', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const clock = new VirtualClock(NOW);
    await ingest(ws, WINDOW, [order(WINDOW, 'p', 'm1', NOW)], NOW);
    clock.set(NOW + 60 * DAY);
    const lines: { msg: string }[] = [];
    let swept!: () => void;
    const logged = new Promise<void>((r) => (swept = r));
    const log = {
      info: (obj: object, msg: string) => {
        lines.push({ ...obj, msg });
        if (msg === 'segment sweep') swept();
      },
      error: (obj: object, msg: string) => lines.push({ ...obj, msg }),
    };
    const s = new SegmentSweeper({ store: t.store, clock, log, model: async (id) => (id === ws ? WINDOW : undefined) }, { intervalMs: 5 });
    s.start();
    // The first run starts at once and logs what it changed (bounded wait: the test fails, never hangs).
    const limit = new Promise<void>((r) => setTimeout(r, 20_000).unref());
    await Promise.race([logged, limit]);
    await s.stop();
    expect(lines.map((l) => l.msg)).toContain('segment sweep');
    expect(await dueRows(ws)).toEqual([]);
    // Stopped: no further run starts.
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(lines.length).toBe(count);
  });

  it('a workspace whose model is unknown is left alone', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await ingest(ws, RECENT, [order(RECENT, 'q', 'm1', NOW)], NOW);
    const clock = new VirtualClock(NOW + 60 * DAY);
    const r = await new SegmentSweeper({ store: t.store, clock, log: { info: () => undefined, error: () => undefined }, model: async () => undefined }).runOnce();
    expect(r.evaluated).toBe(0);
    expect(await dueRows(ws)).toHaveLength(1);
    // sweepWorkspace on its own, with a small batch: two customers, two batches.
    await ingest(ws, RECENT, [order(RECENT, 'q2', 'm2', NOW)], NOW);
    expect(await sweepWorkspace(t.store, ws, RECENT, clock, { batchSize: 1 })).toMatchObject({ evaluated: 2, exited: 2 });
  });

  it('a workspace whose sweep fails is logged and skipped; the others are still swept', async () => {
    const bad = `ws_a${uuidv7().slice(-11)}`;
    const good = `ws_b${uuidv7().slice(-11)}`;
    await ingest(bad, RECENT, [order(RECENT, 'x', 'm1', NOW)], NOW);
    await ingest(good, RECENT, [order(RECENT, 'y', 'm1', NOW)], NOW);
    const clock = new VirtualClock(NOW + 31 * DAY);
    const lines: { msg: string; workspaceId?: string }[] = [];
    const log = { info: (obj: object, msg: string) => lines.push({ ...obj, msg }), error: (obj: object, msg: string) => lines.push({ ...obj, msg }) };
    // A model that cannot be evaluated stands for any failure inside one workspace's sweep.
    const broken = { ...RECENT, segments: null } as unknown as WorkspaceModel;
    const s = new SegmentSweeper({ store: t.store, clock, log, model: async (id) => (id === bad ? broken : id === good ? RECENT : undefined) });
    const r = await s.runOnce();
    expect(lines.some((l) => l.msg === 'segment sweep of a workspace failed' && l.workspaceId === bad)).toBe(true);
    expect(r.exited).toBeGreaterThanOrEqual(1);
    const y = (await findCustomerId(t.store.db, good, { kind: 'user_id', value: 'y' })) as string;
    expect((await getSegmentMemberships(t.store.db, good, y)).map((m) => m.segment)).not.toContain('recent_buyers');
    expect(await dueRows(bad)).toHaveLength(1);
  });

  it('days_since thresholds: after sweeping at any time T, memberships equal a recompute at T (property)', async () => {
    // Mostly near the thresholds off the hour grid (1.3 and 2.71 days), where an hourly check would be late.
    const near = fc.tuple(fc.constantFrom(1.3 * DAY, 2.71 * DAY), fc.integer({ min: -90 * MINUTE, max: 90 * MINUTE })).map(([d, off]) => d + off);
    const eventArb = fc.record({ user: fc.constantFrom('a', 'b'), age: fc.oneof({ arbitrary: near, weight: 3 }, { arbitrary: ageArb, weight: 1 }), viewed: fc.boolean() });
    // Steps of a few minutes to a few hours, so sweeps land between the hour grid and the thresholds.
    const stepArb = fc.record({
      delayMinutes: fc.integer({ min: 0, max: 6 * 60 }),
      extraMs: fc.constantFrom(0, 1),
      batch: fc.option(fc.array(eventArb, { minLength: 1, maxLength: 2 }), { freq: 4, nil: undefined }),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 4 }), fc.array(stepArb, { minLength: 1, maxLength: 8 }), async (first, steps) => {
        const ws = `ws_${uuidv7().slice(-12)}`;
        const clock = new VirtualClock(NOW);
        const s = sweeper(ws, THRESHOLDS, clock);
        const toEvents = (batch: typeof first, now: number): ProfileEvent[] => batch.map((e) => order(THRESHOLDS, e.user, `d${n++}`, now - e.age, {}, e.viewed ? 'Product Viewed' : 'Order Completed'));
        await ingest(ws, THRESHOLDS, toEvents(first, NOW), NOW);
        for (const step of steps) {
          clock.advance(step.delayMinutes * MINUTE + step.extraMs);
          if (step.batch !== undefined) {
            await ingest(ws, THRESHOLDS, toEvents(step.batch, clock.now()), clock.now());
            continue;
          }
          await s.runOnce();
          const swept = { members: await members(ws), history: await historyCount(ws) };
          expect((await dueRows(ws)).every((d) => Date.parse(d.due) > clock.now())).toBe(true);
          await recomputeSegments(t.store, ws, THRESHOLDS, clock.now());
          expect({ members: await members(ws), history: await historyCount(ws) }).toEqual(swept);
        }
      }),
      { numRuns: engine.name === 'postgres' ? 25 : 40 },
    );
  }, 120_000);

  it('after sweeping at any time T, memberships and stages equal a recompute at T (property)', async () => {
    const users = ['a', 'b', 'c'];
    const zones = ['America/New_York', 'Asia/Kolkata', 'Europe/Berlin'];
    const eventArb = fc.record({
      user: fc.constantFrom(...users),
      ageMinutes: fc.oneof(fc.integer({ min: 0, max: 40 * 24 * 60 }), ageArb.map((ms) => Math.round(ms / MINUTE))),
      shoes: fc.boolean(),
      viewed: fc.boolean(),
      revenue: fc.integer({ min: 0, max: 90 }),
      zone: fc.option(fc.constantFrom(...zones), { freq: 3, nil: undefined }),
    });
    // Steps: ingest a batch, or sweep; each after a delay (some on whole hours, some 1 ms past).
    const stepArb = fc.record({
      // Mostly short hops (changes cluster at bucket and hour boundaries), sometimes weeks.
      delayHours: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 6 }), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 20 * 24 }), weight: 1 }),
      extraMs: fc.constantFrom(0, 1, 17 * MINUTE + 3),
      batch: fc.option(fc.array(eventArb, { minLength: 1, maxLength: 4 }), { freq: 2, nil: undefined }),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 5 }), fc.array(stepArb, { minLength: 1, maxLength: 8 }), async (first, steps) => {
        const ws = `ws_${uuidv7().slice(-12)}`;
        const clock = new VirtualClock(NOW);
        const s = sweeper(ws, ALL, clock);
        const toEvents = (batch: typeof first, now: number): ProfileEvent[] =>
          batch.map((e) => {
            const id = `p${n++}`;
            if (e.zone !== undefined && e.ageMinutes % 2 === 0) return identify(ALL, e.user, id, now - e.ageMinutes * MINUTE, { timezone: e.zone });
            return order(ALL, e.user, id, now - e.ageMinutes * MINUTE, { category: e.shoes ? 'shoes' : 'hats', revenue: e.revenue }, e.viewed ? 'Product Viewed' : 'Order Completed');
          });
        await ingest(ws, ALL, toEvents(first, NOW), NOW);
        for (const step of steps) {
          clock.advance(step.delayHours * HOUR + step.extraMs);
          if (step.batch !== undefined) {
            await ingest(ws, ALL, toEvents(step.batch, clock.now()), clock.now());
            continue;
          }
          await s.runOnce();
          const swept = { members: await members(ws), history: await historyCount(ws) };
          // Every due row is in the future.
          expect((await dueRows(ws)).every((d) => Date.parse(d.due) > clock.now())).toBe(true);
          await recomputeSegments(t.store, ws, ALL, clock.now());
          // The recompute at T finds nothing to change.
          expect({ members: await members(ws), history: await historyCount(ws) }).toEqual(swept);
        }
      }),
      { numRuns: engine.name === 'postgres' ? 12 : 30 },
    );
  }, 120_000);
});

describe.each(ENGINES)('the runtime sweeper on $name', (engine) => {
  let app: TestApp;
  const clock = new VirtualClock(NOW);
  beforeAll(async () => {
    // The periodic timer is off; the test drives rt.sweeper itself.
    app = await startTestApp(engine, { blueprint: RECENT_YAML, clock, env: { CAIRN_SWEEP_INTERVAL: '0' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('an order tracked over HTTP ages out of the segment when the clock passes the window', async () => {
    const post = await app.app.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basic(app.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ userId: 'h1', event: 'Order Completed', messageId: 'h1-1', timestamp: iso(NOW) }) });
    expect(post.statusCode).toBe(200);
    const segments = async () => ((await app.app.inject({ method: 'GET', url: '/v1/profiles/user_id:h1', headers: { authorization: `Bearer ${app.secretKey}` } })).json() as { segments: { segment: string }[] }).segments.map((m) => m.segment);
    expect(await segments()).toEqual(['lifetime_buyers', 'recent_buyers']);
    clock.set(NOW + 40 * DAY);
    expect(await app.rt.sweeper.runOnce()).toMatchObject({ exited: 1, stageMoves: 1 });
    expect(await segments()).toEqual(['lifetime_buyers']);
  });
});
