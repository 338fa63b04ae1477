import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VirtualClock, isCairnError } from '../../../core/index.js';
import type { AdapterContext, OutboundMessage } from '../../types.js';
import {
  WebhookAdapter,
  CircuitBreaker,
  backoffDelay,
  callOutbound,
  checkUrl,
  embeddedIPv4,
  guardedLookup,
  httpRequest,
  isBlockedAddress,
  parseRetryAfter,
  verifyWebhookSignature,
  OutboundRefusedError,
  type OutboundDeps,
} from './index.js';
import { FakeHttpProvider as FakeReceiver, type SeenRequest as Seen } from '../../../../test/helpers/providers.js';

/**
 * The webhook channel and the outbound policy against real local HTTP servers: signatures and
 * idempotency headers, the retry classification (408/429/5xx and network errors retryable with
 * Retry-After honoured, other 4xx and 3xx final, redirects never followed), the circuit breaker
 * per host in virtual time, and the address guard (private and loopback refused unless allowed).
 */

const SECRET = 'whsec_0123456789abcdef0123456789abcdef';
const clock = new VirtualClock('2026-11-23T10:00:00.000Z');

function ctx(settings: Record<string, string | number | boolean>): AdapterContext {
  return { settings, publicUrl: 'https://cx.example.com', sign: (p) => `sig(${p})`, now: () => clock.now() };
}

function message(over: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    id: '0193a1b2-0000-7000-8000-000000000001',
    key: 'j:inst1:step1',
    workspaceId: 'ws1',
    customerId: 'cust1',
    channel: 'crm_hook',
    channelType: 'webhook',
    messageClass: 'service',
    to: {},
    content: { headline: 'Renewal due', body: 'Your plan renews soon' },
    attempt: 1,
    ...over,
  };
}

