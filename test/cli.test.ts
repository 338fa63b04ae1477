import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { pino } from 'pino';
import { loadConfig } from '../src/core/index.js';
import { createRuntime } from '../src/runtime.js';
import { buildApp } from '../src/server/index.js';
import { ENGINES } from './helpers/stores.js';
import { cli, ensureBuilt, basicAuth, ROOT } from './helpers/process.js';

/**
 * The built `cairn` command as a user runs it: a child process per command, against a fresh
 * database of each engine. Keys the CLI prints are tried against the HTTP API (in process, on the
 * same database), so "prints a key" means "prints a key that works".
 */

type Result = Awaited<ReturnType<typeof cli>>;

const show = (r: Result): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

let tmp: string;

beforeAll(async () => {
  await ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'cairn-cli-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs `fn` against the HTTP API of a fresh runtime on `url` (fresh: no cached key lookups). */
interface Api {
  inject(req: { method: 'GET' | 'POST'; url: string; headers?: Record<string, string>; body?: unknown }): Promise<{ status: number; json: () => unknown }>;
}

async function withApi<T>(url: string, fn: (api: Api) => Promise<T>): Promise<T> {
  const rt = await createRuntime(loadConfig({ CAIRN_DATABASE_URL: url, CAIRN_LOG_LEVEL: 'silent', CAIRN_DEMO: 'false', CAIRN_SQLITE_SYNCHRONOUS: 'NORMAL' }), { log: pino({ level: 'silent' }) });
  const app = await buildApp(rt);
  try {
    await app.ready();
    return await fn({
      async inject(req) {
        const res = await app.inject({ method: req.method, url: req.url, headers: { 'content-type': 'application/json', ...req.headers }, payload: req.body === undefined ? undefined : JSON.stringify(req.body) });
        return { status: res.statusCode, json: () => res.json() as unknown };
      },
    });
  } finally {
    await app.close();
    await rt.close();
  }
}

describe.each(ENGINES)('cairn on $name', (engine) => {
  let db: { url: string; cleanup(): Promise<void> };
  const run = (args: string[], env: Record<string, string> = {}): Promise<Result> => cli(args, { CAIRN_DATABASE_URL: db.url, ...env });

  beforeAll(async () => {
    db = await engine.freshUrl();
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  let writeKey = '';
  let writeKeyId = '';

  it('migrate applies the migrations, then finds nothing to do', async () => {
    const first = await run(['migrate']);
    expect(first.code, show(first)).toBe(0);
    expect(first.stdout).toMatch(/^Applied: \S+/m);
    const second = await run(['migrate']);
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toMatch(/up to date/);
    expect(second.stdout).not.toMatch(/Applied/);
  });

  it('workspace apply creates a workspace from the demo blueprint', async () => {
    const r = await run(['workspace', 'apply', 'examples/demo/blueprint.yaml']);
    expect(r.code, show(r)).toBe(0);
    const list = await run(['workspace', 'list']);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toContain('demo');
    expect(list.stdout).toContain('Demo Shop');
  });

  it('keys create --kind write prints a key that authenticates', async () => {
    const r = await run(['keys', 'create', '--kind', 'write', '--name', 'web']);
    expect(r.code, show(r)).toBe(0);
    writeKey = r.stdout.trim();
    expect(writeKey).toMatch(/^\S{16,}$/);
    await withApi(db.url, async (api) => {
      const ok = await api.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basicAuth(writeKey) }, body: { userId: 'cli-user-1', traits: { email: 'Cli.User@Example.com', first_name: 'Ana' } } });
      expect(ok.status).toBe(200);
      const wrong = await api.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basicAuth(`${writeKey}x`) }, body: { userId: 'cli-user-1', event: 'Nope' } });
      expect(wrong.status).toBe(401);
      expect((wrong.json() as { code: string }).code).toBe('CAIRN_ERR_AUTH_INVALID');
    });
  });

  it('keys list shows write keys whole and secret keys as a prefix only', async () => {
    const secret = await run(['keys', 'create', '--kind', 'secret', '--name', 'server']);
    expect(secret.code, show(secret)).toBe(0);
    const secretKey = secret.stdout.trim();
    const r = await run(['keys', 'list', '--json']);
    expect(r.code, show(r)).toBe(0);
    const keys = JSON.parse(r.stdout) as { id: string; kind: string; name: string; display: string; revokedAt: string | null }[];
    const w = keys.find((k) => k.kind === 'write' && k.name === 'web');
    const s = keys.find((k) => k.kind === 'secret' && k.name === 'server');
    expect(w?.display).toBe(writeKey);
    expect(s).toBeDefined();
    expect(secretKey.startsWith((s?.display ?? 'x').replace(/…$/, ''))).toBe(true);
    expect(s?.display.length).toBeLessThan(secretKey.length);
    expect(r.stdout).not.toContain(secretKey);
    writeKeyId = w?.id ?? '';
  });

  it('profile by identity prints the profile as JSON', async () => {
    const r = await run(['profile', 'email:cli.user@example.com']);
    expect(r.code, show(r)).toBe(0);
    const p = JSON.parse(r.stdout) as { id: string; identities: { kind: string; value: string }[]; traits: Record<string, unknown> };
    expect(p.identities).toEqual(expect.arrayContaining([{ kind: 'user_id', value: 'cli-user-1' }, { kind: 'email', value: 'cli.user@example.com' }]));
    expect(p.traits.first_name).toBe('Ana');
  });

  it('profile of an unknown customer exits non-zero with CAIRN_ERR_PROFILE_NOT_FOUND', async () => {
    const r = await run(['profile', 'email:nobody@example.com']);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toContain('CAIRN_ERR_PROFILE_NOT_FOUND');
    expect(r.stdout.trim()).toBe('');
  });

  it('keys revoke ID makes the key fail', async () => {
    const r = await run(['keys', 'revoke', writeKeyId]);
    expect(r.code, show(r)).toBe(0);
    await withApi(db.url, async (api) => {
      const res = await api.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basicAuth(writeKey) }, body: { userId: 'cli-user-1', event: 'After Revoke' } });
      expect(res.status).toBe(401);
      expect((res.json() as { code: string }).code).toBe('CAIRN_ERR_AUTH_INVALID');
    });
  });

  it('workspace apply of a broken blueprint exits non-zero and prints file:line:column', async () => {
    const file = join(tmp, `broken-${engine.name}.yaml`);
    writeFileSync(file, ['version: 1', 'workspace:', '  name: Broken', 'computed_traits:', '  - name: orders', '    kind: cout', ''].join('\n'));
    const r = await run(['workspace', 'apply', file, '--workspace', 'broken']);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toContain('CAIRN_ERR_BLUEPRINT_SCHEMA');
    expect(r.stderr).toContain(`${file}:6:11`);
    expect(r.stderr).toMatch(/^\s+\|\s+\^$/m);
  });
});

