import { describe, expect, it } from 'vitest';
import { parseBlueprint } from './load.js';
import { LINT_RULES, LINT_RULE_IDS, lintBlueprint, type LintFinding } from './lint.js';

/**
 * One positive and one negative case per lint rule, on small blueprints that load. Positions are
 * checked against the spot in the YAML text the finding is about.
 */

/** A workspace whose one source declares its events and traits, so names are checked. */
const HEAD = `version: 1
workspace: { name: Lint }
sources:
  - name: web
    contract:
      events:
        - name: Order Completed
          properties: { revenue: { type: number } }
        - name: Product Viewed
      traits:
        plan: { type: string }
        age: { type: number }
`;

/** The same without any contract: events and traits cannot be checked at load. */
const LOOSE = `version: 1
workspace: { name: Lint }
sources:
  - name: web
`;

const PLACEMENT = `placements:
  - { name: hero, type: web }
`;

/** An offer on the hero placement, with optional extra keys (one flow-map entry each). */
const offer = (name: string, extra = ''): string => `  - { name: ${name}, placements: [hero], content: { hero: { headline: Hi } }${extra ? `, ${extra}` : ''} }\n`;

function lint(yaml: string, rules?: string[]): LintFinding[] {
  return lintBlueprint(parseBlueprint(yaml, 'bp.yaml'), rules ? { rules } : {}).findings;
}

const of = (findings: LintFinding[], rule: string): LintFinding[] => findings.filter((f) => f.rule === rule);

/** 1-based line and column of the `nth` occurrence (default first) of `needle` in `yaml`. */
function spot(yaml: string, needle: string, nth = 1): { line: number; column: number } {
  let index = -1;
  for (let i = 0; i < nth; i++) index = yaml.indexOf(needle, index + 1);
  if (index < 0) throw new Error(`"${needle}" is not in the blueprint`);
  const before = yaml.slice(0, index).split('\n');
  return { line: before.length, column: (before[before.length - 1] ?? '').length + 1 };
}

const pos = (f: LintFinding | undefined): { line: number; column: number } | undefined => (f ? { line: f.line, column: f.column } : undefined);

describe('the rule registry', () => {
  it('gives every rule a unique kebab-case id and a one-line summary', () => {
    expect(new Set(LINT_RULE_IDS).size).toBe(LINT_RULES.length);
    for (const r of LINT_RULES) {
      expect(r.id).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(r.summary.length).toBeGreaterThan(20);
      expect(r.summary).not.toContain('\n');
    }
  });

  it('runs only the rules asked for, and refuses an unknown rule id with a suggestion', () => {
    const yaml = `${HEAD}segments:\n  - { name: a, condition: '!!(traits.age > 3) && traits.age > 5 && traits.age < 2' }\n`;
    expect(new Set(lint(yaml).map((f) => f.rule))).toEqual(new Set(['negation-heavy', 'condition-contradiction', 'unused-segment']));
    expect(new Set(lint(yaml, ['negation-heavy']).map((f) => f.rule))).toEqual(new Set(['negation-heavy']));
    expect(() => lint(yaml, ['negation-heavvy'])).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_LINT_RULE', message: expect.stringContaining('did you mean "negation-heavy"') }));
  });

  it('counts findings by severity and sorts them by position', () => {
    const yaml = `${HEAD}segments:\n  - { name: b, condition: 'traits.age > 5 && traits.age < 2' }\n  - { name: a, condition: '!!(traits.age > 3)' }\n`;
    const { findings, counts } = lintBlueprint(parseBlueprint(yaml, 'bp.yaml'));
    expect(counts).toEqual({ error: 1, warning: 1, info: 2 });
    const order = findings.map((f) => f.line * 1000 + f.column);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  });
});

describe('undeclared-event', () => {
  it('reports an event that nothing declares, in a condition and in a computed trait, once each and not again as a load warning', () => {
    const yaml = `${LOOSE}computed_traits:\n  - { name: views, kind: count, event: Product Viewd }\nsegments:\n  - { name: viewers, condition: 'count("Product Viewd") >= 1' }\n`;
    const loaded = parseBlueprint(yaml, 'bp.yaml');
    expect(loaded.warnings.length).toBeGreaterThan(0);
    const findings = lintBlueprint(loaded).findings;
    const events = of(findings, 'undeclared-event');
    expect(events.map(pos)).toEqual([spot(yaml, 'Product Viewd', 1), spot(yaml, 'Product Viewd', 2)]);
    expect(events.every((f) => f.severity === 'warning' && f.message.includes('"Product Viewd"'))).toBe(true);
    expect(of(findings, 'load-warning')).toEqual([]);
  });

  it('is quiet when a contract declares the event', () => {
    const yaml = `${HEAD}computed_traits:\n  - { name: views, kind: count, event: Product Viewed }\nsegments:\n  - { name: viewers, condition: 'count("Product Viewed") >= 1' }\n`;
    expect(of(lint(yaml), 'undeclared-event')).toEqual([]);
  });
});

