import { describe, expect, it } from 'vitest';
import { BlueprintError, parseBlueprint, type BlueprintIssue } from '../blueprint/index.js';

// Lines 1–13; the offer starts on line 14.
const head = [
  'version: 1',
  'workspace: { name: T }',
  'sources:',
  '  - name: web',
  '    contract:',
  '      traits:',
  '        first_name: { type: string }',
  '        plan: { type: string }',
  'placements:',
  '  - { name: web_banner, type: web }',
  'segments:',
  '  - { name: vip, condition: \'traits.plan == "vip"\' }',
  'offers:',
];
const build = (...lines: string[]): string => [...head, ...lines].join('\n') + '\n';
const offer = (...content: string[]): string => build('  - name: renew', '    placements: [web_banner]', '    content:', '      web_banner:', ...content);

function issues(source: string): BlueprintIssue[] {
  try {
    parseBlueprint(source, 'bp.yaml');
  } catch (e) {
    if (e instanceof BlueprintError) return e.issues;
    throw e;
  }
  throw new Error('expected the blueprint to be rejected');
}

describe('templates in a blueprint are parsed at load', () => {
  it('accepts valid templates, variants included', () => {
    const { warnings } = parseBlueprint(
      offer(
        `        headline: 'Hi {{ profile.traits.first_name | default: "there" }}'`,
        '        body: |',
        '          {% if profile.traits.plan == "vip" %}Thanks{% endif %}',
        '        variants:',
        '          - { segment: vip, headline: "VIP {{ profile.traits.first_name }}" }',
      ),
      'bp.yaml',
    );
    expect(warnings.filter((w) => w.code.startsWith('CAIRN_ERR_TEMPLATE'))).toEqual([]);
  });

  it('reports a syntax error inside a literal block scalar at the file line and column', () => {
    const bad = '            {{ profile.traits.first_name | upcse }}';
    const [issue, ...rest] = issues(offer('        headline: Hello', '        body: |', '          <p>Hello,</p>', '          <p>', bad, '          </p>'));
    expect(rest).toEqual([]);
    expect(issue?.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect(issue?.file).toBe('bp.yaml');
    expect(issue?.line).toBe(head.length + 4 + 5);
    expect(issue?.column).toBe(bad.indexOf('upcse') + 1);
    expect(issue?.message).toContain('offers[0].content.web_banner.body');
    expect(issue?.message).toContain('"upcase"');
    expect(issue?.frame).toContain(bad);
  });

  it('reports inside a folded block scalar on the right line', () => {
    const bad = '          and {% if profile.id %} never closed';
    const [issue] = issues(offer('        body: >', '          First line', '          second line', bad));
    expect(issue?.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect([issue?.line, issue?.column]).toEqual([head.length + 4 + 4, bad.indexOf('{%') + 1]);
  });

  it('reports inside a double-quoted scalar in a flow mapping', () => {
    const line = '          - { segment: vip, headline: "VIP {{ profile.traits.first_name | bogus }}" }';
    const [issue] = issues(offer('        headline: Hi', '        variants:', line));
    expect(issue?.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect(issue?.message).toContain('offers[0].content.web_banner.variants[0].headline');
    expect([issue?.line, issue?.column]).toEqual([head.length + 7, line.indexOf('bogus') + 1]);
  });

  it('reports inside a long double-quoted line that an escape sequence stops matching early', () => {
    // The escape (\t) makes the line differ from the value after 4 characters; the error is far
    // behind it, on the same line.
    const filler = 'x'.repeat(60_000);
    const line = `        headline: "Tab\\there ${filler} {{ profile.id | nope }}"`;
    const [issue] = issues(offer(line));
    expect(issue?.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    // The match stops at the escape, so the position falls back to the last matched text on that line.
    expect(issue?.line).toBe(head.length + 5);
  });

  it('reports inside a plain scalar that continues on the next line', () => {
    const second = '          {{ profile.id | nope }}';
    const [issue] = issues(offer('        headline: Hello there', second));
    expect([issue?.line, issue?.column]).toEqual([head.length + 6, second.indexOf('nope') + 1]);
  });

  it('refuses an include (no file system) in the url of a call to action, at its spot', () => {
    const line = `        cta: { label: Go, url: 'https://x.test/{% include "secrets" %}' }`;
    const [issue] = issues(offer('        headline: Hi', line));
    expect(issue?.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect(issue?.message).toContain('cta.url');
    expect([issue?.line, issue?.column]).toEqual([head.length + 6, line.indexOf('{% include') + 1]);
  });

  it('warns about a trait no contract declares and a variable templates do not get', () => {
    const line = '        headline: Hi {{ profile.traits.firstname }} {{ profle.id }}';
    const { warnings } = parseBlueprint(offer(line), 'bp.yaml');
    const found = warnings.filter((w) => w.code === 'CAIRN_ERR_TEMPLATE_UNKNOWN');
    expect(found.map((w) => [w.line, w.column, w.severity])).toEqual([
      [head.length + 5, line.indexOf('firstname') + 1, 'warning'],
      [head.length + 5, line.indexOf('profle') + 1, 'warning'],
    ]);
    expect(found[0]?.message).toContain('"first_name"');
    expect(found[1]?.message).toContain('"profile"');
  });
});
