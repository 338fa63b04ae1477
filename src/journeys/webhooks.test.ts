import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SECOND, VirtualClock } from '../core/index.js';
import { ENGINES } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { FakeHttpProvider } from '../../test/helpers/providers.js';
import { verifyWebhookSignature } from '../delivery/index.js';
import { findCustomerId } from '../profiles/index.js';
import { JourneyWebhookSender, journeyWebhookSecret, listCustomerJourneys } from './index.js';

/**
 * Journey webhook steps end to end on both engines: a journey's webhook step is rendered, recorded,
 * and called by the sender (rt.webhooks.runOnce in virtual time) against a real local HTTP server,
 * through the outbound policy (address guard, retry classification with Retry-After).
 */

const rx = new FakeHttpProvider();
beforeAll(() => rx.start());
afterAll(() => rx.stop());

const blueprint = (base: string): string => `version: 1
workspace:
  name: Hooks
  timezone: Europe/Berlin
journeys:
  - name: hook
    entry:
      type: api
    re_entry:
      type: always
    max_concurrent: 5
    steps:
      - id: notify
        type: webhook
        url: "${base}/hooks/{{ profile.traits.plan | default: 'none' }}"
        method: PUT
        headers:
          X-Customer-Email: "{{ profile.traits.email }}"
        body: '{"email": {{ profile.traits.email | json }}, "plan": "{{ profile.traits.plan }}"}'
`;

const QUIET = { CAIRN_JOURNEY_INTERVAL: '0', CAIRN_DISPATCH_INTERVAL: '0', CAIRN_SWEEP_INTERVAL: '0' };