describe('configuration errors', () => {
  it('a bad environment prints every violation and exits non-zero', async () => {
    const db = join(tmp, 'never-created.db');
    const r = await cli(['migrate'], { CAIRN_DATABASE_URL: db, PORT: 'eighty', CAIRN_DEDUPE_WINDOW: 'a week', CAIRN_DEMO: 'maybe', CAIRN_LOG_LEVEL: 'loud' });
    expect(existsSync(db)).toBe(false);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toContain('CAIRN_ERR_CONFIG');
    for (const name of ['PORT', 'CAIRN_DEDUPE_WINDOW', 'CAIRN_DEMO', 'CAIRN_LOG_LEVEL']) expect(r.stderr, name).toContain(`${name}=`);
  });
});

describe('cairn schema', () => {
  const demo = parseYaml(readFileSync(join(ROOT, 'examples/demo/blueprint.yaml'), 'utf8')) as Record<string, unknown>;

  it('prints a JSON Schema that accepts the demo blueprint and rejects mistakes', async () => {
    const r = await cli(['schema'], {});
    expect(r.code, show(r)).toBe(0);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.title).toEqual(expect.any(String));
    expect(schema.description).toEqual(expect.any(String));
    expect(r.stdout).toContain('"description": "Identity keys in precedence order."');

    // An independent validator (Ajv, strict: unknown keywords are errors) must accept the schema itself.
    const ajv = new Ajv({ strict: true, allErrors: true });
    const validate = ajv.compile(schema);
    expect(validate(demo), JSON.stringify(validate.errors)).toBe(true);

    const withUnknownKey = { ...demo, compted_traits: [] };
    expect(validate(withUnknownKey)).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ keyword: 'additionalProperties', params: { additionalProperty: 'compted_traits' } }));

    const nestedUnknown = { ...demo, workspace: { name: 'x', timezon: 'UTC' } };
    expect(validate(nestedUnknown)).toBe(false);

    const badEnum = { ...demo, computed_traits: [{ name: 'orders', kind: 'cout' }] };
    expect(validate(badEnum)).toBe(false);

    const { workspace: _omitted, ...missing } = demo;
    void _omitted;
    expect(validate(missing)).toBe(false);
  });

  it('--out writes the same schema to a file', async () => {
    const out = join(tmp, 'nested', 'blueprint.schema.json');
    const r = await cli(['schema', '--out', out], {});
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('');
    const printed = await cli(['schema'], {});
    expect(readFileSync(out, 'utf8')).toBe(printed.stdout);
  });
});
