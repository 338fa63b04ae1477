import { createECDH, randomBytes } from 'node:crypto';
import webPush from 'web-push';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock, isCairnError } from '../../../core/index.js';
import type { AdapterContext, OutboundMessage } from '../../types.js';
import { hmacSign } from '../../links.js';
import { ENGINES, type TestStore } from '../../../../test/helpers/stores.js';
import { FakeHttpProvider } from '../../../../test/helpers/providers.js';
import { CircuitBreaker } from '../webhook/index.js';
import { WebPushAdapter, listPushSubscriptions, pushPayload, savePushSubscription } from './index.js';

/**
 * Web push against a local HTTP server playing the push service, with real VAPID keys and real
 * P-256 subscription keys: stored subscriptions are used, a 404/410 removes one (both engines),
 * the push service sees VAPID auth and an encrypted body, and settings errors name the setting.
 */

const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
const vapid = webPush.generateVAPIDKeys();
const settings = { subject: 'mailto:ops@shop.example', public_key: vapid.publicKey, private_key: vapid.privateKey };
const sign = (p: string): string => hmacSign(Buffer.alloc(32, 5), p);
const ctx = (s: Record<string, string | number | boolean> = settings): AdapterContext => ({ settings: s, publicUrl: 'https://cx.example.com', sign, now: () => clock.now() });

function subscription(endpoint: string) {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
}

const message = (customerId: string, over: Partial<OutboundMessage> = {}): OutboundMessage => ({
  id: '0193a1b2-0000-7000-8000-0000000000ee',
  key: 'k',
  workspaceId: 'ws_push',
  customerId,
  channel: 'push',
  channelType: 'push',
  messageClass: 'marketing',
  to: {},
  content: { headline: 'Flash sale', body: '<p>Today <b>only</b></p>', image: 'https://shop.example/i.png', cta: { label: 'Shop', url: 'https://shop.example/sale' } },
  attempt: 1,
  ...over,
});

describe.each(ENGINES)('web push on $name', (engine) => {
  let s: TestStore;
  const service = new FakeHttpProvider();
  let adapter: WebPushAdapter;
  beforeAll(async () => {
    s = await engine.open();
    await service.start();
    adapter = new WebPushAdapter({ db: s.store.db, outbound: { policy: { allowPrivate: true }, breaker: new CircuitBreaker(clock), clock } });
  });
  afterAll(async () => {
    await service.stop();
    await s?.cleanup();
  });

  it('sends to the stored subscriptions with VAPID auth and an encrypted payload; 404 and 410 remove them', async () => {
    for (const p of ['/s/keep', '/s/404', '/s/410']) await savePushSubscription(s.store.db, 'ws_push', 'cust1', subscription(`${service.url}${p}`), clock.now());
    service.fallback = (res, req) => res.writeHead(req.url === '/s/404' ? 404 : req.url === '/s/410' ? 410 : 201).end();
    const r = await adapter.send(message('cust1'), ctx());
    expect(r).toEqual({ ok: true, providerMessageId: message('cust1').id });
    expect(service.seen.map((x) => x.url).sort()).toEqual(['/s/404', '/s/410', '/s/keep']);
    const req = service.seen[0]!;
    expect(req.headers['content-encoding']).toBe('aes128gcm');
    expect(req.headers.ttl).toBe('86400');
    const jwt = /^vapid t=([^,]+), k=(.+)$/.exec(String(req.headers.authorization));
    expect(jwt?.[2]).toBe(vapid.publicKey);
    const claims = JSON.parse(Buffer.from((jwt?.[1] as string).split('.')[1] as string, 'base64url').toString('utf8')) as { aud: string; sub: string };
    expect(claims).toMatchObject({ aud: service.url, sub: 'mailto:ops@shop.example' });
    expect(req.body).not.toContain('Flash sale');
    const left = await listPushSubscriptions(s.store.db, 'ws_push', ['cust1']);
    expect(left.map((x) => x.endpoint)).toEqual([`${service.url}/s/keep`]);
  });

  it('answers final when every subscription is gone, and when there is none', async () => {
    service.seen.length = 0;
    await savePushSubscription(s.store.db, 'ws_push', 'cust2', subscription(`${service.url}/s/410`), clock.now());
    expect(await adapter.send(message('cust2'), ctx())).toMatchObject({ ok: false, retryable: false, code: 'SUBSCRIPTION_GONE' });
    expect(await adapter.send(message('cust2'), ctx())).toMatchObject({ ok: false, retryable: false, code: 'NO_ADDRESS' });
    expect(service.seen).toHaveLength(1);
  });

  it('moves a re-registered endpoint to the customer now using the browser', async () => {
    const sub = subscription(`${service.url}/s/shared`);
    await savePushSubscription(s.store.db, 'ws_push', 'alice', sub, clock.now());
    await savePushSubscription(s.store.db, 'ws_push', 'bob', sub, clock.now() + 1);
    expect(await listPushSubscriptions(s.store.db, 'ws_push', ['alice'])).toEqual([]);
    expect((await listPushSubscriptions(s.store.db, 'ws_push', ['bob'])).map((x) => x.endpoint)).toEqual([sub.endpoint]);
  });

  it('refuses plain-http push endpoints when private addresses are not allowed', async () => {
    const strict = new WebPushAdapter({ db: s.store.db, outbound: { policy: { allowPrivate: false }, breaker: new CircuitBreaker(clock), clock } });
    const r = await strict.send(message('x', { to: { push: [subscription('http://push.example.com/s/1')] } }), ctx());
    expect(r).toMatchObject({ ok: false, retryable: false, code: 'ADDRESS_REFUSED' });
  });
});

describe('web push settings and payload', () => {
  const adapter = new WebPushAdapter({ db: undefined as never });
  it.each([
    ['subject', { ...settings, subject: 'ops@shop.example' }],
    ['public_key', { ...settings, public_key: 'short' }],
    ['private_key', { ...settings, private_key: vapid.publicKey }],
    ['urgency', { ...settings, urgency: 'asap' }],
  ])('verify() names %s', async (name, s) => {
    const err = await adapter.verify(ctx(s)).catch((e: unknown) => e);
    expect(isCairnError(err) && err.params.setting).toBe(name);
  });

  it('builds the notification from the rendered content, with a tracked URL', () => {
    const p = pushPayload(message('c'), ctx(), true);
    expect(p).toMatchObject({ id: message('c').id, title: 'Flash sale', body: 'Today only', image: 'https://shop.example/i.png' });
    expect(p.url).toMatch(/^https:\/\/cx\.example\.com\/v1\/r\//);
  });
});
