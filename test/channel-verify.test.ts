import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { ENGINES } from './helpers/stores.js';
import { startTestApp, type TestApp } from './helpers/runtime.js';
import { checkChannels } from '../src/cli/serve.js';
import { main } from '../src/cli/main.js';
import { upsertWorkspace, listWorkspaces } from '../src/governance/index.js';
import { openStore } from '../src/store/index.js';
import { deliveryPolicy } from '../src/delivery/index.js';

/**
 * Adapters' verify() at the two places a blueprint's channels meet this process: a serving process
 * checks every workspace at start (a warning per channel, the channel marked down), and
 * `cairn workspace apply` refuses a blueprint whose providers do not verify (exit code 1).
 */

const BROKEN = `version: 1
workspace:
  name: Broken channels
  timezone: UTC
channels:
  - name: email
    type: email
    provider: { name: smtp, settings: { host: smtp.example.com } }
  - name: sms
    type: sms
    provider: { name: twillio }
  - name: inbox
    type: in_app
`;

const FIXED = BROKEN.replace('settings: { host: smtp.example.com }', 'settings: { host: smtp.example.com, from: news@shop.example }').replace('provider: { name: twillio }', 'availability: planned\n    provider: { name: twillio }');

describe.each(ENGINES)('channel verification at start ($name)', (engine) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('logs a warning per failing channel and marks it down until the blueprint fixes it', async () => {
    t = await startTestApp(engine, { blueprint: BROKEN, env: { CAIRN_DISPATCH_INTERVAL: '0', CAIRN_JOURNEY_INTERVAL: '0' } });
    const lines: { msg: string; channel?: string; path?: string; code?: string; level: number }[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
    const rt = { ...t.rt, log };
    expect(await checkChannels(rt)).toBe(2);
    expect(lines.map((l) => [l.level, l.channel, l.path, l.code])).toEqual([
      [40, 'email', 'channels[0].provider.settings.from', 'CAIRN_ERR_CHANNEL_VERIFY'],
      [40, 'sms', 'channels[1].provider', 'CAIRN_ERR_CHANNEL_VERIFY'],
    ]);
    expect(lines[0]?.msg).toContain('channel email is unavailable');
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const policy = deliveryPolicy(ws.blueprint, ws.model);
    const down = (name: string, p = policy) => t!.rt.delivery.dispatcher.isDown(t!.workspaceId, name, p.channels.get(name));
    expect([down('email'), down('sms'), down('inbox')]).toEqual([true, true, false]);
    expect(t.rt.delivery.dispatcher.unavailableReason(t.workspaceId, 'email')).toContain('from');
    // A blueprint that changes the channel's settings lifts the mark; a fresh check agrees.
    await upsertWorkspace(t.rt.store.db, t.clock, t.workspaceId, FIXED, 'test.yaml');
    t.rt.workspaces.forget(t.workspaceId);
    const fixed = await t.rt.workspaces.get(t.workspaceId);
    const fixedPolicy = deliveryPolicy(fixed.blueprint, fixed.model);
    expect(down('email', fixedPolicy)).toBe(false);
    lines.length = 0;
    expect(await checkChannels(rt)).toBe(0);
    expect(lines).toEqual([]);
  });
});

describe('cairn workspace apply', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-verify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function cairn(args: string[], databaseUrl: string): Promise<{ code: number | undefined; err: string; out: string }> {
    const saved = { url: process.env.CAIRN_DATABASE_URL, code: process.exitCode };
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    process.env.CAIRN_DATABASE_URL = databaseUrl;
    process.exitCode = undefined;
    try {
      await main(['node', 'cairn', ...args]);
      return { code: process.exitCode === undefined ? undefined : Number(process.exitCode), err: err.mock.calls.flat().join('\n'), out: out.mock.calls.flat().join('\n') };
    } finally {
      process.exitCode = saved.code;
      if (saved.url === undefined) delete process.env.CAIRN_DATABASE_URL;
      else process.env.CAIRN_DATABASE_URL = saved.url;
      err.mockRestore();
      out.mockRestore();
    }
  }

  it('refuses a blueprint whose providers do not verify, naming channels[i].provider, and applies a fixed one', async () => {
    const db = join(dir, 'cairn.db');
    const broken = join(dir, 'broken.yaml');
    const fixed = join(dir, 'fixed.yaml');
    writeFileSync(broken, BROKEN);
    writeFileSync(fixed, FIXED);
    const refused = await cairn(['workspace', 'apply', broken, '-w', 'shop'], db);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('CAIRN_ERR_CHANNEL_VERIFY');
    expect(refused.err).toContain('channels[0].provider.settings.from');
    expect(refused.err).toContain('channels[1].provider');
    expect(refused.err).toContain('twillio');
    const store = openStore(db);
    try {
      expect(await listWorkspaces(store.db)).toEqual([]);
      const ok = await cairn(['workspace', 'apply', fixed, '-w', 'shop'], db);
      expect(ok.code, ok.err).toBeUndefined();
      expect(ok.out).toContain('Workspace shop');
      expect((await listWorkspaces(store.db)).map((w) => w.id)).toEqual(['shop']);
      const forced = await cairn(['workspace', 'apply', broken, '-w', 'forced', '--skip-channel-check'], db);
      expect(forced.code, forced.err).toBeUndefined();
      expect((await listWorkspaces(store.db)).map((w) => w.id)).toEqual(['forced', 'shop']);
    } finally {
      await store.destroy();
    }
  });
});
