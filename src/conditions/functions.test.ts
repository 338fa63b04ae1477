import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DAY } from '../core/index.js';
import { compileCondition, counterSpec, createConditionFunctions, localHour, localWeekday, type CompiledCondition, type EvalInput } from './index.js';
import { DECL, NOW, makeInput } from './fixtures.js';

/** The key of the only counter a condition declares. */
function onlyKey(c: CompiledCondition): string {
  expect(c.counters).toHaveLength(1);
  return (c.counters[0] as { key: string }).key;
}

function run(source: string, input: EvalInput): { result: boolean; error?: string } {
  const c = compileCondition(source, DECL);
  const ex = c.explain(input);
  expect(c.evaluate(input)).toBe(ex.result);
  return ex.error === undefined ? { result: ex.result } : { result: ex.result, error: ex.error };
}

describe('count()', () => {
  test('reads its windowed counter as an int', () => {
    const c = compileCondition('count("Order Completed", "60d") >= 3', DECL);
    expect(c.counters[0]).toMatchObject({ kind: 'count', event: 'Order Completed', window: '60d', windowMs: 60 * DAY });
    const key = onlyKey(c);
    expect(c.evaluate(makeInput({ counters: { [key]: 3 } }))).toBe(true);
    expect(c.evaluate(makeInput({ counters: { [key]: 2 } }))).toBe(false);
    // The int type shows: adding a double is a type error at compile time.
    expect(() => compileCondition('count("Order Completed", "60d") + 0.5 > 1.0', DECL)).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_CONDITION_TYPE' }));
  });

  test('with a property filter declares the filter; absent counter reads 0', () => {
    const c = compileCondition('count("Product Viewed", "30d", {"category": "shoes"}) == 0', DECL);
    expect(c.counters[0]).toMatchObject({ kind: 'count', event: 'Product Viewed', windowMs: 30 * DAY, where: { category: ['shoes'] } });
    expect(c.evaluate(makeInput())).toBe(true);
  });

  test('lifetime count has no window and does not depend on time', () => {
    const c = compileCondition('count("Signed Up") > 0', DECL);
    expect(c.counters[0]).not.toHaveProperty('windowMs');
    expect(c.references.dependsOnTime).toBe(false);
    expect(compileCondition('count("Signed Up", "7d") > 0', DECL).references.dependsOnTime).toBe(true);
  });

  test('one counter per distinct aggregate, however it is spelled', () => {
    const c = compileCondition('count("Product Viewed", "1w", {"category": ["a", "b"], "sku": 1}) > 1 || count("Product Viewed", "7d", {"sku": 1, "category": ["b", "a"]}) > 5', DECL);
    expect(c.counters).toHaveLength(1);
  });
});

describe('sum(), last(), exists(), days_since()', () => {
  test('sum is a double; absent reads 0.0', () => {
    const c = compileCondition('sum("Order Completed", "total", "90d") > 100.0', DECL);
    expect(c.counters[0]).toMatchObject({ kind: 'sum', property: 'total', windowMs: 90 * DAY });
    const key = onlyKey(c);
    expect(c.evaluate(makeInput({ counters: { [key]: 150.5 } }))).toBe(true);
    expect(c.evaluate(makeInput())).toBe(false);
  });

  test('last() gives the newest event\'s properties, {} when never', () => {
    const c = compileCondition('last("Product Viewed").category == "shoes"', DECL);
    const key = onlyKey(c);
    expect(c.counters[0]).toMatchObject({ kind: 'last_event', event: 'Product Viewed' });
    expect(c.evaluate(makeInput({ counters: { [key]: { ts: NOW - 1000, properties: { category: 'shoes' } } } }))).toBe(true);
    const never = run('last("Product Viewed").category == "shoes"', makeInput());
    expect(never.result).toBe(false);
    expect(never.error).toMatch(/No such key/);
    expect(run('!("category" in last("Product Viewed"))', makeInput()).result).toBe(true);
  });

  test('exists() is whether the event ever happened', () => {
    const c = compileCondition('exists("Signed Up")', DECL);
    const key = onlyKey(c);
    expect(c.counters[0]).toMatchObject({ kind: 'last_seen', event: 'Signed Up' });
    expect(c.evaluate(makeInput({ counters: { [key]: NOW - DAY } }))).toBe(true);
    expect(c.evaluate(makeInput())).toBe(false);
  });

  test('days_since(event) is fractional days, +Infinity when never', () => {
    const c = compileCondition('days_since("Order Completed") > 30', DECL);
    const key = onlyKey(c);
    expect(c.evaluate(makeInput({ counters: { [key]: NOW - 31 * DAY } }))).toBe(true);
    expect(c.evaluate(makeInput({ counters: { [key]: NOW - 29.5 * DAY } }))).toBe(false);
    expect(c.evaluate(makeInput())).toBe(true);
    expect(compileCondition('days_since("Order Completed") < 7', DECL).evaluate(makeInput())).toBe(false);
    const steps = c.explain(makeInput({ counters: { [key]: NOW - 1.5 * DAY } })).steps;
    expect(steps[0]).toMatchObject({ text: 'days_since("Order Completed")', value: 1.5 });
  });

  test('days_since(timestamp) measures tenure from profile.first_seen', () => {
    const c = compileCondition('days_since(profile.first_seen) > 90', DECL);
    expect(c.counters).toHaveLength(0);
    expect(c.evaluate(makeInput({ profile: { id: 'a', first_seen: NOW - 91 * DAY } }))).toBe(true);
    expect(c.evaluate(makeInput({ profile: { id: 'a', first_seen: new Date(NOW - 10 * DAY).toISOString() } }))).toBe(false);
    // No first_seen: the select fails, the condition is false with the reason.
    expect(run('days_since(profile.first_seen) > 90', makeInput()).error).toMatch(/first_seen/);
  });
});

