import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt } from './helpers/process.js';

describe('cairn validate', () => {
  beforeAll(async () => ensureBuilt(), 180_000);

  it('accepts the shipped examples and counts their compiled conditions', async () => {
    const r = await cli(['validate', 'examples/retail/blueprint.yaml', 'examples/saas/blueprint.yaml'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/retail\/blueprint\.yaml: valid \(\d+ conditions compiled\)/);
  });

  it('rejects a condition naming an undeclared segment, at file:line:column, with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-validate-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `version: 1\nworkspace: { name: T }\nsegments:\n  - { name: vip, condition: 'in_segment("vpi")' }\n`);
    const r = await cli(['validate', file], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:4:42:`);
    expect(r.stderr).toContain('CAIRN_ERR_CONDITION_UNKNOWN');
  });

  it('--strict fails on warnings', async () => {
    // Without any data contract, an event name cannot be checked: a warning, not an error.
    const dir = mkdtempSync(join(tmpdir(), 'cairn-validate-'));
    const file = join(dir, 'loose.yaml');
    writeFileSync(file, `version: 1\nworkspace: { name: T }\ncomputed_traits:\n  - { name: views, kind: count, event: Product Viewed }\n`);
    const r = await cli(['validate', '--strict', file], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:4:40: warning:`);
  });
});