describe('webhook channel against a local receiver', () => {
  const rx = new FakeReceiver();
  let deps: OutboundDeps;
  let adapter: WebhookAdapter;
  beforeAll(() => rx.start());
  afterAll(() => rx.stop());
  beforeEach(() => {
    rx.seen.length = 0;
    rx.answers = [];
    deps = { policy: { allowPrivate: true }, breaker: new CircuitBreaker(clock, { threshold: 3, coolDownMs: 30_000 }), clock, backoff: { random: () => 0.5 } };
    adapter = new WebhookAdapter(deps);
  });

  it('POSTs the message as JSON, HMAC-signed, with the outbox id as Idempotency-Key', async () => {
    const r = await adapter.send(message(), ctx({ url: `${rx.url}/hooks/cairn`, secret: SECRET }));
    expect(r).toEqual({ ok: true, providerMessageId: message().id });
    expect(rx.seen).toHaveLength(1);
    const req = rx.seen[0] as Seen;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hooks/cairn');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['idempotency-key']).toBe(message().id);
    expect(req.headers['cairn-message-key']).toBe('j:inst1:step1');
    const body = JSON.parse(req.body) as Record<string, unknown>;
    expect(body).toMatchObject({ id: message().id, customer: 'cust1', channel: 'crm_hook', class: 'service', content: { headline: 'Renewal due' } });
    // The receiver's check passes with the shared secret, and fails with another or a changed body.
    expect(verifyWebhookSignature(SECRET, req.headers['cairn-signature'], req.body, clock.now())).toEqual({ ok: true });
    expect(verifyWebhookSignature('other-secret', req.headers['cairn-signature'], req.body, clock.now()).ok).toBe(false);
    expect(verifyWebhookSignature(SECRET, req.headers['cairn-signature'], req.body.replace('Renewal', 'Removal'), clock.now()).ok).toBe(false);
    expect(verifyWebhookSignature(SECRET, req.headers['cairn-signature'], req.body, clock.now() + 10 * 60_000).ok).toBe(false);
  });

  it('sends to the message address when it has one', async () => {
    const r = await adapter.send(message({ to: { url: `${rx.url}/per-customer` } }), ctx({ secret: SECRET }));
    expect(r.ok).toBe(true);
    expect(rx.seen.map((s) => s.url)).toEqual(['/per-customer']);
  });

  it('treats 503 as retryable and honours Retry-After in seconds', async () => {
    rx.answers.push((res) => res.writeHead(503, { 'retry-after': '7' }).end('busy'));
    const r = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: true, retryAfterMs: 7000, code: 'HTTP_503' });
  });

  it('treats 429 as retryable and honours Retry-After as an HTTP date', async () => {
    const at = new Date(clock.now() + 90_000).toUTCString();
    rx.answers.push((res) => res.writeHead(429, { 'retry-after': at }).end());
    const r = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: true, retryAfterMs: 90_000, code: 'HTTP_429' });
  });

  it('treats 408 as retryable with exponential backoff when no Retry-After is given', async () => {
    rx.answers.push((res) => res.writeHead(408).end(), (res) => res.writeHead(408).end());
    const first = await adapter.send(message({ attempt: 1 }), ctx({ url: rx.url, secret: SECRET }));
    const third = await adapter.send(message({ attempt: 3 }), ctx({ url: rx.url, secret: SECRET }));
    expect(first).toMatchObject({ ok: false, retryable: true, retryAfterMs: 750 });
    expect(third).toMatchObject({ ok: false, retryable: true, retryAfterMs: 3000 });
  });

  it.each([400, 401, 404, 410, 422])('treats %i as final', async (status) => {
    rx.answers.push((res) => res.writeHead(status).end('nope'));
    const r = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: false, code: `HTTP_${status}` });
  });

  it('does not follow a redirect (not even to itself) and does not retry it', async () => {
    rx.answers.push((res) => res.writeHead(302, { location: `${rx.url}/internal-admin` }).end());
    const r = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: false, code: 'HTTP_302' });
    expect(rx.seen).toHaveLength(1);
  });

  it('answers a network failure as retryable, not as a throw', async () => {
    const gone = new FakeReceiver();
    await gone.start();
    await gone.stop();
    const r = await adapter.send(message(), ctx({ url: gone.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: true, code: 'NETWORK' });
  });

  it('opens the circuit after consecutive failures, fails fast, then lets one trial through after the cool-down', async () => {
    for (let i = 0; i < 3; i++) rx.answers.push((res) => res.writeHead(500).end());
    for (let i = 0; i < 3; i++) expect((await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }))).ok).toBe(false);
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('open');

    const fast = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(fast).toMatchObject({ ok: false, retryable: true, code: 'CIRCUIT_OPEN', retryAfterMs: 30_000 });
    expect(rx.seen).toHaveLength(3); // the open circuit never reached the host

    clock.advance(30_000);
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('half_open');
    const trial = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(trial.ok).toBe(true);
    expect(rx.seen).toHaveLength(4);
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('closed');
  });

  it('reopens the circuit when the half-open trial fails', async () => {
    for (let i = 0; i < 4; i++) rx.answers.push((res) => res.writeHead(502).end());
    for (let i = 0; i < 3; i++) await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    clock.advance(30_000);
    const trial = await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(trial).toMatchObject({ ok: false, code: 'HTTP_502' });
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('open');
    expect((await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }))).ok).toBe(false);
    expect(rx.seen).toHaveLength(4);
  });

  it('answers a header Node refuses to send (non-Latin-1 or control characters) as final, without touching the breaker', async () => {
    for (const headers of [{ 'x-plan': 'Premium €' }, { 'x-plan': 'a\u0001b' }, { 'bad header': 'v' }] as Record<string, string>[]) {
      for (let i = 0; i < 4; i++) {
        const { result } = await callOutbound(rx.url, { method: 'POST', body: '{}', headers }, 1, deps);
        expect(result).toMatchObject({ ok: false, retryable: false, code: 'INVALID_REQUEST' });
      }
    }
    expect(rx.seen).toHaveLength(0);
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('closed');
  });

  it('does not count 4xx or 429 towards the breaker', async () => {
    for (let i = 0; i < 5; i++) rx.answers.push((res) => res.writeHead(i % 2 ? 429 : 404).end());
    for (let i = 0; i < 5; i++) await adapter.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(deps.breaker.state(CircuitBreaker.keyOf(rx.url))).toBe('closed');
  });

  it('refuses 127.0.0.1 when private addresses are not allowed, without sending anything', async () => {
    const strict = new WebhookAdapter({ ...deps, policy: { allowPrivate: false } });
    const r = await strict.send(message(), ctx({ url: rx.url, secret: SECRET }));
    expect(r).toMatchObject({ ok: false, retryable: false, code: 'ADDRESS_REFUSED' });
    expect(rx.seen).toHaveLength(0);
    const byName = await strict.send(message(), ctx({ url: rx.url.replace('127.0.0.1', 'localhost'), secret: SECRET }));
    expect(byName).toMatchObject({ ok: false, retryable: false, code: 'ADDRESS_REFUSED' });
    expect(rx.seen).toHaveLength(0);
  });

  it('verify() names a missing secret and refuses a private URL', async () => {
    const err = await adapter.verify(ctx({ url: rx.url })).catch((e: unknown) => e);
    expect(isCairnError(err) && err.code).toBe('CAIRN_ERR_CHANNEL_SETTING');
    expect((err as Error).message).toContain('"secret"');
    const strict = new WebhookAdapter({ ...deps, policy: { allowPrivate: false } });
    const err2 = await strict.verify(ctx({ url: 'http://10.0.0.5/hook', secret: SECRET })).catch((e: unknown) => e);
    expect(isCairnError(err2) && err2.params.setting).toBe('url');
    await expect(adapter.verify(ctx({ url: rx.url, secret: SECRET }))).resolves.toBeUndefined();
  });

  it('parses callbacks signed with the channel secret and refuses unsigned ones', () => {
    const raw = JSON.stringify({ events: [{ type: 'delivered', messageId: 'm1', at: '2026-11-23T10:00:05.000Z' }] });
    const header = `t=${Math.floor(clock.now() / 1000)},v1=${hmacOf(raw)}`;
    const events = adapter.parseCallback({ headers: { 'cairn-signature': header }, body: JSON.parse(raw), query: {}, rawBody: raw }, ctx({ secret: SECRET }));
    expect(events).toEqual([{ type: 'delivered', messageId: 'm1', at: Date.parse('2026-11-23T10:00:05.000Z') }]);
    const bad = (() => {
      try {
        adapter.parseCallback({ headers: {}, body: JSON.parse(raw), query: {}, rawBody: raw }, ctx({ secret: SECRET }));
      } catch (e) {
        return e;
      }
    })();
    expect(isCairnError(bad) && bad.code).toBe('CAIRN_ERR_CALLBACK_SIGNATURE');
  });
});

