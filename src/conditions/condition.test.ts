import { describe, expect, test } from 'vitest';
import { ConditionError, compileCondition, counterSpec, createConditionCompiler, referenceEvaluate, type ConditionErrorCode } from './index.js';
import { DECL, NOW, makeInput } from './fixtures.js';

/** Compiles and returns the ConditionError it must throw. */
function failure(source: string, options = {}): ConditionError {
  try {
    compileCondition(source, DECL, options);
  } catch (e) {
    if (e instanceof ConditionError) return e;
    throw e;
  }
  throw new Error(`expected "${source}" not to compile`);
}

/** Asserts the code and that offset/length underline `spot` (its first occurrence after `from`). */
function expectError(source: string, code: ConditionErrorCode, spot: string, from = 0): ConditionError {
  const e = failure(source);
  expect(e.code, e.message).toBe(code);
  expect(source.slice(e.offset, e.offset + e.length), e.message).toBe(spot);
  expect(e.offset).toBe(source.indexOf(spot, from));
  return e;
}

describe('CAIRN_ERR_CONDITION_SYNTAX', () => {
  test('points where the parser stopped', () => {
    expect(failure('traits.plan == ').code).toBe('CAIRN_ERR_CONDITION_SYNTAX');
    expect(failure('traits.plan == ').offset).toBe(15);
    const e = failure('traits.age > 1 +* 2');
    expect(e).toMatchObject({ code: 'CAIRN_ERR_CONDITION_SYNTAX', offset: 16 });
    expect(e.codeFrame()).toBe(`1 | traits.age > 1 +* 2\n${' '.repeat('1 | '.length + 16)}^`);
    expect(failure('"unterminated').code).toBe('CAIRN_ERR_CONDITION_SYNTAX');
    expect(failure('  ').code).toBe('CAIRN_ERR_CONDITION_SYNTAX');
  });

  test('an invalid regular expression literal is found at compile time', () => {
    expectError('traits.plan.matches("a(")', 'CAIRN_ERR_CONDITION_SYNTAX', 'a(');
  });
});

