import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { BlueprintError, blueprintSymbols, collectConditions, collectTemplates, lintBlueprint, parseBlueprint, resolveModel, type Blueprint, type LoadedBlueprint } from '../src/blueprint/index.js';
import { blueprintJsonSchema, PROJECT_ROOT } from '../src/cli/docs-gen.js';

/**
 * The example blueprints ship with Cairn and are what a consultant copies first, so each must load
 * without a single error — and the four industry examples without a warning either. Deleting an
 * example, or adding one without listing it here, fails this file.
 */

const INDUSTRY_EXAMPLES = { retail: 'retail', saas: 'saas', insurance: 'insurance', marketplace: 'marketplace' } as const;
const EXAMPLES = ['demo', ...Object.keys(INDUSTRY_EXAMPLES)];

const pathOf = (name: string): string => `examples/${name}/blueprint.yaml`;

const loaded = new Map<string, LoadedBlueprint>();

/** Loads an example once; a broken one fails each test that reads it, with every problem listed. */
function load(name: string): LoadedBlueprint {
  const hit = loaded.get(name);
  if (hit) return hit;
  const path = pathOf(name);
  const source = readFileSync(join(PROJECT_ROOT, path), 'utf8');
  // parseBlueprint throws a BlueprintError whose message lists every problem with file:line:column.
  const result = parseBlueprint(source, path);
  loaded.set(name, result);
  return result;
}

describe('the examples directory', () => {
  it('holds exactly the listed examples, each with a blueprint.yaml', () => {
    const dirs = readdirSync(join(PROJECT_ROOT, 'examples'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(dirs).toEqual([...EXAMPLES].sort());
    for (const name of EXAMPLES) expect(existsSync(join(PROJECT_ROOT, pathOf(name))), pathOf(name)).toBe(true);
  });
});

describe.each(EXAMPLES)('examples/%s', (name) => {
  it('loads without errors, and builds the engine model', () => {
    const { blueprint } = load(name);
    expect(blueprint.version).toBe(1);
    const model = resolveModel(blueprint);
    expect(model.name).toBe(blueprint.workspace.name);
  });

  it('is accepted by an independent JSON Schema validator', () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    const validate = ajv.compile(blueprintJsonSchema());
    const data: unknown = parseYaml(readFileSync(join(PROJECT_ROOT, pathOf(name)), 'utf8'));
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true);
  });

  it('lints clean: no lint error or warning (`cairn lint`; info is allowed)', () => {
    const { findings } = lintBlueprint(load(name));
    expect(findings.filter((f) => f.severity !== 'info').map((f) => `${f.file}:${f.line}:${f.column}: ${f.severity}: ${f.message} [${f.rule}]`)).toEqual([]);
  });

  it('gives every condition and template a position in the file', () => {
    const { blueprint, locator } = load(name);
    for (const c of [...collectConditions(blueprint), ...collectTemplates(blueprint)]) {
      expect(c.source.trim().length, c.where).toBeGreaterThan(0);
      expect(locator.position(c.path), c.where).toBeDefined();
    }
  });
});

