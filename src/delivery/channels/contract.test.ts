import { createECDH, randomBytes } from 'node:crypto';
import webPush from 'web-push';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock, isCairnError } from '../../core/index.js';
import type { AdapterContext, ChannelAdapter, OutboundMessage, SendResult } from '../types.js';
import { hmacSign } from '../links.js';
import { FakeHttpProvider, FakeSmtpServer } from '../../../test/helpers/providers.js';
import { ENGINES, type TestStore } from '../../../test/helpers/stores.js';
import { createTestAdapter, type TestAdapter } from './test/test-adapter.js';
import { InAppAdapter, InboxHub } from './in_app/index.js';
import { WebPushAdapter } from './push/index.js';
import { ServiceDeskAdapter } from './service_desk/index.js';
import { TwilioSmsAdapter } from './sms/index.js';
import { SmtpAdapter } from './smtp/index.js';
import { CircuitBreaker, WebhookAdapter, type OutboundDeps } from './webhook/index.js';

/**
 * THE contract every channel adapter passes — built-ins and the test adapter alike. Each adapter
 * has a harness: its real fake provider (an SMTP server, a local HTTP server playing Twilio, a push
 * service or a webhook receiver; the database for in_app and service_desk), a context, and ways
 * to make the provider fail finally and transiently.
 *
 * The contract:
 * 1. `send` resolves `{ ok: true }` and the provider sees exactly one delivery per send;
 * 2. a provider refusal resolves `{ ok: false, retryable: false }`, never a throw;
 * 3. a transient provider failure resolves `{ ok: false, retryable: true }`;
 * 4. `verify` accepts the harness settings and rejects a missing required setting with
 *    CAIRN_ERR_CHANNEL_SETTING naming it.
 *
 * Skips, with their reason:
 * - in_app and service_desk call no provider, so they have no provider failure to answer (2, 3);
 *   a database failure is infrastructure and throws by design (CONVENTIONS 11);
 * - in_app, service_desk and test have no required setting (4: only "accepts" is checked);
 * - the test adapter's failures are the ones a test scripts with failNext (2, 3 use that).
 */

const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
const sign = (p: string): string => hmacSign(Buffer.alloc(32, 3), p);

interface Harness {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  adapter: () => ChannelAdapter;
  settings: () => Record<string, string | number | boolean>;
  message: (n: number) => OutboundMessage;
  /** Deliveries the provider has seen. */
  deliveries(): Promise<number>;
  /** Makes the next send fail finally / transiently; undefined when the adapter calls no provider. */
  refuseNext?: () => void;
  failNextTransiently?: () => void;
  /** A required setting (verify is given the harness settings without it); undefined when none is required. */
  missing?: string;
}

const base = (n: number, over: Partial<OutboundMessage>): OutboundMessage => ({
  id: `0193a1b2-0000-7000-8000-${String(n).padStart(12, '0')}`,
  key: `j:contract:${n}`,
  workspaceId: 'ws_contract',
  customerId: 'cust_contract',
  channel: 'ch',
  channelType: 'email',
  messageClass: 'marketing',
  to: {},
  content: { subject: 'Hello', headline: 'Hello', body: '<p>Body</p>', cta: { label: 'Go', url: 'https://shop.example/go' } },
  attempt: 1,
  ...over,
});

const without = (o: Record<string, string | number | boolean>, k: string): Record<string, string | number | boolean> => {
  const c = { ...o };
  delete c[k];
  return c;
};

let store: TestStore;
const outbound = (): OutboundDeps => ({ policy: { allowPrivate: true }, breaker: new CircuitBreaker(clock, { threshold: 1000 }), clock, backoff: { random: () => 0 } });