describe('opened(), in_segment(), stage(), consent(), reachable(), visits(), now()', () => {
  test('opened(n, m) counts opens among the last m messages', () => {
    const input = (opened: boolean[] | undefined): EvalInput => makeInput(opened === undefined ? {} : { messages: { opened } });
    expect(run('opened(2, 4)', input([true, false, false, true, true])).result).toBe(true);
    expect(run('opened(2, 4)', input([true, false, false, false, true])).result).toBe(false);
    expect(run('opened(2, 4)', input([true, true])).result).toBe(true);
    expect(run('opened(1, 4)', input(undefined)).result).toBe(false);
    expect(run('opened(0, 4)', input([])).result).toBe(true);
  });

  test('in_segment and stage read the input', () => {
    const input = makeInput({ segments: new Set(['big_spenders']), stage: 'Active' });
    expect(run('in_segment("big_spenders") && !in_segment("churn_risk")', input).result).toBe(true);
    expect(run('stage() == "Active"', input).result).toBe(true);
    expect(run('stage() == ""', makeInput()).result).toBe(true);
  });

  test('consent and reachable pass purpose and channel through, channel may be an expression', () => {
    const seen: string[] = [];
    const input = makeInput({
      context: { channel: 'sms' },
      consent: (p, ch) => (seen.push(`${p}/${ch}`), p === 'marketing' && ch === 'sms'),
      reachable: (ch) => ch === 'email',
    });
    expect(run('consent("marketing", context.channel) && reachable("email")', input).result).toBe(true);
    expect(run('consent("marketing", "email")', input).result).toBe(false);
    // run() evaluates twice (evaluate and explain), hence the set.
    expect([...new Set(seen)]).toEqual(['marketing/sms', 'marketing/email']);
  });

  test('visits() is context.visits or 0', () => {
    expect(run('visits() == 3', makeInput({ context: { visits: 3 } })).result).toBe(true);
    expect(run('visits() == 0', makeInput({ context: { visits: 'many' } })).result).toBe(true);
    expect(run('visits() == 0', makeInput()).result).toBe(true);
  });

  test('now() is the input time', () => {
    expect(run('now() > timestamp("2026-03-10T15:29:59Z") && now() < timestamp("2026-03-10T15:30:01Z")', makeInput()).result).toBe(true);
  });
});

