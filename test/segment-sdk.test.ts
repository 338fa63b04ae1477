import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from './helpers/stores.js';
import { CairnServer, ensureBuilt, freePort, provisionWorkspace } from './helpers/process.js';

/**
 * PRODUCT §4.1: existing Segment SDKs point at Cairn unchanged. The official
 * `@segment/analytics-node` client, configured only with Cairn's address and write key, talks to a
 * real `cairn serve` process; what it sent must show up in the profiles and timelines, under the
 * SDK's own messageIds, with no error reported by the SDK.
 */

const SOURCE = 'node-sdk';
const BULK = 500;
const BULK_USERS = 5;

interface TimelineItem {
  type: string;
  name: string | null;
  source: string;
  messageId: string;
  timestamp: string;
  message: Record<string, unknown>;
}

interface ProfileBody {
  id: string;
  identities: { kind: string; value: string }[];
  traits: Record<string, unknown>;
  traitSources: Record<string, { source: string; at: string }>;
}

interface SdkEvent {
  messageId?: string;
  timestamp?: Date | string;
}

/** Collects what the SDK reports: errors, HTTP statuses, and the events it put on the wire. */
function watch(sdk: Analytics): { errors: unknown[]; statuses: number[]; wire: Record<string, unknown>[] } {
  const seen = { errors: [] as unknown[], statuses: [] as number[], wire: [] as Record<string, unknown>[] };
  sdk.on('error', (e) => seen.errors.push(e));
  sdk.on('http_response', (r) => seen.statuses.push(r.status));
  sdk.on('http_request', (r) => {
    const body = JSON.parse(r.body) as { batch: Record<string, unknown>[] };
    seen.wire.push(...body.batch);
  });
  return seen;
}

beforeAll(ensureBuilt, 120_000);

