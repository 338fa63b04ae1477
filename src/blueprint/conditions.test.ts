import { describe, expect, it } from 'vitest';
import { parseBlueprint, BlueprintError, type BlueprintIssue } from './index.js';

const head = ['version: 1', 'workspace: { name: T }', 'sources:', '  - name: web', '    contract:', '      events:', '        - name: Order Completed', '      traits:', '        plan: { type: string }'];
const build = (...lines: string[]): string => [...head, ...lines].join('\n') + '\n';

function firstIssue(source: string): BlueprintIssue {
  try {
    parseBlueprint(source, 'bp.yaml');
  } catch (e) {
    if (e instanceof BlueprintError) return e.issues[0] as BlueprintIssue;
    throw e;
  }
  throw new Error('expected the blueprint to be rejected');
}

describe('conditions in a blueprint are compiled at load', () => {
  it('compiles every condition once and keeps it by path', () => {
    const { conditions } = parseBlueprint(build('segments:', `  - { name: pro, condition: 'traits.plan == "pro" && count("Order Completed", "60d") >= 3' }`), 'bp.yaml');
    const c = conditions.get('segments[0].condition');
    expect(c?.compiled.counters.map((k) => k.kind)).toEqual(['count']);
  });

  it('points at an unknown trait inside a single-quoted condition (line 11, column of the name)', () => {
    const line = `  - { name: pro, condition: 'traits.plna == "pro"' }`;
    const issue = firstIssue(build('segments:', line));
    expect(issue.code).toBe('CAIRN_ERR_CONDITION_UNKNOWN');
    expect(issue.line).toBe(11);
    expect(issue.column).toBe(line.indexOf('plna') + 1);
    expect(issue.message).toContain('"plan"');
  });

  it('points at the spot inside a plain scalar', () => {
    const line = '    condition: count("Order Complete", "60d") >= 1';
    const issue = firstIssue(build('segments:', '  - name: buyers', line));
    expect(issue.code).toBe('CAIRN_ERR_CONDITION_UNKNOWN');
    expect([issue.line, issue.column]).toEqual([12, line.indexOf('Order Complete') + 1]);
  });

  it('points into a block scalar on the right line', () => {
    const issue = firstIssue(build('segments:', '  - name: buyers', '    condition: |', '      traits.plan == "pro" &&', '        in_segment("vipp")'));
    expect(issue.code).toBe('CAIRN_ERR_CONDITION_UNKNOWN');
    expect(issue.line).toBe(14);
    expect(issue.column).toBe('        in_segment("'.length + 1);
  });

  it('reports a syntax error with the condition code and a code frame', () => {
    const issue = firstIssue(build('segments:', `  - { name: pro, condition: 'traits.plan == ' }`));
    expect(issue.code).toBe('CAIRN_ERR_CONDITION_SYNTAX');
    expect(issue.line).toBe(11);
    expect(issue.frame).toContain('^');
  });

  it('without data contracts, an unknown event or trait is a warning, not an error', () => {
    const src = ['version: 1', 'workspace: { name: T }', 'segments:', `  - { name: fans, condition: 'count("Song Played", "7d") >= 3 && traits.genre == "jazz"' }`].join('\n');
    const { warnings, conditions } = parseBlueprint(src, 'bp.yaml');
    expect(conditions.size).toBe(1);
    expect(warnings.filter((w) => w.code === 'CAIRN_ERR_CONDITION_UNKNOWN')).toHaveLength(2);
  });
});