describe('local_hour() and local_weekday()', () => {
  test('use traits.timezone when valid, else the workspace zone', () => {
    // 2026-03-10T15:30Z is a Tuesday; New York is on daylight time (UTC-4) since 8 March.
    expect(run('local_hour() == 11 && local_weekday() == 2', makeInput({ traits: { timezone: 'America/New_York' } })).result).toBe(true);
    expect(run('local_hour() == 5 && local_weekday() == 3', makeInput({ traits: { timezone: 'Pacific/Kiritimati' } })).result).toBe(true);
    expect(run('local_hour() == 16', makeInput({ traits: { timezone: 'Not/AZone' }, timezone: 'Europe/Berlin' })).result).toBe(true);
    expect(run('local_hour() == 15', makeInput({ timezone: 'garbage' })).result).toBe(true);
  });

  test('agree with Intl for any instant and zone (property)', () => {
    const zones = ['America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Europe/London', 'Pacific/Chatham', 'America/St_Johns', 'UTC'];
    fc.assert(
      fc.property(fc.integer({ min: Date.parse('1990-01-01'), max: Date.parse('2060-01-01') }), fc.constantFrom(...zones), (at, zone) => {
        const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', hour: 'numeric', weekday: 'short' }).formatToParts(at);
        const hour = Number(parts.find((p) => p.type === 'hour')?.value);
        const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.find((p) => p.type === 'weekday')?.value ?? '');
        expect(localHour(zone, at)).toBe(hour);
        expect(localWeekday(zone, at)).toBe(weekday);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('counters', () => {
  test('keys are stable under spelling of windows and filters (property)', () => {
    const units: [string, number][] = [
      ['d', 1],
      ['h', 24],
      ['m', 24 * 60],
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom(...units),
        fc.constantFrom(...units),
        fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.uniqueArray(fc.constantFrom('x', 'y', 'z'), { minLength: 1 })),
        (days, [u1, f1], [u2, f2], where) => {
          const reversed = Object.fromEntries(Object.entries(where).reverse().map(([k, v]) => [k, [...v].reverse()]));
          const a = counterSpec({ kind: 'count', event: 'E', window: `${days * f1}${u1}`, where });
          const b = counterSpec({ kind: 'count', event: 'E', window: `${days * f2}${u2}`, where: reversed });
          expect(a.key).toBe(b.key);
          expect(counterSpec({ kind: 'sum', event: 'E', window: `${days}d`, where }).key).not.toBe(counterSpec({ kind: 'count', event: 'E', window: `${days}d`, where }).key);
        },
      ),
    );
  });
});

describe('the function registry', () => {
  test('a third party registers a function the same way the built-ins are registered', () => {
    const fns = createConditionFunctions().register({
      name: 'tier_rank',
      description: 'Rank of the loyalty tier.',
      overloads: [{ params: [], returns: 'int', bind: () => (input) => BigInt(['bronze', 'silver', 'gold'].indexOf(String(input.traits.plan)) + 1) }],
    });
    const c = compileCondition('tier_rank() >= 2', DECL, { functions: fns });
    expect(c.compiled).toBe(true);
    expect(c.evaluate(makeInput({ traits: { plan: 'gold' } }))).toBe(true);
    expect(c.evaluate(makeInput({ traits: { plan: 'bronze' } }))).toBe(false);
    // Not visible to compilers with the default registry.
    expect(() => compileCondition('tier_rank() >= 2', DECL)).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_CONDITION_UNKNOWN' }));
    // Frozen once a compiler uses it.
    expect(() => fns.register({ name: 'late', description: '', overloads: [{ params: [], returns: 'bool', bind: () => () => true }] })).toThrow(/frozen/);
  });

  test('a function with literal parameters declares counters through its bind site', () => {
    const fns = createConditionFunctions().register({
      name: 'bought_twice',
      description: 'At least two orders of the category in 30 days.',
      overloads: [
        {
          params: [{ name: 'category', type: 'string', literal: 'required' }],
          returns: 'bool',
          timeDependent: true,
          bind: (site) => {
            const key = site.counter({ kind: 'count', event: 'Order Completed', window: '30d', where: { category: site.literals[0] } });
            return (input) => Number(input.counter(key) ?? 0) >= 2;
          },
        },
      ],
    });
    const c = compileCondition('bought_twice("shoes")', DECL, { functions: fns });
    expect(c.counters[0]).toMatchObject({ kind: 'count', where: { category: ['shoes'] } });
    expect(c.evaluate(makeInput({ counters: { [onlyKey(c)]: 2 } }))).toBe(true);
    expect(() => compileCondition('bought_twice(traits.plan)', DECL, { functions: fns })).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_CONDITION_TYPE', offset: 13 }));
  });

  test('bad definitions are refused with every reason', () => {
    expect(() => createConditionFunctions().register({ name: 'size', description: '', overloads: [] })).toThrow(/taken.*no overloads/);
    expect(() => createConditionFunctions().register({ name: 'count', description: '', overloads: [{ params: [], returns: 'int', bind: () => () => 0n }] })).toThrow(/already registered/);
    expect(() => createConditionFunctions().register({ name: 'f', description: '', overloads: [{ params: [{ name: 'x', type: 'list<dyn>', literal: 'required' }], returns: 'bool', bind: () => () => true }] })).toThrow(
      /literal parameter/,
    );
  });

  test('a function that throws makes the call an error, absorbed like any other', () => {
    const fns = createConditionFunctions().register({
      name: 'boom',
      description: '',
      overloads: [{ params: [], returns: 'bool', bind: () => () => {
        throw new Error('down');
      } }],
    });
    const c = compileCondition('boom() || true', DECL, { functions: fns });
    expect(c.evaluate(makeInput())).toBe(true);
    const ex = compileCondition('boom()', DECL, { functions: fns }).explain(makeInput());
    expect(ex).toMatchObject({ result: false, error: 'boom(): down' });
  });
});
