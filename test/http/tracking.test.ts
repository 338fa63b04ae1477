import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE, SECOND, VirtualClock } from '../../src/core/index.js';
import { createKey, revokeKey } from '../../src/governance/index.js';
import { ENGINES } from '../helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * The Segment-compatible tracking API end to end over HTTP (Fastify inject), on both engines:
 * every endpoint, auth, required fields, the spec's timestamp rules, dedupe, batches, limits,
 * compression, CORS and consent. Each test uses its own user ids so tests share one database.
 */

interface Reply {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  json: () => Record<string, unknown>;
}

interface TimelineItem {
  type: string;
  name: string | null;
  source: string;
  messageId: string;
  timestamp: string;
  receivedAt: string;
  message: Record<string, unknown>;
}

const TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const;

describe.each(ENGINES)('tracking API on $name', (engine) => {
  let t: TestApp;
  const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
  let seq = 0;
  const uid = (p: string): string => `${p}-${engine.name}-${++seq}`;

  beforeAll(async () => {
    t = await startTestApp(engine, { clock });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** POSTs a body (object → JSON; string/Buffer sent as is) with the write key unless auth is given. */
  async function post(url: string, body: unknown, opts: { auth?: string | null; headers?: Record<string, string> } = {}): Promise<Reply> {
    const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
    const auth = opts.auth === undefined ? basic(t.writeKey) : opts.auth;
    if (auth !== null) headers.authorization = auth;
    return (await t.app.inject({ method: 'POST', url, headers, payload })) as unknown as Reply;
  }

  async function timeline(ref: string): Promise<TimelineItem[]> {
    const r = await t.app.inject({ method: 'GET', url: `/v1/profiles/${encodeURIComponent(ref)}/events?limit=500`, headers: { authorization: `Bearer ${t.secretKey}` } });
    if (r.statusCode === 404) return [];
    expect(r.statusCode).toBe(200);
    return (r.json() as { items: TimelineItem[] }).items;
  }

  async function consentOf(ref: string): Promise<{ current: { purpose: string; channel: string; status: string }[]; ledger: unknown[] }> {
    const r = await t.app.inject({ method: 'GET', url: `/v1/profiles/${encodeURIComponent(ref)}/consent`, headers: { authorization: `Bearer ${t.secretKey}` } });
    expect(r.statusCode).toBe(200);
    return r.json();
  }

  /** A valid message of each type for a user. */
  function messageOf(type: (typeof TYPES)[number], userId: string, messageId: string): Record<string, unknown> {
    const base = { userId, messageId };
    switch (type) {
      case 'identify':
        return { ...base, traits: { plan: 'pro', email: `${userId}@example.com` } };
      case 'track':
        return { ...base, event: 'Order Completed', properties: { revenue: 42, currency: 'EUR' } };
      case 'page':
        return { ...base, name: 'Pricing', category: 'Docs', properties: { url: 'https://example.com/pricing' } };
      case 'screen':
        return { ...base, name: 'Home' };
      case 'group':
        return { ...base, groupId: 'acme', traits: { industry: 'retail' } };
      case 'alias':
        return { ...base, previousId: `anon-${userId}` };
    }
  }

  describe('happy path', () => {
    it.each(TYPES)('/v1/%s returns {success:true} and the event is on the timeline', async (type) => {
      const user = uid(type);
      const r = await post(`/v1/${type}`, messageOf(type, user, `m-${user}`));
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ success: true });
      const items = await timeline(`user_id:${user}`);
      expect(items.map((i) => [i.type, i.messageId])).toEqual([[type, `m-${user}`]]);
      expect(items[0]?.source).toBe('web');
    });

    it.each(['/v1/batch', '/v1/import'])('%s stores every message type', async (url) => {
      const user = uid('batch');
      const batch = TYPES.map((type, i) => ({ type, ...messageOf(type, user, `m-${user}-${i}`) }));
      const r = await post(url, { batch });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ success: true, accepted: 6, duplicates: 0, rejected: 0, errors: [] });
      const items = await timeline(`user_id:${user}`);
      expect(items.map((i) => i.type).sort()).toEqual([...TYPES].sort());
    });

    it('the type in the body of a single-type endpoint does not override the endpoint', async () => {
      const user = uid('typed');
      const r = await post('/v1/track', { type: 'identify', userId: user, event: 'Trial Started' });
      expect(r.statusCode).toBe(200);
      expect((await timeline(`user_id:${user}`)).map((i) => [i.type, i.name])).toEqual([['track', 'Trial Started']]);
    });
  });

  describe('authentication', () => {
    it('accepts the write key as writeKey in the body', async () => {
      const user = uid('wk');
      const r = await post('/v1/track', { writeKey: t.writeKey, userId: user, event: 'Product Viewed' }, { auth: null });
      expect(r.statusCode).toBe(200);
      expect(await timeline(`user_id:${user}`)).toHaveLength(1);
    });

    it('accepts writeKey in the body of a batch', async () => {
      const user = uid('wkb');
      const r = await post('/v1/batch', { writeKey: t.writeKey, batch: [{ type: 'track', userId: user, event: 'Product Viewed' }] }, { auth: null });
      expect(r.statusCode).toBe(200);
      expect(await timeline(`user_id:${user}`)).toHaveLength(1);
    });

    it.each([...TYPES.map((x) => `/v1/${x}`), '/v1/batch', '/v1/import'])('%s without a key → 401 CAIRN_ERR_AUTH_MISSING', async (url) => {
      const user = uid('nokey');
      const r = await post(url, url.endsWith('batch') || url.endsWith('import') ? { batch: [{ type: 'track', userId: user, event: 'X' }] } : messageOf('track', user, 'x'), { auth: null });
      expect(r.statusCode).toBe(401);
      expect(r.json().code).toBe('CAIRN_ERR_AUTH_MISSING');
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('an empty Basic user is a missing key', async () => {
      const r = await post('/v1/track', { userId: uid('e'), event: 'X' }, { auth: `Basic ${Buffer.from(':').toString('base64')}` });
      expect(r.statusCode).toBe(401);
      expect(r.json().code).toBe('CAIRN_ERR_AUTH_MISSING');
    });

    it('an unknown key → 401 CAIRN_ERR_AUTH_INVALID (header and body)', async () => {
      const user = uid('unknown');
      const a = await post('/v1/track', { userId: user, event: 'X' }, { auth: basic('cw_not_a_real_key') });
      expect(a.statusCode).toBe(401);
      expect(a.json().code).toBe('CAIRN_ERR_AUTH_INVALID');
      const b = await post('/v1/track', { writeKey: 'cw_nope', userId: user, event: 'X' }, { auth: null });
      expect(b.statusCode).toBe(401);
      expect(b.json().code).toBe('CAIRN_ERR_AUTH_INVALID');
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('a revoked key → 401 CAIRN_ERR_AUTH_INVALID', async () => {
      const k = await createKey(t.rt.store.db, clock, t.workspaceId, 'write', 'revoked-source');
      const user = uid('revoked');
      expect((await post('/v1/track', { userId: user, event: 'Before' }, { auth: basic(k.key) })).statusCode).toBe(200);
      await revokeKey(t.rt.store.db, clock, t.workspaceId, k.info.id);
      t.rt.keys.forget(); // the revoking process drops its cache at once; other processes within the TTL
      const r = await post('/v1/track', { userId: user, event: 'After' }, { auth: basic(k.key) });
      expect(r.statusCode).toBe(401);
      expect(r.json().code).toBe('CAIRN_ERR_AUTH_INVALID');
      expect((await timeline(`user_id:${user}`)).map((i) => i.name)).toEqual(['Before']);
    });

    it('a write key on a profile read → 403 CAIRN_ERR_AUTH_SCOPE', async () => {
      const user = uid('scope');
      await post('/v1/identify', { userId: user });
      for (const auth of [basic(t.writeKey), `Bearer ${t.writeKey}`]) {
        for (const path of ['', '/events', '/consent', '/identity-log']) {
          const r = await t.app.inject({ method: 'GET', url: `/v1/profiles/user_id:${user}${path}`, headers: { authorization: auth } });
          expect(r.statusCode, `${auth.split(' ')[0]} ${path}`).toBe(403);
          expect(r.json().code).toBe('CAIRN_ERR_AUTH_SCOPE');
        }
      }
    });
  });

  describe('required fields', () => {
    const cases: [string, string, Record<string, unknown>, string][] = [
      ['track without event', '/v1/track', { userId: 'u1' }, 'event'],
      ['track with an empty event', '/v1/track', { userId: 'u1', event: '  ' }, 'event'],
      ['alias without previousId', '/v1/alias', { userId: 'u1' }, 'previousId'],
      ['alias without userId', '/v1/alias', { previousId: 'a1', anonymousId: 'a2' }, 'userId'],
      ['group without groupId', '/v1/group', { userId: 'u1' }, 'groupId'],
      ['identify without userId or anonymousId', '/v1/identify', { traits: { email: 'a@example.com' } }, 'userId'],
      ['track without userId or anonymousId', '/v1/track', { event: 'X' }, 'userId'],
      ['page without userId or anonymousId', '/v1/page', { name: 'Home' }, 'userId'],
    ];
    it.each(cases)('%s → 400 CAIRN_ERR_INVALID_EVENT naming the field', async (_label, url, body, field) => {
      const r = await post(url, body);
      expect(r.statusCode).toBe(400);
      const j = r.json();
      expect(j.code).toBe('CAIRN_ERR_INVALID_EVENT');
      expect(j.success).toBe(false);
      // The message is "{path}: {reason}"; the path is the field.
      expect(String(j.message).split(':')[0]).toBe(field);
    });

    it('anonymousId alone is enough', async () => {
      const anon = uid('anon');
      const r = await post('/v1/track', { anonymousId: anon, event: 'Product Viewed' });
      expect(r.statusCode).toBe(200);
      expect(await timeline(`anonymous_id:${anon}`)).toHaveLength(1);
    });
  });

  describe('timestamps (Segment spec)', () => {
    async function storedTimestamp(body: Record<string, unknown>, url = '/v1/track'): Promise<string | undefined> {
      const user = uid('ts');
      const msg = url === '/v1/batch' ? { ...body, batch: (body.batch as Record<string, unknown>[]).map((m) => ({ ...m, userId: user })) } : { ...body, userId: user, event: 'Clock Test' };
      const r = await post(url, msg);
      expect(r.statusCode, JSON.stringify(r.json())).toBe(200);
      const items = await timeline(`user_id:${user}`);
      expect(items).toHaveLength(1);
      return items[0]?.timestamp;
    }
    const iso = (ms: number): string => new Date(ms).toISOString();

    it('timestamp wins over originalTimestamp and sentAt', async () => {
      const R = clock.now();
      const ts = await storedTimestamp({ timestamp: iso(R - 3 * DAY), originalTimestamp: iso(R - MINUTE), sentAt: iso(R) });
      expect(ts).toBe(iso(R - 3 * DAY));
    });

    it('without timestamp: receivedAt − (sentAt − originalTimestamp) corrects a skewed device clock', async () => {
      const R = clock.now();
      // The device clock runs 5 minutes ahead; the event happened 30 s before the device sent it.
      const sentAt = R + 5 * MINUTE;
      const original = sentAt - 30 * SECOND;
      const ts = await storedTimestamp({ originalTimestamp: iso(original), sentAt: iso(sentAt) });
      expect(ts).toBe(iso(R - 30 * SECOND));
    });

    it('originalTimestamp alone is taken as is; nothing at all means receivedAt', async () => {
      const R = clock.now();
      expect(await storedTimestamp({ originalTimestamp: iso(R - 2 * DAY) })).toBe(iso(R - 2 * DAY));
      expect(await storedTimestamp({})).toBe(iso(R));
    });

    it('receivedAt on the timeline is the server clock', async () => {
      const user = uid('recv');
      const R = clock.now();
      await post('/v1/track', { userId: user, event: 'X', timestamp: iso(R - DAY) });
      const [item] = await timeline(`user_id:${user}`);
      expect(item?.receivedAt).toBe(iso(R));
      expect(item?.message.receivedAt).toBe(iso(R));
    });

    it('time zone offsets are honoured', async () => {
      expect(await storedTimestamp({ timestamp: '2026-11-20T12:00:00+02:00' })).toBe('2026-11-20T10:00:00.000Z');
      expect(await storedTimestamp({ timestamp: '2026-11-20T12:00:00.250-0130' })).toBe('2026-11-20T13:30:00.250Z');
      expect(await storedTimestamp({ timestamp: '2026-11-20T12:00:00.123456Z' })).toBe('2026-11-20T12:00:00.123Z');
    });

    it('a leap day is a date only in a leap year', async () => {
      expect(await storedTimestamp({ timestamp: '2024-02-29T08:00:00Z' })).toBe('2024-02-29T08:00:00.000Z');
      const r = await post('/v1/track', { userId: uid('leap'), event: 'X', timestamp: '2026-02-29T08:00:00Z' });
      expect(r.json().code).toBe('CAIRN_ERR_INVALID_TIMESTAMP');
    });

    it('a date-time without a zone is UTC whatever the server time zone', async () => {
      const before = process.env.TZ;
      process.env.TZ = 'America/New_York';
      try {
        expect(await storedTimestamp({ timestamp: '2026-11-20T08:00:00' })).toBe('2026-11-20T08:00:00.000Z');
        expect(await storedTimestamp({ timestamp: '2026-11-20 08:00:00.5' })).toBe('2026-11-20T08:00:00.500Z');
      } finally {
        if (before === undefined) delete process.env.TZ;
        else process.env.TZ = before;
      }
    });

    it('batch-level sentAt applies to items without their own', async () => {
      const R = clock.now();
      const sentAt = R - 10 * MINUTE; // device clock 10 minutes behind
      const ts = await storedTimestamp({ sentAt: iso(sentAt), batch: [{ type: 'track', event: 'Batch Clock', originalTimestamp: iso(sentAt - 2 * MINUTE) }] }, '/v1/batch');
      expect(ts).toBe(iso(R - 2 * MINUTE));
    });

    it('batch-level context applies to items; an item key wins', async () => {
      const user = uid('ctx');
      const r = await post('/v1/batch', {
        context: { library: { name: 'analytics-node', version: '3.1.0' }, locale: 'de-DE' },
        batch: [
          { type: 'track', userId: user, event: 'A', messageId: `${user}-a` },
          { type: 'track', userId: user, event: 'B', messageId: `${user}-b`, context: { locale: 'fr-FR' } },
        ],
      });
      expect(r.statusCode).toBe(200);
      const items = await timeline(`user_id:${user}`);
      const byId = new Map(items.map((i) => [i.messageId, i.message.context as Record<string, unknown>]));
      expect(byId.get(`${user}-a`)).toEqual({ library: { name: 'analytics-node', version: '3.1.0' }, locale: 'de-DE' });
      expect(byId.get(`${user}-b`)).toEqual({ library: { name: 'analytics-node', version: '3.1.0' }, locale: 'fr-FR' });
    });

    it('batch-level context carrying traits.email resolves identity for every item', async () => {
      const user = uid('ctxmail');
      const email = `${user}@example.com`;
      const r = await post('/v1/batch', { context: { traits: { email } }, batch: [{ type: 'track', userId: user, event: 'A' }] });
      expect(r.statusCode).toBe(200);
      expect(await timeline(`email:${email}`)).toHaveLength(1);
    });

    const bad: [string, unknown][] = [
      ['timestamp', 'yesterday'],
      ['timestamp', '2026-13-01T00:00:00Z'],
      ['timestamp', '2026-02-30T10:00:00Z'],
      ['timestamp', '2026-04-31'],
      ['timestamp', '2026-11-23T25:00:00Z'],
      ['timestamp', '2026-11-23T24:00:00Z'],
      ['timestamp', '2026-11-23T10:61:00Z'],
      ['timestamp', '2026-11-23T10:00:00+25:00'],
      ['timestamp', 1763892000000],
      ['timestamp', { at: 'now' }],
      ['originalTimestamp', 'Mon, 23 Nov 2026 10:00:00 GMT'],
      ['sentAt', '23/11/2026'],
      ['sentAt', true],
    ];
    it.each(bad)('%s = %j → 400 CAIRN_ERR_INVALID_TIMESTAMP', async (field, value) => {
      const user = uid('badts');
      const r = await post('/v1/track', { userId: user, event: 'X', [field]: value });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('CAIRN_ERR_INVALID_TIMESTAMP');
      expect(String(r.json().message).startsWith(field)).toBe(true);
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('an invalid batch-level sentAt rejects every item with CAIRN_ERR_INVALID_TIMESTAMP', async () => {
      const user = uid('badsent');
      const r = await post('/v1/batch', { sentAt: 'not a date', batch: [{ type: 'track', userId: user, event: 'A' }, { type: 'track', userId: user, event: 'B' }] });
      expect(r.statusCode).toBe(400);
      const j = r.json() as { code: string; details: { index: number; code: string }[] };
      expect(j.code).toBe('CAIRN_ERR_BATCH_REJECTED');
      expect(j.details.map((d) => [d.index, d.code])).toEqual([
        [0, 'CAIRN_ERR_INVALID_TIMESTAMP'],
        [1, 'CAIRN_ERR_INVALID_TIMESTAMP'],
      ]);
    });
  });

  describe('dedupe by messageId', () => {
    it('the same messageId twice is stored once; the second answer says duplicate', async () => {
      const user = uid('dup');
      const msg = { userId: user, event: 'Order Completed', messageId: `${user}-m1`, properties: { revenue: 10 } };
      const a = await post('/v1/track', msg);
      expect(a.json()).toEqual({ success: true });
      const b = await post('/v1/track', { ...msg, properties: { revenue: 99 } });
      expect(b.statusCode).toBe(200);
      expect(b.json()).toEqual({ success: true, duplicate: true });
      const items = await timeline(`user_id:${user}`);
      expect(items).toHaveLength(1);
      expect((items[0]?.message.properties as { revenue: number }).revenue).toBe(10);
    });

    it('duplicates inside one batch and across batch and single calls', async () => {
      const user = uid('dupb');
      const m = { type: 'track', userId: user, event: 'A', messageId: `${user}-x` };
      const r = await post('/v1/batch', { batch: [m, m, { ...m, messageId: `${user}-y` }] });
      expect(r.json()).toMatchObject({ accepted: 2, duplicates: 1, rejected: 0 });
      const again = await post('/v1/track', m);
      expect(again.json()).toEqual({ success: true, duplicate: true });
      expect(await timeline(`user_id:${user}`)).toHaveLength(2);
    });

    it('dedupe is per source: another write key may reuse the id', async () => {
      const other = await createKey(t.rt.store.db, clock, t.workspaceId, 'write', 'ios-app');
      const user = uid('dups');
      const m = { userId: user, event: 'A', messageId: `${user}-same` };
      expect((await post('/v1/track', m)).json()).toEqual({ success: true });
      expect((await post('/v1/track', m, { auth: basic(other.key) })).json()).toEqual({ success: true });
      expect((await timeline(`user_id:${user}`)).map((i) => i.source).sort()).toEqual(['ios-app', 'web']);
    });

    it('after the dedupe window (7 days) the same id is stored again', async () => {
      const user = uid('dupw');
      const m = { userId: user, event: 'A', messageId: `${user}-late` };
      expect((await post('/v1/track', m)).json()).toEqual({ success: true });
      clock.advance(6 * DAY);
      expect((await post('/v1/track', m)).json()).toEqual({ success: true, duplicate: true });
      clock.advance(DAY + MINUTE); // 7 days and a minute after the first
      expect((await post('/v1/track', m)).json()).toEqual({ success: true });
      expect((await post('/v1/track', m)).json()).toEqual({ success: true, duplicate: true });
      expect(await timeline(`user_id:${user}`)).toHaveLength(2);
    });
  });

  describe('batch', () => {
    it('mixed good and bad items → 200 with per-item errors; the good ones are stored', async () => {
      const user = uid('mixed');
      const r = await post('/v1/batch', {
        batch: [
          { type: 'track', userId: user, event: 'Good One', messageId: `${user}-1` },
          { type: 'track', userId: user, messageId: `${user}-2` },
          { type: 'trak', userId: user, event: 'Typo' },
          'not an object',
          { type: 'identify', userId: user, traits: { plan: 'pro' }, messageId: `${user}-5` },
          { type: 'track', userId: user, event: 'Bad Time', timestamp: 'soon' },
          { type: 'group', userId: user },
        ],
      });
      expect(r.statusCode).toBe(200);
      const j = r.json() as { success: boolean; accepted: number; rejected: number; errors: { index: number; code: string; message: string }[] };
      expect(j.accepted).toBe(2);
      expect(j.rejected).toBe(5);
      expect(j.errors.map((e) => [e.index, e.code])).toEqual([
        [1, 'CAIRN_ERR_INVALID_EVENT'],
        [2, 'CAIRN_ERR_INVALID_EVENT'],
        [3, 'CAIRN_ERR_INVALID_EVENT'],
        [5, 'CAIRN_ERR_INVALID_TIMESTAMP'],
        [6, 'CAIRN_ERR_INVALID_EVENT'],
      ]);
      expect(j.errors[0]?.message.split(':')[0]).toBe('event');
      expect(j.errors[4]?.message.split(':')[0]).toBe('groupId');
      expect((await timeline(`user_id:${user}`)).map((i) => i.messageId).sort()).toEqual([`${user}-1`, `${user}-5`]);
    });

    it('all items bad → 400 CAIRN_ERR_BATCH_REJECTED with the reason of each', async () => {
      const r = await post('/v1/batch', { batch: [{ type: 'track' }, { type: 'alias', userId: 'x' }, 42] });
      expect(r.statusCode).toBe(400);
      const j = r.json() as { code: string; details: { index: number; code: string }[] };
      expect(j.code).toBe('CAIRN_ERR_BATCH_REJECTED');
      expect(j.details.map((d) => d.index)).toEqual([0, 1, 2]);
      expect(j.details.every((d) => d.code === 'CAIRN_ERR_INVALID_EVENT')).toBe(true);
    });

    it('a batch of only duplicates is a success, not a rejection', async () => {
      const user = uid('alldup');
      const m = { type: 'track', userId: user, event: 'A', messageId: `${user}-1` };
      await post('/v1/batch', { batch: [m] });
      const r = await post('/v1/batch', { batch: [m] });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ accepted: 0, duplicates: 1, rejected: 0 });
    });

    it('an empty batch → 400 CAIRN_ERR_BATCH_EMPTY', async () => {
      for (const url of ['/v1/batch', '/v1/import']) {
        const r = await post(url, { batch: [] });
        expect(r.statusCode).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_BATCH_EMPTY');
      }
    });

    it('a body without a batch array → 400 CAIRN_ERR_VALIDATION', async () => {
      for (const body of [{}, { batch: {} }, { batch: 'x' }, [], [{ type: 'track', userId: 'u', event: 'A' }]]) {
        const r = await post('/v1/batch', body);
        expect(r.statusCode, JSON.stringify(body)).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_VALIDATION');
      }
    });
  });

  describe('limits', () => {
    it('a single event body over 32 KB → 413 CAIRN_ERR_PAYLOAD_TOO_LARGE, nothing stored', async () => {
      const user = uid('big');
      for (const type of TYPES) {
        const r = await post(`/v1/${type}`, { ...messageOf(type, user, `${user}-${type}`), properties: { blob: 'x'.repeat(33 * 1024) } });
        expect(r.statusCode, type).toBe(413);
        expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
      }
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('a single event just under 32 KB is accepted', async () => {
      const user = uid('edge');
      const shell = JSON.stringify({ userId: user, event: 'Edge', properties: { blob: '' } });
      const r = await post('/v1/track', { userId: user, event: 'Edge', properties: { blob: 'x'.repeat(32 * 1024 - shell.length - 10) } });
      expect(r.statusCode).toBe(200);
    });

    it('a small gzip body that inflates beyond 32 KB → 413', async () => {
      const body = gzipSync(JSON.stringify({ userId: uid('gzbig'), event: 'X', properties: { blob: 'a'.repeat(200 * 1024) } }));
      expect(body.length).toBeLessThan(4 * 1024);
      const r = await post('/v1/track', body, { headers: { 'content-encoding': 'gzip' } });
      expect(r.statusCode).toBe(413);
      expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
    });

    it('a batch over 500 KB → 413 CAIRN_ERR_PAYLOAD_TOO_LARGE, nothing stored', async () => {
      const user = uid('bigbatch');
      const batch = Array.from({ length: 40 }, (_, i) => ({ type: 'track', userId: user, event: 'A', messageId: `${user}-${i}`, properties: { blob: 'y'.repeat(13 * 1024) } }));
      const r = await post('/v1/batch', { batch });
      expect(r.statusCode).toBe(413);
      expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('an item over 32 KB inside a fine batch → that item CAIRN_ERR_EVENT_TOO_LARGE, the others kept', async () => {
      const user = uid('bigitem');
      const r = await post('/v1/batch', {
        batch: [
          { type: 'track', userId: user, event: 'A', messageId: `${user}-0` },
          { type: 'track', userId: user, event: 'Huge', messageId: `${user}-1`, properties: { blob: 'z'.repeat(40 * 1024) } },
          { type: 'track', userId: user, event: 'C', messageId: `${user}-2` },
        ],
      });
      expect(r.statusCode).toBe(200);
      const j = r.json() as { accepted: number; errors: { index: number; code: string; messageId?: string }[] };
      expect(j.accepted).toBe(2);
      expect(j.errors.map((e) => [e.index, e.code])).toEqual([[1, 'CAIRN_ERR_EVENT_TOO_LARGE']]);
      expect((await timeline(`user_id:${user}`)).map((i) => i.messageId).sort()).toEqual([`${user}-0`, `${user}-2`]);
    });
  });

  describe('compression', () => {
    const encoders: [string, (b: Buffer) => Buffer][] = [
      ['gzip', (b) => gzipSync(b)],
      ['x-gzip', (b) => gzipSync(b)],
      ['deflate', (b) => deflateSync(b)],
      ['br', (b) => brotliCompressSync(b)],
    ];
    it.each(encoders)('a %s body is accepted', async (encoding, encode) => {
      const user = uid(encoding);
      const r = await post('/v1/track', encode(Buffer.from(JSON.stringify({ userId: user, event: 'Compressed' }))), { headers: { 'content-encoding': encoding } });
      expect(r.statusCode).toBe(200);
      expect((await timeline(`user_id:${user}`)).map((i) => i.name)).toEqual(['Compressed']);
    });

    it('a gzip batch is accepted', async () => {
      const user = uid('gzbatch');
      const batch = Array.from({ length: 50 }, (_, i) => ({ type: 'track', userId: user, event: 'Product Viewed', messageId: `${user}-${i}` }));
      const r = await post('/v1/batch', gzipSync(JSON.stringify({ batch })), { headers: { 'content-encoding': 'gzip' } });
      expect(r.json()).toMatchObject({ accepted: 50 });
      expect(await timeline(`user_id:${user}`)).toHaveLength(50);
    });
  });

  describe('browsers', () => {
    it('a CORS preflight from any origin allows POST with Authorization and Content-Type', async () => {
      for (const url of ['/v1/track', '/v1/batch', '/v1/identify']) {
        const r = await t.app.inject({
          method: 'OPTIONS',
          url,
          headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
        });
        expect(r.statusCode).toBeLessThan(300);
        expect(r.headers['access-control-allow-origin']).toBe('https://shop.example.com');
        const allowed = String(r.headers['access-control-allow-headers']).toLowerCase().split(/\s*,\s*/);
        expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type']));
        expect(String(r.headers['access-control-allow-methods'])).toContain('POST');
      }
    });

    it('the actual POST from an origin carries Access-Control-Allow-Origin', async () => {
      const r = await post('/v1/track', { userId: uid('cors'), event: 'X' }, { headers: { origin: 'https://app.example.org' } });
      expect(r.statusCode).toBe(200);
      expect(r.headers['access-control-allow-origin']).toBe('https://app.example.org');
    });

    it('errors also carry Access-Control-Allow-Origin so a browser can read them', async () => {
      const r = await post('/v1/track', { event: 'X' }, { headers: { origin: 'https://app.example.org' }, auth: null });
      expect(r.statusCode).toBe(401);
      expect(r.headers['access-control-allow-origin']).toBe('https://app.example.org');
    });

    it('a text/plain beacon body with writeKey inside is accepted', async () => {
      const user = uid('beacon');
      const r = await post('/v1/track', JSON.stringify({ writeKey: t.writeKey, userId: user, event: 'Page Left' }), { auth: null, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      expect(r.statusCode).toBe(200);
      expect(await timeline(`user_id:${user}`)).toHaveLength(1);
    });
  });

  describe('consent from tracking calls', () => {
    it('identify traits.$consent is recorded and kept out of the traits', async () => {
      const user = uid('consent');
      const r = await post('/v1/identify', { userId: user, traits: { name: 'Ana', $consent: { marketing: { email: 'granted', sms: 'denied' }, service: 'granted' } } });
      expect(r.statusCode).toBe(200);
      const c = await consentOf(`user_id:${user}`);
      expect(c.current.map((s) => [s.purpose, s.channel, s.status])).toEqual([
        ['marketing', 'email', 'granted'],
        ['marketing', 'sms', 'denied'],
        ['service', '*', 'granted'],
      ]);
      const p = await t.app.inject({ method: 'GET', url: `/v1/profiles/user_id:${user}`, headers: { authorization: `Bearer ${t.secretKey}` } });
      expect(p.json().traits).toEqual({ name: 'Ana' });
    });

    it('context.consent.categoryPreferences is recorded per purpose', async () => {
      const user = uid('prefs');
      const r = await post('/v1/track', { userId: user, event: 'Consent Banner Closed', context: { consent: { categoryPreferences: { marketing: true, service: false, advertising: true } } } });
      expect(r.statusCode).toBe(200);
      const c = await consentOf(`user_id:${user}`);
      // advertising is not a purpose of this workspace and is not recorded
      expect(c.current.map((s) => [s.purpose, s.channel, s.status])).toEqual([
        ['marketing', '*', 'granted'],
        ['service', '*', 'denied'],
      ]);
    });

    it('batch-level context consent applies to items', async () => {
      const user = uid('bprefs');
      const r = await post('/v1/batch', { context: { consent: { categoryPreferences: { marketing: false } } }, batch: [{ type: 'page', userId: user, name: 'Home' }] });
      expect(r.statusCode).toBe(200);
      expect((await consentOf(`user_id:${user}`)).current.map((s) => [s.purpose, s.status])).toEqual([['marketing', 'denied']]);
    });

    it('an unknown purpose → 400 CAIRN_ERR_UNKNOWN_PURPOSE and nothing stored', async () => {
      const user = uid('unk');
      const r = await post('/v1/identify', { userId: user, traits: { $consent: { newsletter: 'granted' } } });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('CAIRN_ERR_UNKNOWN_PURPOSE');
      expect(await timeline(`user_id:${user}`)).toHaveLength(0);
    });

    it('an invalid status → 400 CAIRN_ERR_INVALID_CONSENT', async () => {
      for (const $consent of [{ marketing: 'yes' }, { marketing: { email: true } }, 'granted', [{ channel: 'email' }], { marketing: 5 }]) {
        const r = await post('/v1/identify', { userId: uid('bad'), traits: { $consent } });
        expect(r.statusCode, JSON.stringify($consent)).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_INVALID_CONSENT');
      }
      const r = await post('/v1/track', { userId: uid('bad'), event: 'X', context: { consent: { categoryPreferences: { marketing: 'yes' } } } });
      expect(r.json().code).toBe('CAIRN_ERR_INVALID_CONSENT');
    });
  });
});