function hmacOf(raw: string): string {
  return createHmac('sha256', SECRET).update(`${Math.floor(clock.now() / 1000)}.${raw}`).digest('hex');
}

describe('outbound address guard', () => {
  it.each([
    '127.0.0.1', '127.255.0.1', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.254', '0.0.0.0',
    '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:0a00:0001::1', '::127.0.0.1', 'ff02::1',
    // NAT64 local-use, Teredo (its client address is obfuscated in the last 32 bits), benchmarking.
    '64:ff9b:1::a00:1', '64:ff9b:1:ffff::8.8.8.8', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::1', '2001:2::1',
  ])('refuses %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2001:4860:4860::8888'])('allows %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(false);
  });

  it('reads the IPv4 address inside mapped, NAT64 and 6to4 forms', () => {
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('64:ff9b::c0a8:101')).toBe('192.168.1.1');
    expect(embeddedIPv4('2002:c0a8:0101::')).toBe('192.168.1.1');
    expect(embeddedIPv4('2606:4700::1')).toBeUndefined();
  });

  it('refuses every address in 10/8 and its IPv4-mapped form (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c) => {
        const ip = `10.${a}.${b}.${c}`;
        return isBlockedAddress(ip) && isBlockedAddress(`::ffff:${ip}`);
      }),
    );
  });

  it('refuses non-http schemes, credentials in URLs, and literal private hosts (also in odd IPv4 spellings)', () => {
    const strict = { allowPrivate: false };
    for (const u of ['file:///etc/passwd', 'gopher://example.com/', 'ftp://example.com/', 'https://user:pw@example.com/', 'http://0x7f.1/', 'http://2130706433/', 'http://[::ffff:127.0.0.1]/', 'http://localhost:8080/']) {
      expect(() => checkUrl(u, strict), u).toThrow(OutboundRefusedError);
    }
    expect(checkUrl('https://example.com/hook', strict).hostname).toBe('example.com');
    expect(() => checkUrl('http://example.com/', strict, { httpsOnly: true })).toThrow(OutboundRefusedError);
  });

  it('refuses a name that resolves to a loopback address at connect time', async () => {
    const lookup = guardedLookup({ allowPrivate: false }, 'http://localhost/');
    const err = await new Promise<unknown>((resolve) => lookup('localhost', { all: true }, (e) => resolve(e)));
    expect(err).toBeInstanceOf(OutboundRefusedError);
    const allowed = guardedLookup({ allowPrivate: true }, 'http://localhost/');
    const addrs = await new Promise<unknown>((resolve) => allowed('localhost', { all: true }, (_e, a) => resolve(a)));
    expect(Array.isArray(addrs) && addrs.length > 0).toBe(true);
  });

  it('httpRequest refuses loopback unless allowed', async () => {
    await expect(httpRequest('http://127.0.0.1:9/', { policy: { allowPrivate: false } })).rejects.toBeInstanceOf(OutboundRefusedError);
  });

  it('callOutbound answers a refusal as a final result', async () => {
    const deps: OutboundDeps = { policy: { allowPrivate: false }, breaker: new CircuitBreaker(clock), clock };
    const { result } = await callOutbound('http://192.168.0.10/', { method: 'POST', body: '{}' }, 1, deps);
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'ADDRESS_REFUSED' });
  });
});

describe('retry timing', () => {
  it('backoff grows exponentially within [nominal/2, nominal] and stops at the cap (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, { baseMs: 1000, maxMs: 3_600_000, random: () => r });
        const nominal = Math.min(3_600_000, 1000 * 2 ** (attempt - 1));
        return d >= nominal / 2 - 1 && d <= nominal + 1;
      }),
    );
  });

  it('reads Retry-After as seconds or an HTTP date, ignores garbage, caps absurd values', () => {
    const now = Date.parse('2026-11-23T10:00:00.000Z');
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('99999999', now)).toBe(24 * 3600_000);
  });
});
