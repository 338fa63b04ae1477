import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ConditionError, createConditionCompiler, type EvalInput } from './index.js';
import { DECL, NOW } from './fixtures.js';

/**
 * Differential test: random conditions over the constructs conditions use, on random profiles,
 * evaluated by the compiled closures and by cel-js's own interpreter (with the same behavioural
 * functions registered as cel-js functions). They must agree on the result and on whether the
 * evaluation failed. DIFF_RUNS=50000 runs it longer.
 */

const compiler = createConditionCompiler(DECL);

type T = 'bool' | 'int' | 'double' | 'string' | 'dyn' | 'list' | 'map';

const INTS = ['0', '1', '2', '3', '-1', '30', '100', '9223372036854775807', '-9223372036854775808'];
const DOUBLES = ['0.0', '1.5', '-2.5', '3.0', '30.0', '1e300', '0.1'];
const STRINGS = ['""', '"a"', '"plus"', '"Plus"', '"north"', '"shoes"', '"é"', '"ab"', '"Active"', '"x.*"'];

const pick = (xs: readonly string[]): fc.Arbitrary<string> => fc.constantFrom(...xs);

const atoms: Record<T, readonly string[]> = {
  int: [
    ...INTS,
    'traits.age',
    'computed.orders_60d',
    'count("Order Completed", "60d")',
    'count("Product Viewed", "30d", {"category": "shoes"})',
    'count("Product Viewed", "30d", {"category": ["shoes", "boots"], "price": 10})',
    'count("Email Opened")',
    'visits()',
    'local_hour()',
    'local_weekday()',
    'size(traits.tags)',
    'size(traits.plan)',
  ],
  double: [
    ...DOUBLES,
    'traits.score',
    'sum("Order Completed", "total", "90d")',
    'sum("Order Completed", "total")',
    'days_since("Order Completed")',
    'days_since(profile.first_seen)',
    'days_since(traits.birthday)',
  ],
  string: [...STRINGS, 'traits.plan', 'traits.region', 'stage()', 'event.name', 'profile.id', 'traits.timezone'],
  dyn: [
    'context.channel',
    'context.visits',
    'context.location.country',
    'context.campaign.source',
    'traits.extra',
    'traits.address.city',
    'traits.address.zip',
    'computed.last_category',
    'last("Order Completed").category',
    'last("Product Viewed").price',
    'event.properties.category',
    'event.properties.total',
    'traits.tags[0]',
    'context.x',
  ],
  list: ['traits.tags', '["a", "b"]', '[1, 2, 3]', '["north", "south", 1]', '[]', 'context.tags'],
  map: ['traits.address', 'context.location', 'last("Product Viewed")', 'event.properties', '{}', '{"a": 1, "b": "x"}'],
  bool: [
    'true',
    'false',
    'traits.vip',
    'in_segment("big_spenders")',
    'in_segment("churn_risk")',
    'consent("marketing", "email")',
    'consent("service", context.channel)',
    'reachable("sms")',
    'reachable(context.channel)',
    'exists("Signed Up")',
    'opened(2, 4)',
    'opened(1, 1)',
    'has(traits.plan)',
    'has(traits.address.city)',
    'has(context.location.country)',
    'has(event.name)',
    'has(event.properties.category)',
    'has(computed.orders_60d)',
  ],
};

const memo = new Map<string, fc.Arbitrary<string>>();