describe.each(Object.entries(INDUSTRY_EXAMPLES))('industry example %s', (name, industry) => {
  it('loads without warnings: every event it names is declared in a contract', () => {
    const { blueprint: bp, warnings } = load(name);
    expect(warnings.map((w) => `${w.file}:${w.line}:${w.column}: ${w.message}`)).toEqual([]);
    expect(blueprintSymbols(bp).eventsChecked).toBe(true);
  });

  it('is a whole plan: every section is used', () => {
    const bp = load(name).blueprint;
    expect(bp.workspace.industry).toBe(industry);
    const filled: (keyof Blueprint)[] = ['identity', 'consent', 'sources', 'channels', 'policies', 'segments', 'stages', 'offers', 'journeys', 'experiments', 'rollout', 'kpis'];
    for (const key of filled) expect(bp[key], key).toBeDefined();
    expect(bp.sources?.some((s) => s.contract?.events?.length)).toBe(true);
    expect(bp.segments?.some((s) => s.persona)).toBe(true);
    expect(bp.offers?.every((o) => o.content && Object.keys(o.content).length > 0)).toBe(true);
    expect(bp.experiments?.global_control).toBeDefined();
    expect(bp.rollout?.phases.length).toBeGreaterThanOrEqual(2);
    expect(bp.rollout?.raci?.length).toBeGreaterThan(0);
    expect(bp.rollout?.assumptions?.length).toBeGreaterThan(0);
    expect(bp.rollout?.open_questions?.length).toBeGreaterThan(0);
    expect(bp.rollout?.standardize_before_scaling?.length).toBeGreaterThan(0);
    expect(bp.kpis?.every((k) => k.baseline !== k.target || k.metric.type === 'message')).toBe(true);
  });

  it('pauses marketing while a support ticket is open, and phases a channel in later', () => {
    const bp = load(name).blueprint;
    const pauses = bp.policies?.suppressions?.filter((s) => s.type === 'pause') ?? [];
    expect(pauses.some((s) => s.type === 'pause' && s.when.includes('Ticket Opened'))).toBe(true);
    const later = bp.channels?.filter((c) => c.live_from_phase !== undefined && c.live_from_phase !== bp.rollout?.phases[0]?.name) ?? [];
    expect(later.length).toBeGreaterThan(0);
  });

  it('writes conditions from observable signals', () => {
    const bp = load(name).blueprint;
    const conditions = collectConditions(bp);
    expect(conditions.length).toBeGreaterThan(10);
    expect(conditions.some((c) => /count\("[^"]+", "\d+d"\)/.test(c.source))).toBe(true);
    expect(conditions.some((c) => c.source.includes('in_segment('))).toBe(true);
  });
});

describe.each(Object.keys(INDUSTRY_EXAMPLES))('a broken copy of examples/%s', (name) => {
  const path = pathOf(name);
  const source = readFileSync(join(PROJECT_ROOT, path), 'utf8');
  const lines = source.split('\n');

  /** Applies `edit` to the first line after `after` that matches `pattern`; returns the changed source and its line number. */
  function breakLine(after: string, pattern: RegExp, edit: (line: string) => string): { broken: string; line: number } {
    const start = lines.indexOf(after);
    const index = lines.findIndex((l, i) => i > start && pattern.test(l));
    expect(start >= 0 && index > start, `${path}: no line matching ${String(pattern)} after "${after}"`).toBe(true);
    const copy = [...lines];
    copy[index] = edit(copy[index] as string);
    return { broken: copy.join('\n'), line: index + 1 };
  }

  function issuesOf(broken: string): { code: string; line: number; message: string }[] {
    try {
      parseBlueprint(broken, path);
    } catch (e) {
      expect(e).toBeInstanceOf(BlueprintError);
      return (e as BlueprintError).issues;
    }
    throw new Error('the broken copy loaded');
  }

  it('names a misspelt offer in a journey at its line, with the right name', () => {
    let offer = '';
    const { broken, line } = breakLine('journeys:', /^\s+offer: \w+$/, (l) => l.replace(/offer: (\w+)$/, (_, o: string) => ((offer = o), `offer: ${o}x`)));
    const issues = issuesOf(broken);
    expect(issues).toContainEqual(expect.objectContaining({ code: 'CAIRN_ERR_BLUEPRINT_REFERENCE', line }));
    expect(issues.find((i) => i.line === line)?.message).toContain(`did you mean "${offer}"`);
  });

  it('names an undeclared channel in a rollout phase at its line', () => {
    const { broken, line } = breakLine('rollout:', /^\s+channels: \[email/, (l) => l.replace('[email', '[emial'));
    expect(issuesOf(broken)).toContainEqual(expect.objectContaining({ code: 'CAIRN_ERR_BLUEPRINT_REFERENCE', line }));
  });

  it('names a misspelt step type at its line', () => {
    const { broken, line } = breakLine('journeys:', /^\s+type: send$/, (l) => l.replace('send', 'sned'));
    expect(issuesOf(broken)).toContainEqual(expect.objectContaining({ code: 'CAIRN_ERR_BLUEPRINT_SCHEMA', line }));
  });
});