describe.each(ENGINES)('the official @segment/analytics-node client against cairn serve ($name)', (engine) => {
  let server: CairnServer;
  let writeKey: string;
  let secretKey: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = await engine.freshUrl();
    cleanup = fresh.cleanup;
    ({ writeKey, secretKey } = await provisionWorkspace(fresh.url, { source: SOURCE }));
    server = await CairnServer.start({ databaseUrl: fresh.url });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await cleanup?.();
  });

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${secretKey}` } });
    const text = await res.text();
    expect(res.status, `${path}: ${text}`).toBe(200);
    return JSON.parse(text) as T;
  };
  const profile = (ref: string): Promise<ProfileBody> => get<ProfileBody>(`/v1/profiles/${encodeURIComponent(ref)}`);
  const timeline = async (ref: string): Promise<TimelineItem[]> => {
    const items: TimelineItem[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: TimelineItem[]; nextCursor: string | null } = await get(`/v1/profiles/${encodeURIComponent(ref)}/events?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  };

  it('delivers identify, track, page, screen, group, alias and a 500-event burst into profiles and timelines', async () => {
    const sdk = new Analytics({ writeKey, host: server.url, flushAt: 25, flushInterval: 20, maxRetries: 2, httpRequestTimeout: 30_000 });
    const seen = watch(sdk);
    const sent = new Map<string, SdkEvent>();
    const cb =
      (label: string) =>
      (err?: unknown, ctx?: { event: SdkEvent }): void => {
        if (err) seen.errors.push(err);
        else if (ctx) sent.set(label, ctx.event);
      };

    const tag = engine.name;
    const u1 = `sdk-${tag}-u1`;
    const anon1 = `sdk-${tag}-anon1`;
    const u2 = `sdk-${tag}-u2`;
    const anon2 = `sdk-${tag}-anon2`;
    sdk.identify({ userId: u1, anonymousId: anon1, traits: { email: `Ana.${tag}@Example.com`, first_name: 'Ana', plan: 'plus', city: 'Vienna' } }, cb('identify'));
    sdk.track({ userId: u1, event: 'Product Viewed', properties: { category: 'shoes', sku: 'shoes-7', price: 79.5 } }, cb('track'));
    sdk.page({ userId: u1, category: 'Shop', name: 'Product', properties: { path: '/p/shoes/7', title: 'Trail runner' } }, cb('page'));
    sdk.group({ userId: u1, groupId: 'acme-gmbh', traits: { name: 'ACME GmbH', employees: 40 } }, cb('group'));
    sdk.screen({ anonymousId: anon2, name: 'Home', properties: { variant: 'dark' } }, cb('screen'));
    sdk.alias({ userId: u2, previousId: anon2 }, cb('alias'));
    for (let i = 0; i < BULK; i++) {
      sdk.track({ userId: `sdk-${tag}-bulk${i % BULK_USERS}`, event: 'Bulk Tracked', properties: { i, even: i % 2 === 0 } }, cb(`bulk${i}`));
    }
    await sdk.closeAndFlush({ timeout: 30_000 });

    expect(seen.errors).toEqual([]);
    expect(sent.size).toBe(6 + BULK);
    expect(new Set(seen.wire.map((m) => m.messageId)).size).toBe(6 + BULK);
    expect(seen.statuses.length).toBeGreaterThanOrEqual(Math.ceil((6 + BULK) / 25));
    expect(seen.statuses.every((s) => s === 200)).toBe(true);
    const mid = (label: string): string => sent.get(label)?.messageId as string;

    // identify: traits, identities (email normalized), and the trait source is the key's name.
    const p1 = await profile(`user_id:${u1}`);
    expect(p1.traits).toMatchObject({ email: `Ana.${tag}@Example.com`, first_name: 'Ana', plan: 'plus', city: 'Vienna' });
    expect(p1.traitSources.plan?.source).toBe(SOURCE);
    expect(p1.identities).toEqual(expect.arrayContaining([{ kind: 'user_id', value: u1 }, { kind: 'anonymous_id', value: anon1 }, { kind: 'email', value: `ana.${tag}@example.com` }]));
    expect((await profile(`anonymous_id:${anon1}`)).id).toBe(p1.id);

    const t1 = await timeline(`user_id:${u1}`);
    const byId = new Map(t1.map((e) => [e.messageId, e]));
    expect(t1).toHaveLength(4);
    const identify = byId.get(mid('identify'));
    expect(identify).toMatchObject({ type: 'identify', source: SOURCE });
    expect(identify?.message).toMatchObject({ userId: u1, anonymousId: anon1, traits: { plan: 'plus' } });
    // The spec's timestamp rule: the client's own timestamp is the event time.
    expect(identify?.timestamp).toBe(new Date(sent.get('identify')?.timestamp as Date).toISOString());
    expect(identify?.message.sentAt).toEqual(expect.any(String));
    expect(byId.get(mid('track'))).toMatchObject({ type: 'track', name: 'Product Viewed', message: { properties: { category: 'shoes', sku: 'shoes-7', price: 79.5 } } });
    expect(byId.get(mid('page'))).toMatchObject({ type: 'page', name: 'Product', message: { category: 'Shop', properties: { path: '/p/shoes/7' } } });
    expect(byId.get(mid('group'))).toMatchObject({ type: 'group', message: { groupId: 'acme-gmbh', traits: { name: 'ACME GmbH' } } });

    // screen (anonymous) then alias: one profile for u2 holding both, reachable by either id.
    const p2 = await profile(`user_id:${u2}`);
    expect((await profile(`anonymous_id:${anon2}`)).id).toBe(p2.id);
    expect(p2.identities).toEqual(expect.arrayContaining([{ kind: 'user_id', value: u2 }, { kind: 'anonymous_id', value: anon2 }]));
    const t2 = await timeline(`user_id:${u2}`);
    expect(t2.map((e) => [e.type, e.messageId]).sort()).toEqual(
      [
        ['alias', mid('alias')],
        ['screen', mid('screen')],
      ].sort(),
    );
    expect(t2.find((e) => e.type === 'screen')).toMatchObject({ name: 'Home', message: { anonymousId: anon2, properties: { variant: 'dark' } } });
    expect(t2.find((e) => e.type === 'alias')?.message).toMatchObject({ userId: u2, previousId: anon2 });

    // The burst: every event on its user's timeline once, under the SDK's messageId.
    for (let u = 0; u < BULK_USERS; u++) {
      const items = await timeline(`user_id:sdk-${tag}-bulk${u}`);
      const expected = Array.from({ length: BULK / BULK_USERS }, (_, k) => mid(`bulk${k * BULK_USERS + u}`)).sort();
      expect(items.map((e) => e.messageId).sort()).toEqual(expected);
      expect(items.every((e) => e.type === 'track' && e.name === 'Bulk Tracked' && e.source === SOURCE)).toBe(true);
      const is = items.map((e) => (e.message.properties as { i: number }).i).sort((a, b) => a - b);
      expect(is).toEqual(Array.from({ length: BULK / BULK_USERS }, (_, k) => k * BULK_USERS + u));
    }
  });

  it("retries a batch whose acknowledgement was lost (503, connection reset) without storing it twice", async () => {
    // Between the SDK and Cairn: a relay that forwards every request and, for the first two,
    // throws Cairn's answer away — a 503 instead of the 200, then a reset connection — as a load
    // balancer or a flaky network would. The SDK must retry those batches; Cairn has already
    // committed them, so the retries must come back as duplicates.
    const relayed: { retry: string | undefined; messageIds: string[]; status: number; answer: { accepted?: number; duplicates?: number } }[] = [];
    const port = await freePort();
    const relay: Server = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        const upstream = await fetch(`${server.url}${req.url ?? '/'}`, {
          method: 'POST',
          headers: { authorization: req.headers.authorization ?? '', 'content-type': req.headers['content-type'] ?? 'application/json' },
          body,
        });
        const text = await upstream.text();
        const n = relayed.push({
          retry: req.headers['x-retry-count'] as string | undefined,
          messageIds: (JSON.parse(body) as { batch: { messageId: string }[] }).batch.map((m) => m.messageId),
          status: upstream.status,
          answer: JSON.parse(text) as { accepted?: number; duplicates?: number },
        });
        if (n === 1) res.writeHead(503, { 'content-type': 'application/json' }).end('{"success":false}');
        else if (n === 2) req.socket.destroy();
        else res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
      })().catch(() => req.socket.destroy());
    });
    await new Promise<void>((r) => relay.listen(port, '127.0.0.1', r));
    try {
      const sdk = new Analytics({ writeKey, host: `http://127.0.0.1:${port}`, flushAt: 10, flushInterval: 20, maxRetries: 3, httpRequestTimeout: 30_000 });
      const seen = watch(sdk);
      const user = `sdk-${engine.name}-retry`;
      for (let i = 0; i < 30; i++) sdk.track({ userId: user, event: 'Retried Event', properties: { i } });
      await sdk.closeAndFlush({ timeout: 30_000 });

      expect(seen.errors).toEqual([]);
      const unique = new Set(seen.wire.map((m) => m.messageId as string));
      expect(unique.size).toBe(30);
      // Cairn took the first two batches (200), the relay hid that, and the SDK sent them again.
      expect(relayed.slice(0, 2).map((r) => r.status)).toEqual([200, 200]);
      const retries = relayed.filter((r) => r.retry !== undefined);
      expect(retries.length).toBeGreaterThanOrEqual(2);
      const lost = new Set(relayed.slice(0, 2).flatMap((r) => r.messageIds));
      for (const r of retries) {
        expect(r.status).toBe(200);
        expect(r.messageIds.every((m) => lost.has(m))).toBe(true);
        expect(r.answer).toMatchObject({ accepted: 0, duplicates: r.messageIds.length });
      }
      const items = await timeline(`user_id:${user}`);
      expect(items.map((e) => e.messageId).sort()).toEqual([...unique].sort());
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });
});

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