function gen(t: T, depth: number): fc.Arbitrary<string> {
  const key = `${t}:${depth}`;
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  const atom = pick(atoms[t]);
  if (depth === 0) {
    memo.set(key, atom);
    return atom;
  }
  const d = depth - 1;
  const g = (x: T): fc.Arbitrary<string> => gen(x, d);
  const bin = (a: fc.Arbitrary<string>, ops: readonly string[], b: fc.Arbitrary<string>): fc.Arbitrary<string> =>
    fc.tuple(a, pick(ops), b).map(([x, op, y]) => `${x} ${op} ${y}`);
  const paren = (a: fc.Arbitrary<string>): fc.Arbitrary<string> => a.map((x) => `(${x})`);
  const ternary = (x: T): fc.Arbitrary<string> => fc.tuple(g('bool'), g(x), g(x)).map(([c, a, b]) => `(${c} ? ${a} : ${b})`);
  const number = fc.oneof(g('int'), g('double'));
  const anything = fc.oneof(g('int'), g('double'), g('string'), g('dyn'), g('bool'), g('list'));
  const pred = fc.oneof(
    fc.tuple(pick(['==', '!=']), fc.oneof(pick(INTS), pick(STRINGS), pick(DOUBLES), pick(['true', 'null']))).map(([op, v]) => `x ${op} ${v}`),
    fc.tuple(pick(['<', '>=']), fc.oneof(pick(INTS), pick(DOUBLES))).map(([op, v]) => `x ${op} ${v}`),
    pick(['x', 'string(x).startsWith("a")', 'x in ["a", 1]', 'has(x.a)', 'size(x) > 0']),
    g('bool'),
  );
  let arb: fc.Arbitrary<string>;
  switch (t) {
    case 'bool':
      arb = fc.oneof(
        { weight: 2, arbitrary: atom },
        { weight: 3, arbitrary: bin(g('bool'), ['&&', '||'], g('bool')) },
        { weight: 1, arbitrary: g('bool').map((x) => `!${x}`) },
        { weight: 1, arbitrary: paren(bin(g('bool'), ['&&', '||'], g('bool'))) },
        { weight: 1, arbitrary: ternary('bool') },
        { weight: 3, arbitrary: bin(number, ['<', '<=', '>', '>=', '==', '!='], number) },
        { weight: 2, arbitrary: bin(g('string'), ['<', '==', '!=', '>='], g('string')) },
        { weight: 2, arbitrary: bin(g('dyn'), ['==', '!=', '<', '>'], anything) },
        { weight: 1, arbitrary: bin(anything, ['==', '!='], g('dyn')) },
        { weight: 2, arbitrary: bin(g('int'), ['==', '!=', 'in'], fc.oneof(g('dyn'), pick(['context.tags', 'traits.tags']))) },
        { weight: 2, arbitrary: bin(fc.oneof(g('string'), g('int'), g('dyn')), ['in'], g('list')) },
        { weight: 1, arbitrary: bin(g('string'), ['in'], pick(['["plus", "basic"]', '["north", "south"]', 'traits.address', 'context.location'])) },
        { weight: 1, arbitrary: bin(g('int'), ['in'], pick(['[1, 2, 3]', '[30, 31]'])) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(fc.oneof(g('string'), g('dyn')), pick(['startsWith', 'endsWith', 'contains', 'matches']), fc.oneof(pick(STRINGS), g('dyn')))
            .map(([s, m, a]) => `${s}.${m}(${a})`),
        },
        { weight: 2, arbitrary: fc.tuple(g('list'), pick(['exists', 'all', 'exists_one']), pred).map(([l, m, p]) => `${l}.${m}(x, ${p})`) },
        { weight: 1, arbitrary: bin(g('string'), ['=='], pick(['stage()', '"Active"'])) },
        { weight: 1, arbitrary: fc.tuple(pick(INTS.slice(0, 5)), pick(INTS.slice(0, 6))).map(([n, m]) => `opened(${n}, ${m})`) },
        // dyn where a bool is expected: non-bool operands of &&, ||, !, ?: at run time.
        { weight: 1, arbitrary: bin(g('dyn'), ['&&', '||'], g('bool')) },
        { weight: 1, arbitrary: fc.tuple(g('dyn'), g('bool'), g('bool')).map(([c, a, b]) => `(${c} ? ${a} : ${b})`) },
        { weight: 1, arbitrary: g('dyn').map((x) => `!${x}`) },
        { weight: 1, arbitrary: bin(fc.oneof(g('string'), g('dyn')), ['in'], g('map')) },
      );
      break;
    case 'int':
      arb = fc.oneof(
        { weight: 3, arbitrary: atom },
        { weight: 2, arbitrary: bin(g('int'), ['+', '-', '*', '/', '%'], g('int')) },
        { weight: 1, arbitrary: g('int').map((x) => `-(${x})`) },
        { weight: 1, arbitrary: ternary('int') },
        { weight: 1, arbitrary: fc.oneof(g('double'), g('string'), g('dyn')).map((x) => `int(${x})`) },
        { weight: 1, arbitrary: fc.oneof(g('list'), g('string'), g('dyn'), g('map')).map((x) => `size(${x})`) },
      );
      break;
    case 'double':
      arb = fc.oneof(
        { weight: 3, arbitrary: atom },
        { weight: 2, arbitrary: bin(g('double'), ['+', '-', '*', '/'], g('double')) },
        { weight: 1, arbitrary: ternary('double') },
        { weight: 1, arbitrary: fc.oneof(g('int'), g('string'), g('dyn')).map((x) => `double(${x})`) },
      );
      break;
    case 'string':
      arb = fc.oneof(
        { weight: 3, arbitrary: atom },
        { weight: 1, arbitrary: bin(g('string'), ['+'], g('string')) },
        { weight: 1, arbitrary: ternary('string') },
        { weight: 1, arbitrary: fc.oneof(g('int'), g('double'), g('dyn'), g('bool')).map((x) => `string(${x})`) },
        { weight: 1, arbitrary: fc.tuple(g('string'), pick(['lowerAscii', 'upperAscii', 'trim'])).map(([s, m]) => `${s}.${m}()`) },
      );
      break;
    case 'dyn':
      arb = fc.oneof(
        { weight: 4, arbitrary: atom },
        { weight: 1, arbitrary: anything.map((x) => `dyn(${x})`) },
        { weight: 1, arbitrary: fc.tuple(g('list'), g('int')).map(([l, i]) => `${l}[${i}]`) },
        { weight: 1, arbitrary: fc.tuple(fc.oneof(g('dyn'), g('map')), pick(['a', 'city', 'country'])).map(([x, f]) => `${x}.${f}`) },
        { weight: 1, arbitrary: fc.tuple(g('map'), fc.oneof(pick(STRINGS), g('dyn'))).map(([m, k]) => `${m}[${k}]`) },
        { weight: 1, arbitrary: bin(g('dyn'), ['+', '-', '*'], fc.oneof(g('dyn'), g('int'), g('double'))) },
        { weight: 1, arbitrary: ternary('dyn') },
      );
      break;
    case 'map':
      arb = fc.oneof(
        { weight: 3, arbitrary: atom },
        { weight: 1, arbitrary: fc.tuple(anything, g('string')).map(([a, b]) => `{"a": ${a}, "city": ${b}}`) },
        { weight: 1, arbitrary: fc.tuple(g('dyn')).map(([a]) => `{"country": ${a}}`) },
      );
      break;
    case 'list':
      arb = fc.oneof(
        { weight: 3, arbitrary: atom },
        { weight: 1, arbitrary: fc.tuple(g('list'), pred).map(([l, p]) => `${l}.filter(x, ${p})`) },
        { weight: 1, arbitrary: fc.tuple(g('list'), pick(['x', 'string(x)', 'x == 1'])).map(([l, f]) => `${l}.map(x, ${f})`) },
        { weight: 1, arbitrary: fc.tuple(g('int'), g('string'), g('dyn')).map(([a, b, c]) => `[${a}, ${b}, ${c}]`) },
      );
      break;
  }
  memo.set(key, arb);
  return arb;
}

