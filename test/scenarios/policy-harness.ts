import { expect } from 'vitest';
import { VirtualClock } from '../../src/core/index.js';
import { findCustomerId, loadProfiles, profileLockKey } from '../../src/profiles/index.js';
import { createTestAdapter, enqueueMessages, type ContentRenderer, type EnqueueOptions, type GateOutcome, type MessageLogEntry, type MessageRequest, type TestAdapter } from '../../src/delivery/index.js';
import { basic, startTestApp, type TestApp } from '../helpers/runtime.js';
import type { EngineFactory } from '../helpers/stores.js';
import { POLICY_BLUEPRINT } from './policy-blueprint.js';

/**
 * A runtime on a fresh database with the contact-policy blueprint, the test adapter registered
 * like any other, a virtual clock, and no background timers (the dispatcher and the sweep run when
 * a test says so). Events go in through the real HTTP API.
 */
export interface PolicyApp {
  t: TestApp;
  clock: VirtualClock;
  adapter: TestAdapter;
  identify(userId: string, traits: Record<string, unknown>): Promise<void>;
  track(userId: string, event: string, properties?: Record<string, unknown>): Promise<void>;
  customerId(userId: string): Promise<string>;
  /** Gates requests for one customer through rt.delivery.enqueue (or enqueueMessages with `options`), under the profile lock. */
  enqueue(userId: string, requests: Partial<MessageRequest>[], opts?: { options?: EnqueueOptions; content?: ContentRenderer }): Promise<GateOutcome[]>;
  /** The profile's message log through GET /v1/profiles/user_id:ID/messages. */
  messages(userId: string, query?: string): Promise<MessageLogEntry[]>;
  get(path: string): Promise<{ statusCode: number; json(): unknown }>;
  close(): Promise<void>;
}

export async function startPolicyApp(engine: EngineFactory, opts: { start?: string; env?: Record<string, string>; blueprint?: string } = {}): Promise<PolicyApp> {
  const clock = new VirtualClock(opts.start ?? '2026-11-23T10:00:00.000Z');
  const t = await startTestApp(engine, { blueprint: opts.blueprint ?? POLICY_BLUEPRINT, clock, env: { CAIRN_DISPATCH_INTERVAL: '0', CAIRN_SWEEP_INTERVAL: '0', CAIRN_ARBITRATION_WINDOW: '0', ...opts.env } });
  const adapter = createTestAdapter();
  t.rt.delivery.registry.register(adapter);
  const post = async (url: string, body: unknown): Promise<void> => {
    const r = await t.app.inject({ method: 'POST', url, headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ ...(body as object), timestamp: new Date(clock.now()).toISOString() }) });
    expect(r.statusCode, r.body).toBe(200);
  };
  const get = async (path: string): Promise<{ statusCode: number; json(): unknown }> => t.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${t.secretKey}` } });
  let seq = 0;
  const app: PolicyApp = {
    t,
    clock,
    adapter,
    identify: (userId, traits) => post('/v1/identify', { userId, traits }),
    track: (userId, event, properties = {}) => post('/v1/track', { userId, event, properties }),
    async customerId(userId) {
      const id = await findCustomerId(t.rt.store.db, t.workspaceId, { kind: 'user_id', value: userId });
      if (!id) throw new Error(`no profile for ${userId}`);
      return id;
    },
    async enqueue(userId, partial, o = {}) {
      const ws = await t.rt.workspaces.get(t.workspaceId);
      const id = await app.customerId(userId);
      const now = clock.now();
      const requests: MessageRequest[] = partial.map((p) => ({ key: `k${++seq}`, workspaceId: ws.id, customerId: id, channels: ['email'], messageClass: 'marketing', priority: 0, requestedAt: now, ...p }));
      return t.rt.store.transaction(async (trx) => {
        const [row] = await loadProfiles(trx, t.rt.store, ws.id, [id]);
        if (!row) throw new Error('profile not loaded');
        if (o.options) return enqueueMessages(trx, t.rt.store, ws, { id, row }, requests, now, o.content, o.options);
        return t.rt.delivery.enqueue(trx, ws, { id, row }, requests, now, o.content);
      }, [profileLockKey(ws.id)]);
    },
    async messages(userId, query = '') {
      const r = await get(`/v1/profiles/user_id:${userId}/messages${query}`);
      expect(r.statusCode, JSON.stringify(r.json())).toBe(200);
      return (r.json() as { items: MessageLogEntry[] }).items;
    },
    get,
    close: () => t.close(),
  };
  return app;
}