const smtp = new FakeSmtpServer();
const smtpAdapter = new SmtpAdapter();
const twilio = new FakeHttpProvider();
const pushService = new FakeHttpProvider();
const receiver = new FakeHttpProvider();
const vapid = webPush.generateVAPIDKeys();
const ecdh = createECDH('prime256v1');
ecdh.generateKeys();
const subscription = { endpoint: '', keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
let testAdapter: TestAdapter;

const count = async (table: 'inbox_messages' | 'service_desk_suggestions'): Promise<number> => {
  const r = await store.store.db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).where('workspace_id', '=', 'ws_contract').executeTakeFirstOrThrow();
  return Number(r.n);
};

const HARNESSES: Harness[] = [
  {
    name: 'smtp',
    start: async () => void (await smtp.start()),
    stop: async () => {
      await smtpAdapter.close();
      await smtp.stop();
    },
    adapter: () => smtpAdapter,
    settings: () => ({ host: '127.0.0.1', port: smtp.port, from: 'news@shop.example', timeout_ms: 5000 }),
    message: (n) => base(n, { channelType: 'email', to: { email: 'ana@example.com' } }),
    deliveries: async () => smtp.received.length,
    refuseNext: () => void (smtp.rejectRcpt = { code: 550, message: 'no such user' }),
    failNextTransiently: () => void (smtp.rejectRcpt = { code: 451, message: 'greylisted' }),
    missing: 'host',
  },
  {
    name: 'twilio',
    start: async () => {
      await twilio.start();
      twilio.fallback = (res) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sid: `SM${twilio.seen.length}` }));
    },
    stop: () => twilio.stop(),
    adapter: () => new TwilioSmsAdapter(outbound()),
    settings: () => ({ base_url: twilio.url, account_sid: 'AC1', auth_token: 'tok', from: '+15550001111' }),
    message: (n) => base(n, { channelType: 'sms', to: { phone: '+4915112345678' } }),
    deliveries: async () => twilio.seen.length,
    refuseNext: () => twilio.answers.push((res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":21211,"message":"invalid To"}')),
    failNextTransiently: () => twilio.answers.push((res) => res.writeHead(503).end()),
    missing: 'auth_token',
  },
  {
    name: 'vapid',
    start: async () => {
      await pushService.start();
      pushService.fallback = (res) => res.writeHead(201).end();
      subscription.endpoint = `${pushService.url}/push/abc`;
    },
    stop: () => pushService.stop(),
    adapter: () => new WebPushAdapter({ db: store.store.db, outbound: outbound() }),
    settings: () => ({ subject: 'mailto:ops@shop.example', public_key: vapid.publicKey, private_key: vapid.privateKey }),
    message: (n) => base(n, { channelType: 'push', to: { push: [subscription] } }),
    deliveries: async () => pushService.seen.length,
    refuseNext: () => pushService.answers.push((res) => res.writeHead(400).end('bad request')),
    failNextTransiently: () => pushService.answers.push((res) => res.writeHead(429, { 'retry-after': '1' }).end()),
    missing: 'private_key',
  },
  {
    name: 'http',
    start: () => receiver.start().then(() => undefined),
    stop: () => receiver.stop(),
    adapter: () => new WebhookAdapter(outbound()),
    settings: () => ({ url: `${receiver.url}/hook`, secret: 'whsec_contract_0123456789' }),
    message: (n) => base(n, { channelType: 'webhook' }),
    deliveries: async () => receiver.seen.length,
    refuseNext: () => receiver.answers.push((res) => res.writeHead(422).end()),
    failNextTransiently: () => receiver.answers.push((res) => res.writeHead(502).end()),
    missing: 'secret',
  },
  {
    name: 'in_app',
    start: async () => {},
    stop: async () => {},
    adapter: () => new InAppAdapter({ db: store.store.db, hub: new InboxHub() }),
    settings: () => ({}),
    message: (n) => base(n, { channelType: 'in_app' }),
    deliveries: () => count('inbox_messages'),
  },
  {
    name: 'service_desk',
    start: async () => {},
    stop: async () => {},
    adapter: () => new ServiceDeskAdapter({ db: store.store.db }),
    settings: () => ({}),
    message: (n) => base(n, { channelType: 'service_desk' }),
    deliveries: () => count('service_desk_suggestions'),
  },
  {
    name: 'test',
    start: async () => {
      testAdapter = createTestAdapter();
    },
    stop: async () => {},
    adapter: () => testAdapter,
    settings: () => ({}),
    message: (n) => base(n, {}),
    deliveries: async () => testAdapter.sent.length,
    refuseNext: () => testAdapter.failNext(1, { ok: false, retryable: false, code: 'REJECTED', error: 'scripted refusal' }),
    failNextTransiently: () => testAdapter.failNext(1, { ok: false, retryable: true, retryAfterMs: 1000, code: 'RATE', error: 'scripted 429' }),
  },
];