// ---------------------------------------------------------------------------------------------
// Random profiles

const jsonScalar = fc.oneof(fc.constantFrom('a', 'plus', 'north', 'shoes', '', 'x', 'DE'), fc.integer({ min: -1, max: 3 }), fc.constantFrom(30, 100), fc.double({ noNaN: false }), fc.boolean(), fc.constant(null));
const jsonValue = fc.oneof(
  { weight: 4, arbitrary: jsonScalar },
  { weight: 1, arbitrary: fc.array(jsonScalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('a', 'city', 'country', 'zip'), jsonScalar, { maxKeys: 3 }) },
);
const maybe = <V>(a: fc.Arbitrary<V>): fc.Arbitrary<V | undefined> => fc.option(a, { nil: undefined, freq: 3 });
const ts = fc.oneof(fc.integer({ min: NOW - 400 * 86_400_000, max: NOW }), fc.constant('2025-12-24T10:00:00Z'), fc.constant('not a date'));

const inputArb: fc.Arbitrary<EvalInput> = fc
  .record({
    traits: fc.record(
      {
        plan: maybe(fc.oneof(fc.constantFrom('plus', 'basic', 'Plus', ''), jsonValue)),
        age: maybe(fc.oneof(fc.integer({ min: -5, max: 120 }), fc.constant(3.5), jsonValue)),
        score: maybe(fc.oneof(fc.double({ min: -100, max: 100, noNaN: true }), fc.integer({ min: 0, max: 50 }), jsonValue)),
        vip: maybe(fc.oneof(fc.boolean(), jsonValue)),
        tags: maybe(fc.oneof(fc.array(fc.oneof(fc.constantFrom('a', 'b', 'vip'), fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 5 }), jsonValue)),
        address: maybe(fc.oneof(fc.record({ city: maybe(fc.constantFrom('Berlin', 'a')), zip: maybe(fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constant('12345'))) }), jsonValue)),
        birthday: maybe(ts),
        extra: maybe(jsonValue),
        timezone: maybe(fc.constantFrom('America/New_York', 'Asia/Kolkata', 'Not/AZone', 'UTC')),
        region: maybe(fc.constantFrom('north', 'south', 'east')),
      },
      { requiredKeys: [] },
    ),
    computed: fc.record({ orders_60d: maybe(fc.oneof(fc.integer({ min: 0, max: 9 }), jsonValue)), last_category: maybe(jsonValue) }, { requiredKeys: [] }),
    context: fc.record(
      {
        channel: maybe(fc.oneof(fc.constantFrom('email', 'sms', 'web'), jsonValue)),
        visits: maybe(fc.oneof(fc.integer({ min: 0, max: 3 }), jsonValue)),
        location: maybe(fc.oneof(fc.record({ country: maybe(fc.constantFrom('DE', 'US')), region: maybe(fc.constant('BY')) }), jsonValue)),
        campaign: maybe(fc.record({ source: maybe(fc.constantFrom('google', 'newsletter')) })),
        tags: maybe(fc.array(jsonScalar, { maxLength: 3 })),
        x: maybe(jsonValue),
      },
      { requiredKeys: [] },
    ),
    event: maybe(
      fc.record({
        name: fc.oneof(fc.constantFrom('Order Completed', 'Product Viewed', 'plus'), fc.constant(null)),
        type: fc.constantFrom('track', 'page'),
        properties: maybe(fc.dictionary(fc.constantFrom('category', 'total', 'sku'), jsonScalar, { maxKeys: 3 })),
        timestamp: maybe(ts),
      }),
    ),
    firstSeen: maybe(ts),
    counts: fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.double({ min: 0, max: 500, noNaN: true })), { minLength: 8, maxLength: 8 }),
    lastEvent: maybe(fc.record({ ts: fc.integer({ min: NOW - 100 * 86_400_000, max: NOW }), properties: fc.dictionary(fc.constantFrom('category', 'price', 'total'), jsonScalar, { maxKeys: 3 }) })),
    lastSeen: maybe(fc.integer({ min: NOW - 100 * 86_400_000, max: NOW })),
    segments: fc.subarray(['big_spenders', 'churn_risk']),
    stage: fc.constantFrom(null, 'Active', 'Onboarding', 'Gone'),
    consents: fc.subarray(['marketing:email', 'service:sms', 'service:email', 'marketing:web']),
    reachable: fc.subarray(['email', 'sms', 'web']),
    opened: maybe(fc.array(fc.boolean(), { maxLength: 6 })),
    now: fc.integer({ min: NOW - 30 * 86_400_000, max: NOW }),
  })
  // Profile data is JSON (the store gives nothing else): no undefined members, no NaN.
  .map((raw) => JSON.parse(JSON.stringify(raw)) as typeof raw)
  .map((r) => {
    const counter = (key: string): unknown => {
      const kind = (JSON.parse(key) as unknown[])[0];
      let h = 0;
      for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
      if (kind === 'last_event') return r.lastEvent;
      if (kind === 'last_seen') return r.lastSeen;
      return r.counts[Math.abs(h) % r.counts.length];
    };
    const input: EvalInput = {
      traits: r.traits,
      computed: r.computed,
      context: r.context,
      profile: { id: 'c1', first_seen: r.firstSeen ?? null },
      counter,
      segments: new Set(r.segments),
      stage: r.stage,
      consent: (p, c) => r.consents.includes(`${p}:${c}`),
      reachable: (c) => r.reachable.includes(c),
      messages: r.opened === undefined ? undefined : { opened: r.opened },
      now: r.now,
      timezone: 'Europe/Berlin',
    };
    if (r.event !== undefined) input.event = r.event;
    return input;
  });