describe('undeclared-trait', () => {
  it('points at the trait a condition reads when nothing declares it', () => {
    const yaml = `${LOOSE}segments:\n  - { name: gold, condition: 'traits.plna == "gold"' }\n`;
    const found = of(lint(yaml), 'undeclared-trait');
    expect(found.map(pos)).toEqual([spot(yaml, 'plna')]);
    expect(found[0]?.message).toContain('trait "plna"');
  });

  it('is quiet for a trait the contract declares', () => {
    expect(of(lint(`${HEAD}segments:\n  - { name: gold, condition: 'traits.plan == "gold"' }\n`), 'undeclared-trait')).toEqual([]);
  });
});

describe('offer-unreachable', () => {
  it('is an error when the condition can never hold: bounds that exclude each other, or false', () => {
    const yaml = `${HEAD}${PLACEMENT}offers:\n${offer('teens', `condition: 'traits.age > 15 && traits.age < 13'`)}${offer('off', `condition: 'false'`)}`;
    const found = of(lint(yaml), 'offer-unreachable');
    expect(found.map((f) => [f.severity, pos(f)])).toEqual([
      ['error', spot(yaml, 'traits.age > 15')],
      ['error', spot(yaml, "false'")],
    ]);
    expect(found[0]?.message).toContain('`traits.age > 15` and `traits.age < 13`');
    // The same contradiction is not reported a second time as condition-contradiction.
    expect(of(lint(yaml), 'condition-contradiction')).toEqual([]);
  });

  it('warns when an offer with a higher priority, no condition and no caps always takes the only slot', () => {
    const yaml = `${HEAD}${PLACEMENT}offers:\n${offer('everyone', 'priority: 10')}${offer('gold', `priority: 5, condition: 'traits.plan == "gold"'`)}`;
    const found = of(lint(yaml), 'offer-unreachable');
    expect(found.map((f) => [f.severity, pos(f)])).toEqual([['warning', spot(yaml, 'gold,')]]);
    expect(found[0]?.message).toContain('"everyone"');
  });

  it('is quiet when the winner is capped, the slot holds both, the loser is a fallback, or the winner has a condition of its own', () => {
    const capped = `${HEAD}${PLACEMENT}offers:\n${offer('everyone', 'priority: 10, caps: [{ per: profile, limit: 1, count: impression }]')}${offer('gold', 'priority: 5')}`;
    const roomy = `${HEAD}placements:\n  - { name: hero, type: web, max_offers: 2 }\noffers:\n${offer('everyone', 'priority: 10')}${offer('gold', 'priority: 5')}`;
    const fallback = `${HEAD}placements:\n  - { name: hero, type: web, fallback_offer: gold }\noffers:\n${offer('everyone', 'priority: 10')}${offer('gold', 'priority: 5')}`;
    const conditional = `${HEAD}${PLACEMENT}offers:\n${offer('young', `priority: 10, condition: 'traits.age < 30'`)}${offer('gold', 'priority: 5')}`;
    for (const yaml of [capped, roomy, fallback, conditional]) expect(of(lint(yaml), 'offer-unreachable')).toEqual([]);
  });
});

describe('offers-overlap', () => {
  it('warns when two offers tie on a one-slot placement: same priority, same condition', () => {
    const yaml = `${HEAD}${PLACEMENT}offers:\n${offer('a', `priority: 3, condition: 'traits.plan == "gold"'`)}${offer('b', `priority: 3, condition: 'traits.plan  ==  "gold"'`)}`;
    const found = of(lint(yaml), 'offers-overlap');
    expect(found.map(pos)).toEqual([spot(yaml, 'b,')]);
    expect(found[0]?.message).toContain('offers "a" and "b"');
  });

  it('is quiet for different priorities, different conditions, disjoint stages or enough slots', () => {
    const stages = `stages:\n  - { name: new, condition: 'traits.age < 1' }\n  - { name: old, condition: 'traits.age >= 1' }\n`;
    const cases = [
      `${HEAD}${PLACEMENT}offers:\n${offer('a', 'priority: 3')}${offer('b', 'priority: 4')}`,
      `${HEAD}${PLACEMENT}offers:\n${offer('a', `condition: 'traits.plan == "gold"'`)}${offer('b', `condition: 'traits.plan == "silver"'`)}`,
      `${HEAD}${stages}${PLACEMENT}offers:\n${offer('a', 'stages: [new]')}${offer('b', 'stages: [old]')}`,
      `${HEAD}placements:\n  - { name: hero, type: web, max_offers: 2 }\noffers:\n${offer('a')}${offer('b')}`,
    ];
    for (const yaml of cases) expect(of(lint(yaml), 'offers-overlap')).toEqual([]);
  });
});