beforeAll(async () => {
  store = await (ENGINES[0] as (typeof ENGINES)[number]).open();
});
afterAll(async () => {
  await store?.cleanup();
});

describe.each(HARNESSES)('channel adapter contract: $name', (h) => {
  let adapter: ChannelAdapter;
  let seq = 0;
  const ctx = (): AdapterContext => ({ settings: h.settings(), publicUrl: 'https://cx.example.com', sign, now: () => clock.now() });
  // Message numbers are unique across harnesses so rows never collide in the shared database.
  const next = (): OutboundMessage => h.message(HARNESSES.indexOf(h) * 1000 + ++seq);

  beforeAll(async () => {
    await h.start();
    adapter = h.adapter();
  });
  afterAll(() => h.stop());

  it('has a provider name and at least one channel type', () => {
    expect(adapter.name).toBe(h.name);
    expect(adapter.channelTypes.length).toBeGreaterThan(0);
  });

  it('verify() accepts the harness settings', async () => {
    await expect(adapter.verify(ctx())).resolves.toBeUndefined();
  });

  it('send() resolves ok and the provider sees exactly one delivery per send', async () => {
    const before = await h.deliveries();
    const r1 = await adapter.send(next(), ctx());
    expect(r1, JSON.stringify(r1)).toMatchObject({ ok: true });
    expect(await h.deliveries()).toBe(before + 1);
    const r2 = await adapter.send(next(), ctx());
    expect(r2.ok).toBe(true);
    expect(await h.deliveries()).toBe(before + 2);
    if (r1.ok && r1.providerMessageId !== undefined) expect(typeof r1.providerMessageId).toBe('string');
  });

  it.skipIf(!h.refuseNext)('answers a provider refusal as { ok: false, retryable: false } without throwing', async () => {
    h.refuseNext?.();
    const r: SendResult = await adapter.send(next(), ctx());
    expect(r).toMatchObject({ ok: false, retryable: false });
    expect(!r.ok && typeof r.code === 'string' && r.code.length > 0 && typeof r.error === 'string').toBe(true);
    if (h.name === 'smtp') smtp.rejectRcpt = undefined;
  });

  it.skipIf(!h.failNextTransiently)('answers a transient provider failure as { ok: false, retryable: true }', async () => {
    h.failNextTransiently?.();
    const r = await adapter.send(next(), ctx());
    expect(r).toMatchObject({ ok: false, retryable: true });
    if (h.name === 'smtp') smtp.rejectRcpt = undefined;
    // And the provider works again afterwards.
    expect((await adapter.send(next(), ctx())).ok).toBe(true);
  });

  it.skipIf(!h.missing)('verify() rejects a missing required setting with a CairnError naming it', async () => {
    const setting = h.missing as string;
    expect(h.settings()[setting]).toBeDefined();
    const err = await adapter.verify({ ...ctx(), settings: without(h.settings(), setting) }).catch((e: unknown) => e);
    expect(isCairnError(err) && err.code).toBe('CAIRN_ERR_CHANNEL_SETTING');
    expect(isCairnError(err) && err.params.setting).toBe(setting);
    expect((err as Error).message).toContain(`"${setting}"`);
  });
});
