import { describe, expect, it } from 'vitest';
import { BlueprintError, parseBlueprint, type BlueprintIssue } from './load.js';
import { resolveModel } from './model.js';

/**
 * Segments that read each other with in_segment() in a cycle have no evaluation order, so loading
 * refuses them: CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE at the in_segment() call that leads around the
 * cycle, naming every segment on it.
 */

const HEAD = `version: 1
workspace: { name: Cycles }
sources:
  - name: web
    contract:
      events: [{ name: Order Completed }]
segments:
`;

function issuesOf(yaml: string): BlueprintIssue[] {
  try {
    parseBlueprint(yaml, 'cycles.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(BlueprintError);
    return (e as BlueprintError).issues;
  }
  throw new Error('the blueprint loaded');
}

/** 1-based line and column of the first occurrence of `needle`. */
function spot(yaml: string, needle: string): { line: number; column: number } {
  const before = yaml.slice(0, yaml.indexOf(needle)).split('\n');
  return { line: before.length, column: (before[before.length - 1] ?? '').length + 1 };
}

describe('in_segment() cycles', () => {
  it('refuses two segments that read each other, at the call in the first one, naming the cycle', () => {
    const yaml = `${HEAD}  - name: p
    condition: count("Order Completed") >= 1 || in_segment("q")
  - name: q
    condition: in_segment("p")
`;
    const issues = issuesOf(yaml);
    expect(issues).toHaveLength(1);
    const [cycle] = issues;
    expect(cycle?.code).toBe('CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE');
    expect({ line: cycle?.line, column: cycle?.column }).toEqual(spot(yaml, 'in_segment("q")'));
    expect(cycle?.message).toContain('segments[0].condition');
    expect(cycle?.message).toContain('p → q → p');
    expect(cycle?.frame).toContain('^');
  });

  it('refuses a segment that reads itself', () => {
    const yaml = `${HEAD}  - name: loyal
    condition: 'count("Order Completed") >= 3 && in_segment("loyal")'
`;
    const issues = issuesOf(yaml);
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([['CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE', spot(yaml, 'in_segment').line, spot(yaml, 'in_segment').column]]);
    expect(issues[0]?.message).toContain('loyal → loyal');
  });

  it('names a longer cycle whole, from the first declared member, and the members off the shortest way round', () => {
    const yaml = `${HEAD}  - { name: a, condition: 'in_segment("b")' }
  - { name: b, condition: 'in_segment("c") || in_segment("d")' }
  - { name: c, condition: 'in_segment("a")' }
  - { name: d, condition: 'in_segment("b") && count("Order Completed") >= 1' }
  - { name: e, condition: 'in_segment("a")' }
`;
    const issues = issuesOf(yaml);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain('a → b → c → a');
    expect(issues[0]?.message).toContain('"d" is in the same cycle');
    expect(issues[0]?.message).not.toContain('"e"');
    expect({ line: issues[0]?.line, column: issues[0]?.column }).toEqual(spot(yaml, 'in_segment("b")'));
  });

  it('reports each separate cycle, inside folded block conditions too', () => {
    const yaml = `${HEAD}  - name: x
    condition: >
      count("Order Completed") >= 1
      && in_segment("y")
  - { name: y, condition: 'in_segment("x")' }
  - { name: z, condition: 'in_segment("z")' }
`;
    const issues = issuesOf(yaml);
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([
      ['CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE', spot(yaml, 'in_segment("y")').line, spot(yaml, 'in_segment("y")').column],
      ['CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE', spot(yaml, 'in_segment("z")').line, spot(yaml, 'in_segment("z")').column],
    ]);
  });

  it('loads a chain without a cycle and orders it by dependency, whatever the declaration order', () => {
    const yaml = `${HEAD}  - { name: top, condition: 'in_segment("middle") && in_segment("base")' }
  - { name: middle, condition: 'in_segment("base")' }
  - { name: base, condition: 'count("Order Completed") >= 1' }
`;
    const loaded = parseBlueprint(yaml, 'chain.yaml');
    const model = resolveModel(loaded.blueprint, undefined, loaded.conditions);
    expect(model.segments.map((s) => [s.name, s.inCycle])).toEqual([
      ['base', false],
      ['middle', false],
      ['top', false],
    ]);
  });
});