function show(input: EvalInput): string {
  return JSON.stringify({ traits: input.traits, computed: input.computed, context: input.context, event: input.event, profile: input.profile, stage: input.stage });
}

describe('compiled evaluator agrees with the cel-js reference', () => {
  test('on random conditions and random profiles', () => {
    let compiledCount = 0;
    let notCompiled = 0;
    let rejected = 0;
    let errors = 0;
    let trues = 0;
    let viaReference = 0;
    fc.assert(
      fc.property(gen('bool', 3), inputArb, (source, input) => {
        let c;
        try {
          c = compiler.compile(source);
        } catch (e) {
          if (e instanceof ConditionError) {
            rejected++;
            return;
          }
          throw e;
        }
        if (c.compiled) compiledCount++;
        else notCompiled++;
        const ref = compiler.reference(source, input);
        const fast = c.evaluate(input);
        const ex = c.explain(input);
        if (!ex.compiled) viaReference++;
        if (ref.error !== undefined) errors++;
        if (ref.result) trues++;
        const ctx = `\n  condition: ${source}\n  reference: ${JSON.stringify(ref)}\n  explain: ${JSON.stringify({ result: ex.result, error: ex.error })}\n  input: ${show(input)}`;
        expect(fast, `evaluate ${ctx}`).toBe(ref.result);
        expect(ex.result, `explain ${ctx}`).toBe(ref.result);
        expect(ex.error !== undefined, `error presence ${ctx}`).toBe(ref.error !== undefined);
      }),
      { numRuns: Number(process.env.DIFF_RUNS ?? 4000) },
    );
    const total = compiledCount + notCompiled + rejected;
    // The generator must exercise the evaluator, not only the compile-time checks.
    expect(compiledCount / total).toBeGreaterThan(0.5);
    expect(notCompiled).toBe(0);
    // Run-time hand-overs to the reference must stay rare, or agreement would say little.
    expect(viaReference / compiledCount).toBeLessThan(0.02);
    expect(errors).toBeGreaterThan(100);
    expect(trues).toBeGreaterThan(100);
  });
});
