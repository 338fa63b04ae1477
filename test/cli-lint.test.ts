import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt } from './helpers/process.js';

/**
 * `cairn lint` end to end: which file it reads, what it prints, and its exit code. Each launch costs
 * about a second, so each case checks several things; the rules themselves are tested in
 * src/blueprint/lint.test.ts.
 */

const HEAD = `version: 1
workspace: { name: Lint }
sources:
  - name: web
    contract:
      events: [{ name: Order Completed }]
      traits: { plan: { type: string }, age: { type: number } }
`;

/** Loads; one warning (a double negation) and one info (a segment nothing uses). */
const WARNS = `${HEAD}segments:\n  - { name: gold, condition: '!!(traits.plan == "gold")' }\n`;
/** Loads; one error: a condition that can never hold. */
const ERRS = `${HEAD}segments:\n  - { name: teens, condition: 'traits.age > 15 && traits.age < 13' }\n  - { name: buyers, condition: 'in_segment("teens") || count("Order Completed") >= 1' }\n`;
/** "LINE:COLUMN" of the first occurrence of `needle` in `yaml` (1-based). */
function spot(yaml: string, needle: string): string {
  const before = yaml.slice(0, yaml.indexOf(needle)).split('\n');
  return `${before.length}:${(before[before.length - 1] ?? '').length + 1}`;
}

/** Does not load: two segments read each other. */
const CYCLE = `${HEAD}segments:\n  - { name: a, condition: 'in_segment("b")' }\n  - { name: b, condition: 'in_segment("a")' }\n`;

describe('cairn lint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-lint-'));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const warns = file('warns.yaml', WARNS);
  const errs = file('errs.yaml', ERRS);
  const cycle = file('cycle.yaml', CYCLE);

  beforeAll(async () => ensureBuilt(), 180_000);

  it('reads CAIRN_BLUEPRINT when no file is given, prints findings like validate, and exits 0 on warnings', async () => {
    const r = await cli(['lint'], { CAIRN_BLUEPRINT: warns });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${warns}:${spot(WARNS, '!!')}: warning: segments[0].condition: \`!!(traits.plan == "gold")\` is a double negation; write \`traits.plan == "gold"\` [negation-heavy]`);
    expect(r.stdout).toMatch(/> +9 \| .*\n +\| +\^/);
    expect(r.stdout).toContain('[unused-segment]');
    expect(r.stdout).toContain(`${warns}: 0 errors, 1 warning, 1 info (9 rules run)`);
  });

  it('--strict fails on warnings; --json prints the findings and counts', async () => {
    const r = await cli(['lint', warns, '--strict', '--json'], {});
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { file: string; valid: boolean; counts: Record<string, number>; findings: { rule: string; severity: string; line: number; column: number; where?: string }[] };
    expect(out.valid).toBe(true);
    expect(out.counts).toEqual({ error: 0, warning: 1, info: 1 });
    expect(out.findings.map((f) => [f.rule, f.severity, f.line, f.column, f.where])).toEqual([
      ['unused-segment', 'info', ...spot(WARNS, 'gold,').split(':').map(Number), 'segments[0].name'],
      ['negation-heavy', 'warning', ...spot(WARNS, '!!').split(':').map(Number), 'segments[0].condition'],
    ]);
  });

  it('exits 1 on an error, and --rule runs only the rules named', async () => {
    const all = await cli(['lint', errs], {});
    expect(all.code).toBe(1);
    expect(all.stdout).toContain(`${errs}:${spot(ERRS, 'traits.age > 15')}: error: segments[0].condition: \`traits.age > 15\` and \`traits.age < 13\` cannot both hold, so the condition never holds [condition-contradiction]`);
    expect(all.stdout).toContain('1 error, 0 warnings, 1 info (9 rules run)');
    const some = await cli(['lint', errs, '--rule', 'negation-heavy', 'unused-segment'], {});
    expect(some.code).toBe(0);
    expect(some.stdout).toContain(`${errs}: 0 errors, 0 warnings, 1 info (2 rules run)`);
    expect(some.stdout).not.toContain('[condition-contradiction]');
  });

  it('prints load errors as validate does and exits 1 when the blueprint does not load; a bad rule id is a usage error', async () => {
    const r = await cli(['lint', cycle], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cycle}:${spot(CYCLE, 'in_segment("b")')}: segments[0].condition: segment "a" depends on itself through in_segment(): a → b → a`);
    expect(r.stderr).toContain('[CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE]');
    expect(r.stdout).toBe('');
    const bad = await cli(['lint', warns, '--rule', 'negation-heavvy'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CAIRN_ERR_LINT_RULE');
    expect(bad.stderr).toContain('did you mean "negation-heavy"');
  });
});