describe('stage-without-offer', () => {
  const stages = `stages:\n  - { name: browsing, condition: 'count("Product Viewed") >= 1' }\n  - { name: buying, condition: 'count("Order Completed") >= 1' }\n`;

  it('warns at a stage that no offer lists while every offer lists its stages', () => {
    const yaml = `${HEAD}${stages}${PLACEMENT}offers:\n${offer('welcome', 'stages: [browsing]')}`;
    const found = of(lint(yaml), 'stage-without-offer');
    expect(found.map(pos)).toEqual([spot(yaml, 'buying')]);
    expect(found[0]?.severity).toBe('warning');
  });

  it('is quiet when an offer applies to every stage', () => {
    expect(of(lint(`${HEAD}${stages}${PLACEMENT}offers:\n${offer('welcome', 'stages: [browsing]')}${offer('anyone')}`), 'stage-without-offer')).toEqual([]);
  });
});

describe('condition-contradiction', () => {
  it('finds parts that can never hold, in any condition', () => {
    const yaml = `${HEAD}segments:
  - { name: a, condition: 'traits.plan == "gold" && traits.plan == "silver"' }
  - { name: b, condition: 'count("Order Completed") >= 1 || (traits.age >= 18 && !(traits.age >= 18))' }
  - { name: c, condition: 'traits.plan in ["gold", "silver"] && traits.plan != "gold" && traits.plan != "silver"' }
  - { name: d, condition: 'traits.age >= 3 && traits.age < 3' }
`;
    const found = of(lint(yaml), 'condition-contradiction');
    expect(found.map((f) => [f.severity, f.where, pos(f)])).toEqual([
      ['error', 'segments[0].condition', spot(yaml, 'traits.plan == "gold"')],
      ['error', 'segments[1].condition', spot(yaml, 'traits.age >= 18')],
      ['error', 'segments[2].condition', spot(yaml, 'traits.plan in')],
      ['error', 'segments[3].condition', spot(yaml, 'traits.age >= 3')],
    ]);
    expect(found[1]?.message).toContain('`traits.age >= 18` and `!(traits.age >= 18)` cannot both hold, so `traits.age >= 18 && !(traits.age >= 18)` never holds');
  });

  it('warns about parts that always hold, and about a constant that changes nothing', () => {
    const yaml = `${HEAD}segments:
  - { name: a, condition: 'traits.age > 3 || traits.age <= 3' }
  - { name: b, condition: 'traits.plan != "gold" || traits.plan != "silver"' }
  - { name: c, condition: 'traits.age > 3 && true' }
`;
    const found = of(lint(yaml), 'condition-contradiction');
    expect(found.map((f) => [f.severity, f.where])).toEqual([
      ['warning', 'segments[0].condition'],
      ['warning', 'segments[1].condition'],
      ['warning', 'segments[2].condition'],
    ]);
    expect(pos(found[2])).toEqual(spot(yaml, 'true'));
  });

  it('is quiet for conditions that can hold and fail', () => {
    const yaml = `${HEAD}segments:
  - { name: a, condition: 'traits.age > 3 && traits.age < 10' }
  - { name: b, condition: 'traits.plan == "gold" || traits.plan == "silver"' }
  - { name: c, condition: 'traits.plan in ["gold", "silver"] && traits.plan != "gold"' }
  - { name: d, condition: 'traits.age >= 3 && traits.age <= 3' }
  - { name: e, condition: 'count("Order Completed", "30d") >= 1 && count("Order Completed", "60d") == 0 || in_segment("a")' }
`;
    expect(of(lint(yaml), 'condition-contradiction')).toEqual([]);
  });

  it('points at the right line and column inside folded, plain and quoted conditions that span lines', () => {
    // The double-quoted one has escaped quotes and, on purpose, spaces before its line break (YAML drops them).
    const yaml = `${HEAD}segments:
  - name: folded
    condition: >
      count("Order Completed") >= 1

      && traits.age > 10 && traits.age < 5
  - name: plain
    condition: count("Order Completed") >= 1
      && traits.age > 11 && traits.age < 5
  - name: quoted
    condition: "count(\\"Order Completed\\") >= 1   
      && traits.plan == 'x' && traits.plan == 'y'"
  - name: single
    condition: 'count("Order Completed") >= 1 && traits.plan == ''x'' && traits.plan == ''y'''
`;
    expect(of(lint(yaml), 'condition-contradiction').map(pos)).toEqual([
      spot(yaml, 'traits.age > 10'),
      spot(yaml, 'traits.age > 11'),
      spot(yaml, "traits.plan == 'x'"),
      spot(yaml, "traits.plan == ''x''"),
    ]);
  });
});