describe.each(ENGINES)('journey webhook steps ($name)', (engine) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
    rx.reset();
  });

  async function start(env: Record<string, string> = {}): Promise<TestApp> {
    t = await startTestApp(engine, { blueprint: blueprint(rx.url), clock: new VirtualClock('2026-11-23T10:00:00.000Z'), env: { ...QUIET, CAIRN_OUTBOUND_ALLOW_PRIVATE: 'true', ...env } });
    return t;
  }

  /** A customer with traits, entered into the journey; returns the webhook key. */
  async function enter(app: TestApp, userId: string): Promise<{ key: string; customerId: string; instanceId: string }> {
    const res = await app.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(app.writeKey) }, payload: { userId, traits: { email: `${userId}@example.com`, plan: 'pro' } } });
    expect(res.statusCode).toBe(200);
    await app.rt.journeys.drain();
    const customerId = (await findCustomerId(app.rt.store.db, app.workspaceId, { kind: 'user_id', value: userId })) as string;
    const r = await app.rt.journeys.enter(app.workspaceId, 'hook', customerId);
    if (!r.entered) throw new Error(`not entered: ${r.reason}`);
    return { key: `j:${r.instanceId}:notify`, customerId, instanceId: r.instanceId };
  }

  async function row(app: TestApp, key: string) {
    return app.rt.store.db.selectFrom('journey_webhooks').selectAll().where('workspace_id', '=', app.workspaceId).where('key', '=', key).executeTakeFirstOrThrow();
  }

  it('calls the rendered webhook once, signed with the workspace secret, with the Idempotency-Key', async () => {
    const app = await start();
    const { key, customerId, instanceId } = await enter(app, 'u1');
    expect((await row(app, key)).status).toBe('pending');
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    expect(rx.seen).toHaveLength(1);
    const req = rx.seen[0]!;
    expect(req.method).toBe('PUT');
    expect(req.url).toBe('/hooks/pro');
    expect(req.headers['idempotency-key']).toBe(key);
    expect(req.headers['x-customer-email']).toBe('u1@example.com');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({ email: 'u1@example.com', plan: 'pro' });
    const secret = journeyWebhookSecret(await app.rt.channels.links.keyFor(app.workspaceId));
    expect(verifyWebhookSignature(secret, req.headers['cairn-signature'], req.body, app.clock.now())).toEqual({ ok: true });
    expect(verifyWebhookSignature(`${secret}x`, req.headers['cairn-signature'], req.body, app.clock.now()).ok).toBe(false);
    const r = await row(app, key);
    expect({ status: r.status, attempts: Number(r.attempts), response: Number(r.response_status), sentAt: Number(r.sent_at) }).toEqual({ status: 'sent', attempts: 1, response: 200, sentAt: app.clock.now() });
    // Sent rows are never claimed again.
    (app.clock as VirtualClock).advance(3600 * SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(0);
    expect(rx.seen).toHaveLength(1);
    const [inst] = await listCustomerJourneys(app.rt.store.db, app.workspaceId, customerId);
    expect(inst?.id).toBe(instanceId);
    expect(inst?.history.map((h) => `${h.kind}:${h.step ?? ''}`)).toEqual(['enter:', 'webhook:notify', 'complete:', 'webhook_sent:notify']);
    expect(inst?.history.find((h) => h.kind === 'webhook_sent')?.detail).toEqual({ key, status: 200, attempts: 1 });
  });

  it('retries a 503 after its Retry-After, then succeeds', async () => {
    const app = await start();
    const { key } = await enter(app, 'u2');
    rx.answers.push((res) => res.writeHead(503, { 'retry-after': '120' }).end('busy'));
    const t0 = app.clock.now();
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    let r = await row(app, key);
    expect({ status: r.status, nextAt: Number(r.next_at), response: Number(r.response_status) }).toEqual({ status: 'pending', nextAt: t0 + 120 * SECOND, response: 503 });
    expect(r.last_error).toMatch(/^HTTP_503/);
    (app.clock as VirtualClock).advance(119 * SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(0);
    expect(rx.seen).toHaveLength(1);
    (app.clock as VirtualClock).advance(SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    expect(rx.seen).toHaveLength(2);
    expect(rx.seen[1]?.headers['idempotency-key']).toBe(key);
    expect(rx.seen[1]?.headers['cairn-attempt']).toBe('2');
    r = await row(app, key);
    expect({ status: r.status, attempts: Number(r.attempts), lastError: r.last_error }).toEqual({ status: 'sent', attempts: 2, lastError: null });
  });

  it('does not retry a 400: the call ends failed with the reason in the row and the history', async () => {
    const app = await start();
    const { key, customerId } = await enter(app, 'u3');
    rx.answers.push((res) => res.writeHead(400, { 'content-type': 'text/plain' }).end('bad payload'));
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    (app.clock as VirtualClock).advance(24 * 3600 * SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(0);
    expect(rx.seen).toHaveLength(1);
    const r = await row(app, key);
    expect({ status: r.status, nextAt: r.next_at, response: Number(r.response_status) }).toEqual({ status: 'failed', nextAt: null, response: 400 });
    expect(r.last_error).toBe('HTTP_400: HTTP 400: bad payload');
    const [inst] = await listCustomerJourneys(app.rt.store.db, app.workspaceId, customerId);
    expect(inst?.history.find((h) => h.kind === 'webhook_failed')?.detail).toMatchObject({ key, status: 400, code: 'HTTP_400' });
  });

  it('gives up after CAIRN_DELIVERY_MAX_ATTEMPTS retryable failures', async () => {
    const app = await start({ CAIRN_DELIVERY_MAX_ATTEMPTS: '2' });
    const { key } = await enter(app, 'u4');
    rx.answers.push((res) => res.writeHead(500).end(), (res) => res.writeHead(502).end());
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    (app.clock as VirtualClock).advance(3600 * SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    (app.clock as VirtualClock).advance(3600 * SECOND);
    expect(await app.rt.webhooks.runOnce()).toBe(0);
    expect(rx.seen).toHaveLength(2);
    const r = await row(app, key);
    expect({ status: r.status, attempts: Number(r.attempts) }).toEqual({ status: 'failed', attempts: 2 });
    expect(r.last_error).toMatch(/^HTTP_502/);
  });

  it('refuses a loopback URL when private addresses are not allowed, without calling it', async () => {
    const app = await start({ CAIRN_OUTBOUND_ALLOW_PRIVATE: 'false' });
    const { key } = await enter(app, 'u5');
    expect(await app.rt.webhooks.runOnce()).toBe(1);
    expect(rx.seen).toHaveLength(0);
    const r = await row(app, key);
    expect(r.status).toBe('failed');
    expect(r.last_error).toMatch(/^ADDRESS_REFUSED/);
    expect(r.response_status).toBeNull();
  });

  it('never calls twice for one key, even with two senders running at once', async () => {
    const app = await start();
    const keys = [(await enter(app, 'u6')).key, (await enter(app, 'u7')).key];
    // A slow receiver: both senders are in their runs while the first calls are in flight.
    rx.fallback = (res) => setTimeout(() => res.writeHead(200).end('ok'), 150);
    try {
      const other = new JourneyWebhookSender({ store: app.rt.store, clock: app.clock, log: pino({ level: 'silent' }), outbound: app.rt.channels.outbound, secret: async (id) => journeyWebhookSecret(await app.rt.channels.links.keyFor(id)) }, { intervalMs: 0 });
      const counts = await Promise.all([app.rt.webhooks.runOnce(), other.runOnce(), app.rt.webhooks.runOnce(), other.runOnce()]);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(2);
      (app.clock as VirtualClock).advance(3600 * SECOND);
      expect(await other.runOnce()).toBe(0);
      expect(await app.rt.webhooks.runOnce()).toBe(0);
      await other.close();
    } finally {
      rx.fallback = (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    }
    expect(rx.seen.map((s) => s.headers['idempotency-key']).sort()).toEqual([...keys].sort());
  });
});
