import { pino } from 'pino';
import { loadConfig, VirtualClock, type Clock } from '../../src/core/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { upsertWorkspace, createKey } from '../../src/governance/index.js';
import { buildApp } from '../../src/server/index.js';
import type { FastifyInstance } from 'fastify';
import type { EngineFactory } from './stores.js';

/** The two order counters many tests declare, as lines under `computed_traits:`. */
export const ORDER_TRAITS = `  - name: orders_60d
    kind: count
    event: Order Completed
    window: 60d
  - name: revenue_60d
    kind: sum
    event: Order Completed
    property: revenue
    window: 60d
`;

export const MINIMAL_BLUEPRINT = `version: 1
workspace:
  name: Test
consent:
  purposes:
    - name: marketing
    - name: service
sources:
  - name: helpdesk
    type: webhook
    preset: support-ticket
computed_traits:
${ORDER_TRAITS}`;

export interface TestApp {
  rt: Runtime;
  app: FastifyInstance;
  clock: Clock;
  writeKey: string;
  secretKey: string;
  workspaceId: string;
  close(): Promise<void>;
}

/** A runtime on a fresh database of the given engine, with one workspace and a write and a secret key. */
export async function startTestApp(engine: EngineFactory, opts: { blueprint?: string; clock?: Clock; env?: Record<string, string> } = {}): Promise<TestApp> {
  const fresh = await engine.freshUrl();
  // The segment sweep's timer is off (it runs in real time; tests move a VirtualClock): call
  // rt.sweeper.runOnce() where a test wants a sweep.
  const config = loadConfig({ CAIRN_DATABASE_URL: fresh.url, CAIRN_LOG_LEVEL: 'silent', CAIRN_SQLITE_SYNCHRONOUS: 'NORMAL', CAIRN_DEMO: 'false', CAIRN_SWEEP_INTERVAL: '0', ...opts.env });
  const clock = opts.clock ?? new VirtualClock('2026-11-23T10:00:00.000Z');
  const rt = await createRuntime(config, { clock, log: pino({ level: 'silent' }) });
  const workspaceId = 'ws_test';
  await upsertWorkspace(rt.store.db, clock, workspaceId, opts.blueprint ?? MINIMAL_BLUEPRINT, 'test.yaml');
  const write = await createKey(rt.store.db, clock, workspaceId, 'write', 'web');
  const secret = await createKey(rt.store.db, clock, workspaceId, 'secret', 'server');
  const app = await buildApp(rt);
  await app.ready();
  return {
    rt,
    app,
    clock,
    writeKey: write.key,
    secretKey: secret.key,
    workspaceId,
    async close() {
      await app.close();
      await rt.close();
      await fresh.cleanup();
    },
  };
}

export const basic = (key: string): string => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