describe('negation-heavy', () => {
  it('suggests the positive form of double negations and negated comparisons', () => {
    const yaml = `${HEAD}segments:
  - { name: a, condition: '!!(traits.age > 3)' }
  - { name: b, condition: '!(traits.plan != "gold")' }
  - { name: c, condition: '!(traits.age < 18)' }
`;
    const found = of(lint(yaml), 'negation-heavy');
    expect(found.map((f) => [f.where, pos(f)])).toEqual([
      ['segments[0].condition', spot(yaml, '!!')],
      ['segments[1].condition', spot(yaml, '!(traits.plan')],
      ['segments[2].condition', spot(yaml, '!(traits.age < 18)')],
    ]);
    expect(found.map((f) => /write `([^`]+)`/.exec(f.message)?.[1])).toEqual(['traits.age > 3', 'traits.plan == "gold"', 'traits.age >= 18']);
  });

  it('warns about more than two negations in one condition', () => {
    const yaml = `${HEAD}segments:\n  - { name: a, condition: '!has(traits.plan) && !has(traits.age) && !exists("Order Completed")' }\n`;
    const found = of(lint(yaml), 'negation-heavy');
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toContain('3 negations');
  });

  it('is quiet for a single negation, an inequality, or a negated equality', () => {
    const yaml = `${HEAD}segments:\n  - { name: a, condition: '!has(traits.plan) && traits.age != 3 && !(traits.plan == "x")' }\n`;
    expect(of(lint(yaml), 'negation-heavy')).toEqual([]);
  });
});

describe('unused-segment', () => {
  it('notes a segment that nothing refers to, as info', () => {
    const yaml = `${HEAD}segments:\n  - { name: buyers, condition: 'count("Order Completed") >= 1' }\n`;
    const found = of(lint(yaml), 'unused-segment');
    expect(found.map((f) => [f.severity, pos(f)])).toEqual([['info', spot(yaml, 'buyers')]]);
  });

  it('counts in_segment(), journey entries and content variants as uses', () => {
    const yaml = `${HEAD}${PLACEMENT}segments:
  - { name: buyers, condition: 'count("Order Completed") >= 1' }
  - { name: vip, condition: 'in_segment("buyers") && traits.plan == "gold"' }
  - { name: young, condition: 'traits.age < 30' }
offers:
  - { name: hi, placements: [hero], content: { hero: { headline: Hi, variants: [{ segment: young, headline: Yo }] } } }
journeys:
  - name: welcome_vip
    entry: { type: segment, segment: vip }
    steps:
      - { id: pause, type: wait, duration: 1d }
`;
    expect(of(lint(yaml), 'unused-segment')).toEqual([]);
  });
});

describe('load-warning', () => {
  it('shows a loader warning that no rule covers, such as an event property the contract does not list', () => {
    const yaml = `${HEAD}kpis:\n  - { name: arpu, metric: { type: revenue_per_customer, event: Order Completed, property: amount, window: 30d }, unit: currency, baseline: 1, target: 2, by: "2027-01-01" }\n`;
    const found = of(lint(yaml), 'load-warning');
    expect(found.map((f) => [f.severity, pos(f)])).toEqual([['warning', spot(yaml, 'amount')]]);
  });

  it('is quiet for a blueprint that loads without warnings', () => {
    const yaml = `${HEAD}kpis:\n  - { name: arpu, metric: { type: revenue_per_customer, event: Order Completed, property: revenue, window: 30d }, unit: currency, baseline: 1, target: 2, by: "2027-01-01" }\n`;
    expect(of(lint(yaml), 'load-warning')).toEqual([]);
  });
});
