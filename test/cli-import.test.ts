import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { openStore } from '../src/store/index.js';

/**
 * `cairn import` as a user runs it: the built CLI against a SQLite file, in a child process.
 * Builds first so dist matches the source under test.
 */
const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-import-'));
const dbPath = join(dir, 'cairn.db');
const env = { ...process.env, CAIRN_DATABASE_URL: dbPath, CAIRN_DEMO: 'false', CAIRN_LOG_LEVEL: 'warn', CAIRN_SQLITE_SYNCHRONOUS: 'NORMAL' };

function cairn(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/cairn.js', ...args], { cwd: root, env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function eventCount(source: string): Promise<number> {
  const store = openStore(dbPath);
  try {
    const r = await store.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', 'demo').where('source', '=', source).executeTakeFirst();
    return Number(r?.n ?? 0);
  } finally {
    await store.destroy();
  }
}

function eventsFile(name: string, n: number, bad: ReadonlySet<number> = new Set()): string {
  let s = '';
  for (let i = 1; i <= n; i++) {
    s += bad.has(i) ? '{"type": "track", oops\n' : `${JSON.stringify({ type: 'track', userId: `cli-${i % 500}`, event: 'Product Viewed', properties: { category: 'shoes' }, timestamp: new Date(Date.UTC(2026, 9, 1) + i * 1000).toISOString() })}\n`;
  }
  const p = join(dir, name);
  writeFileSync(p, s);
  return p;
}

const SUMMARY = /imported ([\d,]+), duplicates ([\d,]+), rejected ([\d,]+); [\d,]+ rows\/s, [\d.]+ s/;

beforeAll(() => {
  try {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    // tsc still emits on type errors elsewhere in the tree; only a missing CLI stops this file.
    if (!existsSync(join(root, 'dist/cli/main.js'))) throw e;
  }
  const applied = cairn('workspace', 'apply', 'examples/demo/blueprint.yaml', '--workspace', 'demo');
  expect(applied.status, applied.stderr).toBe(0);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cairn import', () => {
  it('imports the demo events and profiles, then a profile shows both', () => {
    const ev = cairn('import', 'examples/demo/events.ndjson', '--errors', join(dir, 'ev.errors.ndjson'));
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(SUMMARY);
    expect(SUMMARY.exec(ev.stdout)?.slice(1, 4)).toEqual(['30', '0', '0']);
    const pr = cairn('import', 'examples/demo/profiles.csv', '--errors', join(dir, 'pr.errors.ndjson'));
    expect(pr.status, pr.stderr).toBe(0);
    expect(SUMMARY.exec(pr.stdout)?.slice(1, 4)).toEqual(['8', '0', '0']);

    const show = cairn('profile', 'email:ana.silva@example.com', '--events', '0');
    expect(show.status, show.stderr).toBe(0);
    const profile = JSON.parse(show.stdout) as { traits: Record<string, unknown>; identities: { kind: string; value: string }[]; computed: Record<string, unknown> };
    expect(profile.traits).toMatchObject({ first_name: 'Ana', plan: 'gold', lifetime_value: 1240.5, newsletter: true });
    expect(profile.identities).toContainEqual({ kind: 'anonymous_id', value: 'anon-7f3a' });
    expect(profile.computed).toMatchObject({ last_order_value: expect.any(Number) });
  });

  it('skips a finished file on a re-run and finds only duplicates with --force', () => {
    const again = cairn('import', 'examples/demo/events.ndjson', '--errors', join(dir, 'ev.errors.ndjson'));
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/was already imported into demo/);
    const forced = cairn('import', 'examples/demo/events.ndjson', '--force', '--json', '--errors', join(dir, 'ev.errors.ndjson'));
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ status: 'completed', accepted: 0, duplicates: 30, rejected: 0 });
  });

  it('writes rejected rows to the error report and still exits 0', async () => {
    const path = eventsFile('some-bad.ndjson', 40, new Set([7, 31]));
    const r = cairn('import', path, '--source', 'bad-rows', '--batch', '10');
    expect(r.status, r.stderr).toBe(0);
    expect(SUMMARY.exec(r.stdout)?.slice(1, 4)).toEqual(['38', '0', '2']);
    expect(r.stdout).toContain(`${path}.errors.ndjson`);
    const errs = readFileSync(`${path}.errors.ndjson`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; code: string });
    expect(errs.map((e) => [e.line, e.code])).toEqual([
      [7, 'CAIRN_ERR_IMPORT_ROW'],
      [31, 'CAIRN_ERR_IMPORT_ROW'],
    ]);
    expect(await eventCount('bad-rows')).toBe(38);
  });

  it('fails with a coded error on a file it cannot read', () => {
    const p = join(dir, 'people.xlsx');
    writeFileSync(p, 'x');
    const r = cairn('import', p);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^CAIRN_ERR_IMPORT_FORMAT/m);
    const noWs = cairn('import', 'examples/demo/events.ndjson', '--workspace', 'nope');
    expect(noWs.status).toBe(2);
    expect(noWs.stderr).toMatch(/^CAIRN_ERR_WORKSPACE_NOT_FOUND/m);
  });

  it('resumes after kill -9 mid-import and ends with every row exactly once', async () => {
    const path = eventsFile('crash.ndjson', 20_000);
    const child = spawn(process.execPath, ['bin/cairn.js', 'import', path, '--source', 'crash', '--batch', '500'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
    let stderr = '';
    // The first plain progress line comes right after the first committed batch.
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('import: line')) child.kill('SIGKILL');
    });
    const killed = await exit;
    expect(killed.signal, stderr).toBe('SIGKILL');
    const before = await eventCount('crash');
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(20_000);

    const r = cairn('import', path, '--source', 'crash', '--batch', '500', '--json');
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { status: string; accepted: number; duplicates: number; rejected: number; resumedFrom?: { line: number } };
    expect(result.status).toBe('completed');
    expect(result.resumedFrom?.line).toBeGreaterThan(1);
    expect(result.rejected).toBe(0);
    // Whatever the kill interrupted, the file's rows are stored exactly once.
    expect(before + result.accepted).toBe(20_000);
    expect(result.duplicates).toBeLessThanOrEqual(500);
    expect(await eventCount('crash')).toBe(20_000);
  });
});
