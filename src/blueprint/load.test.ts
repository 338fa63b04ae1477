import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isCairnError, type ErrorCode } from '../core/index.js';
import { BlueprintError, parseBlueprint, type BlueprintIssue } from './index.js';

/**
 * Each class of blueprint mistake: the code, the line and column of the spot, and a code frame
 * whose `^` sits under it. Sources are built from lines so positions are easy to check by eye.
 */

const FILE = 'shop.yaml';
const HEAD = ['version: 1', 'workspace:', '  name: Test'];
const doc = (...lines: string[]): string => [...HEAD, ...lines].join('\n') + '\n';

function issuesOf(source: string): BlueprintIssue[] {
  try {
    parseBlueprint(source, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(BlueprintError);
    const err = e as BlueprintError;
    expect(isCairnError(err)).toBe(true);
    // The thrown error carries the first issue's code and lists every issue in its message.
    expect(err.code).toBe(err.issues[0]?.code);
    for (const i of err.issues) expect(err.message).toContain(`${i.file}:${i.line}:${i.column}`);
    return err.issues;
  }
  throw new Error('expected the blueprint to be rejected');
}

/** Checks the frame marks `line` and puts the caret under `column` of that line's text. */
function expectFrame(issue: BlueprintIssue, source: string): void {
  const lines = issue.frame.split('\n');
  const marked = lines.findIndex((l) => l.startsWith('>'));
  expect(marked, issue.frame).toBeGreaterThanOrEqual(0);
  const markedLine = lines[marked] as string;
  const [gutter = '', text = ''] = markedLine.split(/ \| (.*)/s);
  expect(Number(gutter.replace('>', '').trim())).toBe(issue.line);
  expect(text).toBe(source.split('\n')[issue.line - 1]);
  const caretLine = lines[marked + 1] ?? '';
  const bar = caretLine.indexOf('|');
  expect(caretLine.trim().endsWith('^'), issue.frame).toBe(true);
  expect(caretLine.indexOf('^') - (bar + 2), issue.frame).toBe(issue.column - 1);
}

interface Case {
  name: string;
  source: string;
  code: ErrorCode;
  line: number;
  column: number;
  /** Data the message must carry (a suggested key, the allowed values), not its wording. */
  mentions?: string[];
}

const CASES: Case[] = [
  {
    name: 'YAML syntax: tab indentation',
    source: ['version: 1', 'workspace:', '\tname: Test'].join('\n') + '\n',
    code: 'CAIRN_ERR_BLUEPRINT_YAML',
    line: 3,
    column: 1,
  },
  {
    name: 'YAML syntax: unclosed quote points at the opening quote',
    source: doc('identity:', '  keys:', '    - name: "email', '    - name: phone'),
    code: 'CAIRN_ERR_BLUEPRINT_YAML',
    line: 6,
    column: 13,
  },
  {
    name: 'YAML syntax: unclosed flow list points at its bracket',
    source: doc('consent:', '  purposes: [a, b', 'sources: []'),
    code: 'CAIRN_ERR_BLUEPRINT_YAML',
    line: 5,
    column: 13,
  },
  {
    name: 'duplicate key at the top level',
    source: doc('workspace:', '  name: Again'),
    code: 'CAIRN_ERR_BLUEPRINT_YAML',
    line: 4,
    column: 1,
  },
  {
    name: 'duplicate key inside a section',
    source: ['version: 1', 'workspace:', '  name: Test', '  timezone: UTC', '  name: Other'].join('\n') + '\n',
    code: 'CAIRN_ERR_BLUEPRINT_YAML',
    line: 5,
    column: 3,
  },
  {
    name: 'unknown top-level key suggests the closest',
    source: doc('compted_traits:', '  - name: orders', '    kind: count'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 4,
    column: 1,
    mentions: ['"compted_traits"', '"computed_traits"'],
  },
  {
    name: 'unknown nested key suggests the closest',
    source: doc('identity:', '  keys:', '    - name: email', '      normalise: email'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 7,
    column: 7,
    mentions: ['"normalise"', '"normalize"'],
  },
  {
    name: 'wrong type: text where a boolean belongs',
    source: doc('identity:', '  keys:', '    - name: email', '      authenticated: yes please'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 7,
    column: 22,
    mentions: ['identity.keys[0].authenticated', 'boolean'],
  },
  {
    name: 'wrong type: text where an integer belongs',
    source: doc('identity:', '  max_identities_per_profile: many', '  keys:', '    - name: email'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 5,
    column: 31,
    mentions: ['integer'],
  },
  {
    name: 'wrong type: a list where a section belongs',
    source: ['version: 1', 'workspace: [Test]'].join('\n') + '\n',
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 2,
    column: 12,
    mentions: ['object'],
  },
  {
    name: 'bad enum value lists the allowed ones and the closest',
    source: doc('computed_traits:', '  - name: orders', '    kind: cout'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 6,
    column: 11,
    mentions: ['"count"', 'first_seen', 'last_seen'],
  },
  {
    name: 'unsupported format version',
    source: ['version: 2', 'workspace:', '  name: Test'].join('\n') + '\n',
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 1,
    column: 10,
  },
  {
    name: 'bad duration pattern',
    source: doc('computed_traits:', '  - name: orders_60d', '    kind: count', '    window: 60 days'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 7,
    column: 13,
    mentions: ['computed_traits[0].window'],
  },
  {
    name: 'missing required key in a section',
    source: ['version: 1', 'workspace:', '  timezone: UTC'].join('\n') + '\n',
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 3,
    column: 3,
    mentions: ['"name"'],
  },
  {
    name: 'missing required key in a list item',
    source: doc('computed_traits:', '  - name: orders', '    event: Order Completed'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 5,
    column: 5,
    mentions: ['"kind"'],
  },
  {
    name: 'missing required top-level section',
    source: 'version: 1\n',
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 1,
    column: 1,
    mentions: ['"workspace"'],
  },
  {
    name: 'duplicate names point at the second one',
    source: doc('computed_traits:', '  - name: orders', '    kind: count', '  - name: orders', '    kind: count'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 11,
    mentions: ['"orders"'],
  },
  {
    name: 'duplicate identity keys',
    source: doc('identity:', '  keys:', '    - name: email', '    - name: email'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 13,
  },
  {
    name: 'duplicate consent purposes',
    source: doc('consent:', '  purposes:', '    - name: marketing', '    - name: marketing'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 13,
  },
  {
    name: 'webhook source without preset or mapping',
    source: doc('sources:', '  - name: crm', '    type: webhook'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 5,
    column: 5,
    mentions: ['"crm"'],
  },
  {
    name: 'unknown preset suggests the closest',
    source: doc('sources:', '  - name: crm', '    type: webhook', '    preset: crm-contacts'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 13,
    mentions: ['"crm-contacts"', '"crm-contact"'],
  },
  {
    name: 'computed sum without property',
    source: doc('computed_traits:', '  - name: revenue_60d', '    kind: sum', '    event: Order Completed', '    window: 60d'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 5,
    column: 5,
    mentions: ['"revenue_60d"', 'property'],
  },
  {
    name: 'track mapping rule without event',
    source: doc('sources:', '  - name: shop', '    type: webhook', '    mapping:', '      - type: track', '        userId: ${customer.id}'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 8,
    column: 9,
  },
];

describe('blueprint errors point at the spot', () => {
  it.each(CASES)('$name → $code at $line:$column', (c) => {
    const issues = issuesOf(c.source);
    const first = issues[0] as BlueprintIssue;
    expect({ code: first.code, file: first.file, line: first.line, column: first.column }).toEqual({ code: c.code, file: FILE, line: c.line, column: c.column });
    for (const m of c.mentions ?? []) expect(first.message).toContain(m);
    expectFrame(first, c.source);
  });

  it('reports every schema problem in one error, each at its own spot', () => {
    const source = doc('identity:', '  keys:', '    - name: email', '      normalise: email', 'computed_traits:', '  - name: orders', '    kind: cout');
    const issues = issuesOf(source);
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([
      ['CAIRN_ERR_BLUEPRINT_SCHEMA', 7, 7],
      ['CAIRN_ERR_BLUEPRINT_SCHEMA', 10, 11],
    ]);
    for (const i of issues) expectFrame(i, source);
  });

  it('reports every reference problem in one error, in file order', () => {
    const source = doc('sources:', '  - name: crm', '    type: webhook', '  - name: crm', '    preset: shop-ordr', 'computed_traits:', '  - name: last_order', '    kind: last');
    const issues = issuesOf(source);
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([
      ['CAIRN_ERR_BLUEPRINT_REFERENCE', 5, 5],
      ['CAIRN_ERR_BLUEPRINT_REFERENCE', 7, 11],
      ['CAIRN_ERR_BLUEPRINT_REFERENCE', 8, 13],
      ['CAIRN_ERR_BLUEPRINT_REFERENCE', 10, 5],
    ]);
  });

  it('counts columns in characters on lines with non-ASCII text', () => {
    const source = ['version: 1', 'workspace:', '  name: Café Ünïcode', '  tmezone: UTC'].join('\n') + '\n';
    const first = issuesOf(source)[0] as BlueprintIssue;
    expect([first.code, first.line, first.column]).toEqual(['CAIRN_ERR_BLUEPRINT_SCHEMA', 4, 3]);
    expect(first.message).toContain('"timezone"');
  });
});

describe('valid blueprints', () => {
  it('loads the demo blueprint without problems', () => {
    const path = 'examples/demo/blueprint.yaml';
    const { blueprint } = parseBlueprint(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'), path);
    expect(blueprint.version).toBe(1);
    expect(blueprint.workspace.name).toBe('Demo Shop');
    expect(blueprint.computed_traits?.length).toBeGreaterThan(0);
  });

  it('accepts the smallest blueprint', () => {
    expect(parseBlueprint(doc(), FILE).blueprint.workspace.name).toBe('Test');
  });
});