describe('CAIRN_ERR_CONDITION_UNKNOWN', () => {
  test('an undeclared trait, with the closest name', () => {
    const e = expectError('traits.age > 3 && traits.plann == "plus"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'plann');
    expect(e.params).toMatchObject({ kind: 'trait', name: 'plann', suggestion: 'plan' });
    expect(e.message).toContain('did you mean "plan"?');
    expectError('has(traits.vipp)', 'CAIRN_ERR_CONDITION_UNKNOWN', 'vipp');
    expectError('traits["regoin"] == "north"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'regoin');
    expect(failure('traits.zzzzzzzz == 1').params.suggestion).toBeUndefined();
  });

  test('an undeclared event, segment, purpose, channel or stage', () => {
    expect(expectError('count("Order Complete", "60d") > 1', 'CAIRN_ERR_CONDITION_UNKNOWN', 'Order Complete').params.suggestion).toBe('Order Completed');
    expectError('in_segment("big_spender")', 'CAIRN_ERR_CONDITION_UNKNOWN', 'big_spender');
    expectError('consent("marketting", "email")', 'CAIRN_ERR_CONDITION_UNKNOWN', 'marketting');
    expectError('consent("marketing", "emial")', 'CAIRN_ERR_CONDITION_UNKNOWN', 'emial');
    expectError('reachable("fax")', 'CAIRN_ERR_CONDITION_UNKNOWN', 'fax');
    expectError('stage() == "Actve"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'Actve');
    expectError('"Actve" != stage()', 'CAIRN_ERR_CONDITION_UNKNOWN', 'Actve');
    expectError('stage() in ["Active", "Churned"]', 'CAIRN_ERR_CONDITION_UNKNOWN', 'Churned');
    expectError('event.name == "Order Complted"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'Order Complted');
  });

  test('an undeclared property of a declared event, in filters and sums', () => {
    expectError('count("Product Viewed", "30d", {"categroy": "shoes"}) > 0', 'CAIRN_ERR_CONDITION_UNKNOWN', 'categroy');
    expectError('sum("Order Completed", "totl", "30d") > 0.0', 'CAIRN_ERR_CONDITION_UNKNOWN', 'totl');
    // Events without declared properties are not checked.
    expect(compileCondition('count("Email Opened", "30d", {"campaign": "x"}) > 0', DECL).compiled).toBe(true);
    // event.properties.x must be a property some event declares — unless one event leaves them open.
    expect(compileCondition('event.properties.anything == 1', DECL).compiled).toBe(true);
    const closed = createConditionCompiler({ ...DECL, events: [{ name: 'Order Completed', properties: ['total'] }] });
    expect(() => closed.compile('event.properties.totl > 1')).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_CONDITION_UNKNOWN', offset: 17 }));
  });

  test('an unknown function', () => {
    expect(expectError('in_segmnet("big_spenders")', 'CAIRN_ERR_CONDITION_UNKNOWN', 'in_segmnet').params.suggestion).toBe('in_segment');
    expect(expectError('traits.vip && coutn("Signed Up") > 1', 'CAIRN_ERR_CONDITION_UNKNOWN', 'coutn').params.suggestion).toBe('count');
  });

  test('an unknown variable or field of event/profile', () => {
    expectError('trait.plan == "plus"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'trait');
    expect(failure('trait.plan == "plus"').params.suggestion).toBe('traits');
    expectError('event.nme == "x"', 'CAIRN_ERR_CONDITION_UNKNOWN', 'nme');
    expectError('days_since(profile.firstseen) > 1', 'CAIRN_ERR_CONDITION_UNKNOWN', 'firstseen');
    expectError('computed.orders60d > 1', 'CAIRN_ERR_CONDITION_UNKNOWN', 'orders60d');
    // A macro's variable is in scope inside it, and only there.
    expect(compileCondition('traits.tags.exists(t, t == "a")', DECL).compiled).toBe(true);
    expectError('traits.tags.exists(t, t == "a") && t == "b"', 'CAIRN_ERR_CONDITION_UNKNOWN', 't', 33);
  });
});

describe('CAIRN_ERR_CONDITION_TYPE', () => {
  test('type errors from the checker point at the expression', () => {
    const e = failure('traits.vip && traits.plan > 1');
    expect(e).toMatchObject({ code: 'CAIRN_ERR_CONDITION_TYPE', offset: 14 });
    expect(failure('traits.age == traits.score').code).toBe('CAIRN_ERR_CONDITION_TYPE');
  });

  test('the result must be a bool', () => {
    expect(failure('traits.age + 1')).toMatchObject({ code: 'CAIRN_ERR_CONDITION_TYPE', offset: 0 });
    expect(failure('traits.plan')).toMatchObject({ code: 'CAIRN_ERR_CONDITION_TYPE' });
    // dyn may be a bool at run time: allowed, and a non-bool then makes the condition false.
    const c = compileCondition('context.flag', DECL);
    expect(c.evaluate(makeInput({ context: { flag: true } }))).toBe(true);
    expect(c.explain(makeInput({ context: { flag: 'yes' } }))).toMatchObject({ result: false, error: expect.stringContaining('not a bool') });
  });

  test('event names, windows and filters must be literals', () => {
    expectError('count(context.event, "60d") > 1', 'CAIRN_ERR_CONDITION_TYPE', 'context.event');
    expectError('count("Order Completed", traits.plan) > 1', 'CAIRN_ERR_CONDITION_TYPE', 'traits.plan');
    expectError('count("Product Viewed", "30d", {"category": traits.plan}) > 1', 'CAIRN_ERR_CONDITION_TYPE', '{"category": traits.plan}');
    expectError('in_segment(context.segment)', 'CAIRN_ERR_CONDITION_TYPE', 'context.segment');
    expect(failure('count(context.event, "60d") > 1').message).toContain('must be a literal');
    // A dyn argument could select the event overload of days_since: refused rather than guessed.
    expectError('days_since(context.since) > 1', 'CAIRN_ERR_CONDITION_TYPE', 'context.since');
  });

  test('a window must be a duration and a filter value a scalar', () => {
    expectError('count("Order Completed", "60 days") > 1', 'CAIRN_ERR_CONDITION_TYPE', '60 days');
    expectError('count("Order Completed", "0d") > 1', 'CAIRN_ERR_CONDITION_TYPE', '0d');
    expectError('count("Product Viewed", "30d", {"category": {"a": 1}}) > 1', 'CAIRN_ERR_CONDITION_TYPE', '{"a": 1}');
  });
});

describe('CAIRN_ERR_CONDITION_LIMIT', () => {
  test('source length, nesting depth, list size and AST size', () => {
    const long = `traits.plan == "${'x'.repeat(5000)}"`;
    expect(failure(long)).toMatchObject({ code: 'CAIRN_ERR_CONDITION_LIMIT', offset: 4096 });
    const deep = `${'('.repeat(60)}true${')'.repeat(60)}`;
    expect(failure(deep).code).toBe('CAIRN_ERR_CONDITION_LIMIT');
    expect(failure('traits.age in [1, 2, 3, 4]', { maxListElements: 3 })).toMatchObject({ code: 'CAIRN_ERR_CONDITION_LIMIT' });
    const wide = Array.from({ length: 400 }, (_, i) => `traits.age == ${i}`).join(' || ');
    expect(failure(wide).code).toBe('CAIRN_ERR_CONDITION_LIMIT');
    expect(() => compileCondition('true', DECL, { maxEvalSteps: 0 })).toThrow(/positive integer/);
  });

  test('regular expressions that can backtrack catastrophically are refused', () => {
    expectError('traits.plan.matches("^(a+)+$")', 'CAIRN_ERR_CONDITION_LIMIT', '^(a+)+$');
    expectError('traits.plan.matches("(x*y)*z")', 'CAIRN_ERR_CONDITION_LIMIT', '(x*y)*z');
    expectError('traits.plan.matches("(a)\\\\1")', 'CAIRN_ERR_CONDITION_LIMIT', '(a)\\\\1');
    expect(compileCondition('traits.plan.matches("^(ab)+c*$") && traits.plan.matches("x{2,}")', DECL).compiled).toBe(true);
    // A pattern only known at run time is checked then: the match fails instead of running.
    const c = compileCondition('traits.plan.matches(context.pattern)', DECL);
    expect(c.explain(makeInput({ traits: { plan: 'aaaa' }, context: { pattern: '^(a+)+$' } }))).toMatchObject({ result: false, error: expect.stringContaining('nested unbounded') });
    expect(c.evaluate(makeInput({ traits: { plan: 'aaaa' }, context: { pattern: '^a+$' } }))).toBe(true);
  });

  test('the evaluation step budget stops macros over long lists', () => {
    const c = compileCondition('traits.tags.exists(t, t == "needle")', DECL, { maxEvalSteps: 100 });
    const tags = Array.from({ length: 1000 }, (_, i) => `t${i}`);
    expect(c.evaluate(makeInput({ traits: { tags } }))).toBe(false);
    const ex = c.explain(makeInput({ traits: { tags } }));
    expect(ex.error).toMatch(/CAIRN_ERR_CONDITION_LIMIT/);
    // The budget is not absorbed by ||.
    expect(compileCondition('traits.tags.exists(t, t == "needle") || true', DECL, { maxEvalSteps: 100 }).evaluate(makeInput({ traits: { tags } }))).toBe(false);
    expect(c.evaluate(makeInput({ traits: { tags: ['needle', ...tags] } }))).toBe(true);
  });
});

describe('evaluation', () => {
  test('errors make the condition false; || and && absorb them when the other side decides', () => {
    const input = makeInput({ traits: { plan: 'plus' } });
    expect(compileCondition('traits.age > 3', DECL).evaluate(input)).toBe(false);
    expect(compileCondition('!(traits.age > 3)', DECL).evaluate(input)).toBe(false);
    expect(compileCondition('traits.age > 3 || traits.plan == "plus"', DECL).evaluate(input)).toBe(true);
    expect(compileCondition('traits.age > 3 && traits.plan == "basic"', DECL).evaluate(input)).toBe(false);
    expect(compileCondition('!has(traits.age) && traits.plan == "plus"', DECL).evaluate(input)).toBe(true);
  });

  test('traits are read as their declared type', () => {
    const c = compileCondition('traits.age == 42', DECL);
    expect(c.evaluate(makeInput({ traits: { age: 42 } }))).toBe(true);
    // Not an int, or null: absent.
    expect(c.explain(makeInput({ traits: { age: 42.5 } }))).toMatchObject({ result: false, error: 'No such key: age' });
    expect(compileCondition('has(traits.age)', DECL).evaluate(makeInput({ traits: { age: null } }))).toBe(false);
    expect(compileCondition('has(traits.age)', DECL).evaluate(makeInput({ traits: { age: '42' } }))).toBe(false);
    const ts = compileCondition('traits.birthday < timestamp("2000-01-01T00:00:00Z")', DECL);
    expect(ts.evaluate(makeInput({ traits: { birthday: '1990-05-01T00:00:00Z' } }))).toBe(true);
    expect(ts.evaluate(makeInput({ traits: { birthday: Date.parse('2001-05-01') } }))).toBe(false);
    // Doubles accept JSON integers; JSON numbers inside dyn values stay doubles and still compare with ints.
    expect(compileCondition('traits.score >= 3.0', DECL).evaluate(makeInput({ traits: { score: 3 } }))).toBe(true);
    expect(compileCondition('context.visits > 2 && context.visits == 3', DECL).evaluate(makeInput({ context: { visits: 3 } }))).toBe(true);
  });

  test('the event variable is absent outside event-triggered evaluation', () => {
    const c = compileCondition('event.name == "Order Completed" && event.properties.total > 100', DECL);
    expect(c.references.usesEvent).toBe(true);
    expect(c.evaluate(makeInput({ event: { name: 'Order Completed', type: 'track', properties: { total: 120 } } }))).toBe(true);
    expect(c.explain(makeInput())).toMatchObject({ result: false, error: 'Unknown variable: event' });
  });

  test('context: location, campaign and arbitrary keys', () => {
    const c = compileCondition('context.location.country in ["DE", "AT"] && context.campaign.source.startsWith("goog") && context.placement == "home"', DECL);
    expect(c.evaluate(makeInput({ context: { location: { country: 'AT' }, campaign: { source: 'google' }, placement: 'home' } }))).toBe(true);
    expect(c.evaluate(makeInput({ context: { location: { country: 'FR' }, campaign: { source: 'google' }, placement: 'home' } }))).toBe(false);
  });

  test('string methods, size, in on maps, ternaries and macros', () => {
    const input = makeInput({ traits: { plan: 'Plus', tags: ['vip', 'beta'], address: { city: 'Berlin' } } });
    const holds = (s: string): boolean => compileCondition(s, DECL).evaluate(input);
    expect(holds('traits.plan.lowerAscii() == "plus" && traits.plan.size() == 4 && size(traits.tags) == 2')).toBe(true);
    expect(holds('traits.plan.matches("^P") && traits.plan.endsWith("us") && traits.plan.contains("lu")')).toBe(true);
    expect(holds('"city" in traits.address && !("zip" in traits.address)')).toBe(true);
    expect(holds('(traits.plan == "Plus" ? 1 : 2) == 1')).toBe(true);
    expect(holds('traits.tags.all(t, t.size() > 2) && traits.tags.exists_one(t, t == "vip") && traits.tags.filter(t, t.startsWith("b")).size() == 1')).toBe(true);
    expect(holds('traits.tags.map(t, t.upperAscii()) == ["VIP", "BETA"]')).toBe(true);
  });
});

describe('explain', () => {
  test('records comparisons with their operands, calls and boolean operands, from the same evaluation', () => {
    const c = compileCondition('count("Order Completed", "60d") >= 3 && traits.plan == "plus" && traits.vip', DECL);
    const key = (c.counters[0] as { key: string }).key;
    const input = makeInput({ counters: { [key]: 5 }, traits: { plan: 'basic', vip: true } });
    const ex = c.explain(input);
    expect(ex.result).toBe(false);
    expect(ex.compiled).toBe(true);
    expect(ex.steps).toEqual([
      { text: 'count("Order Completed", "60d")', value: 5, offset: 0 },
      { text: 'count("Order Completed", "60d") >= 3', value: true, offset: 0, operands: [5, 3] },
      { text: 'traits.plan == "plus"', value: false, offset: 40, operands: ['basic', 'plus'] },
      { text: 'count("Order Completed", "60d") >= 3 && traits.plan == "plus" && traits.vip', value: false, offset: 0 },
    ]);
    // Short-circuit: traits.vip was never looked at, so it is not in the steps.
    const ex2 = c.explain(makeInput({ counters: { [key]: 5 }, traits: { plan: 'plus', vip: true } }));
    expect(ex2.result).toBe(true);
    expect(ex2.steps.map((s) => s.text)).toContain('traits.vip');
  });

  test('records errors as values and gives the reason', () => {
    const ex = compileCondition('traits.age > 30 || in_segment("big_spenders")', DECL).explain(makeInput({ segments: new Set(['big_spenders']) }));
    expect(ex.result).toBe(true);
    expect(ex.error).toBeUndefined();
    expect(ex.steps[0]).toEqual({ text: 'traits.age > 30', value: { error: 'No such key: age' }, offset: 0 });
  });

  test('values are JSON-safe', () => {
    const ex = compileCondition('traits.birthday < now() && traits.age > 9007199254740993', DECL).explain(
      makeInput({ traits: { birthday: '1990-01-01T00:00:00.000Z', age: 1 } }),
    );
    expect(JSON.parse(JSON.stringify(ex))).toEqual(ex);
    expect(ex.steps[1]?.operands).toEqual(['1990-01-01T00:00:00.000Z', new Date(NOW).toISOString()]);
    expect(ex.steps.at(-2)?.operands).toEqual([1, '9007199254740993']);
  });
});

describe('compiled or not', () => {
  test('everything realistic compiles', () => {
    for (const s of [
      'count("Order Completed", "60d") >= 3 && traits.plan == "plus" && consent("marketing", "email")',
      'count("Product Viewed", "30d", {"category": "shoes"}) >= 2',
      'opened(2, 4) && reachable("email")',
      'traits.region in ["north", "south"] && days_since(profile.first_seen) > 90',
      'local_hour() >= 9 && local_hour() < 18 && local_weekday() in [1, 2, 3, 4, 5]',
      'stage() == "At-risk" && !in_segment("churn_risk") && visits() > 2',
      'has(traits.address.city) && traits.address.city == "Berlin"',
      'exists("Signed Up") && !exists("Order Completed")',
      'last("Order Completed").total > 100 && last("Order Completed").currency == "EUR"',
      'int(context.visits) > 3 || double(traits.age) / 2.0 > 20.0 || string(traits.age) == "30"',
    ]) {
      const c = compileCondition(s, DECL);
      expect(c.compiled, `${s}: ${c.notCompiledReason ?? ''}`).toBe(true);
    }
  });

  test('what does not compile runs on cel-js with the same answer', () => {
    const s = 'now() - profile.first_seen > duration("2160h")';
    const c = compileCondition(s, DECL);
    expect(c.compiled).toBe(false);
    expect(c.notCompiledReason).toMatch(/duration/);
    const old = makeInput({ profile: { id: 'a', first_seen: NOW - 100 * 86_400_000 } });
    const young = makeInput({ profile: { id: 'a', first_seen: NOW - 10 * 86_400_000 } });
    expect(c.evaluate(old)).toBe(true);
    expect(c.evaluate(young)).toBe(false);
    expect(c.explain(old)).toEqual({ result: true, steps: [], compiled: false });
    expect(referenceEvaluate(s, DECL, old)).toEqual({ result: true });
  });

  test('a run-time shape the compiler does not model is handed to cel-js for that evaluation', () => {
    // context values are JSON in practice; a Set is not, and the compiled form defers to the reference.
    const c = compileCondition('"a" in context.tags', DECL);
    expect(c.compiled).toBe(true);
    expect(c.evaluate(makeInput({ context: { tags: ['a'] } }))).toBe(true);
    const withSet = makeInput({ context: { tags: new Set(['a']) } });
    expect(c.evaluate(withSet)).toBe(referenceEvaluate('"a" in context.tags', DECL, withSet).result);
    expect(c.explain(withSet).compiled).toBe(false);
  });
});

describe('references', () => {
  test('lists what a condition depends on', () => {
    const c = compileCondition(
      'count("Order Completed", "60d") > 1 && traits.plan == "plus" && in_segment("big_spenders") && consent("marketing", "email") && stage() == "Active" && context.channel == "web" && computed.orders_60d > 1',
      DECL,
    );
    expect(c.references).toMatchObject({
      traits: ['plan'],
      computed: ['orders_60d'],
      events: ['Order Completed'],
      segments: ['big_spenders'],
      stages: ['Active'],
      purposes: ['marketing'],
      channels: ['email'],
      usesEvent: false,
      usesContext: true,
      dependsOnTime: true,
    });
    expect(c.references.functions).toEqual(['consent', 'count', 'in_segment', 'stage']);
    expect(compileCondition('traits.plan == "plus"', DECL).references.dependsOnTime).toBe(false);
  });
});

describe('days_since uses', () => {
  const uses = (source: string) => compileCondition(source, DECL).daysSince;
  const key = (event: string): string => counterSpec({ kind: 'last_seen', event }).key;

  test('comparisons with numeric literals, either side, ints and doubles, unary minus', () => {
    const u = uses(
      'exists("Order Completed") && days_since("Order Completed") > 45 && 7 > days_since("Order Completed") || days_since("Order Completed") >= 0.5 || -1 <= days_since("Order Completed") || days_since("Order Completed") != -2.25 || days_since("Order Completed") == 3.0',
    );
    expect(u).toEqual({
      unanchored: false,
      events: [
        {
          event: 'Order Completed',
          key: key('Order Completed'),
          comparisons: [
            { op: '>', days: 45 },
            { op: '<', days: 7 },
            { op: '>=', days: 0.5 },
            { op: '>=', days: -1 },
            { op: '!=', days: -2.25 },
            { op: '==', days: 3 },
          ],
        },
      ],
    });
    // Flipped operators: `k op x` is `x op' k`.
    expect(uses('1 < days_since("Signed Up") && 2.5 >= days_since("Signed Up")').events[0]?.comparisons).toEqual([
      { op: '>', days: 1 },
      { op: '<=', days: 2.5 },
    ]);
    expect(uses('traits.plan == "plus"')).toEqual({ unanchored: false, events: [] });
  });

  test('any other use of the event leaves it without thresholds; other events keep theirs', () => {
    const forced = [
      'days_since("Order Completed") * 24.0 > 36.0',
      'days_since("Order Completed") > days_since("Signed Up")',
      'days_since("Order Completed") > traits.score',
      'days_since("Order Completed") > dyn(3)',
      'days_since("Order Completed") in [1.0, 2.0]',
      'days_since("Order Completed") > - -2',
      'cel.bind(d, days_since("Order Completed"), d > 3.0)',
      'days_since("Order Completed") > 3 && int(days_since("Order Completed")) == 4',
    ];
    for (const source of forced) expect(uses(source).events.find((e) => e.event === 'Order Completed')?.comparisons, source).toBeNull();
    const mixed = uses('days_since("Order Completed") * 2.0 > 3.0 && days_since("Signed Up") < 14');
    expect(mixed.events.map((e) => [e.event, e.comparisons])).toEqual([
      ['Order Completed', null],
      ['Signed Up', [{ op: '<', days: 14 }]],
    ]);
  });

  test('the timestamp overload is unanchored; exists() alone is no use', () => {
    expect(uses('days_since(traits.birthday) > 30')).toEqual({ unanchored: true, events: [] });
    expect(uses('exists("Order Completed")')).toEqual({ unanchored: false, events: [] });
  });
});

describe('compilers', () => {
  test('invalid declarations are refused with every problem listed', () => {
    expect(() => createConditionCompiler({ traits: { a: 'integer' as 'int', __proto__x: 'int' }, segments: [''] })).toThrow(/"a" has unknown type[\s\S]*segments: names must be non-empty/);
  });

  test('compiling is cached per source', () => {
    const compiler = createConditionCompiler(DECL);
    expect(compiler.compile('traits.vip')).toBe(compiler.compile('traits.vip'));
  });
});

describe('error catalogue', () => {
  test('the condition codes are in the core catalogue with the same text', async () => {
    const { ERRORS } = await import('../core/index.js');
    const { CONDITION_ERRORS } = await import('./errors.js');
    for (const [code, entry] of Object.entries(CONDITION_ERRORS)) expect(ERRORS[code as keyof typeof ERRORS]).toEqual(entry);
  });
});
