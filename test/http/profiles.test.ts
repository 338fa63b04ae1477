import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE, VirtualClock } from '../../src/core/index.js';
import { ENGINES } from '../helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * The profile API over HTTP on both engines: lookups by id and by every identity kind, the paged
 * timeline, the consent ledger, the identity log after a merge, and the OpenAPI document.
 */

interface Reply {
  statusCode: number;
  json: () => Record<string, unknown>;
}
interface TimelinePage {
  items: { messageId: string; timestamp: string; type: string }[];
  nextCursor: string | null;
}
interface ConsentReply {
  current: { purpose: string; channel: string; status: string; source: string; occurredAt: string; wordingVersion: string | null }[];
  ledger: { purpose: string; channel: string; status: string; occurredAt: string; source: string }[];
}

describe.each(ENGINES)('profile API on $name', (engine) => {
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

  async function track(url: string, body: unknown): Promise<Reply> {
    return (await t.app.inject({ method: 'POST', url, headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify(body) })) as unknown as Reply;
  }
  async function get(path: string, key = t.secretKey): Promise<Reply> {
    return (await t.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${key}` } })) as unknown as Reply;
  }
  async function postConsent(ref: string, body: unknown, key = t.secretKey): Promise<Reply> {
    return (await t.app.inject({ method: 'POST', url: `/v1/profiles/${encodeURIComponent(ref)}/consent`, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) })) as unknown as Reply;
  }
  const ok = (r: Reply): Record<string, unknown> => {
    expect(r.statusCode, JSON.stringify(r.json())).toBe(200);
    return r.json();
  };

  describe('lookup', () => {
    it('finds the same profile by id, user_id, email (any case), and anonymous_id', async () => {
      const user = uid('ana');
      const anon = uid('anon');
      const mixedCase = `Ana.Lopez+${user}@Example.COM`;
      ok(await track('/v1/identify', { userId: user, anonymousId: anon, traits: { email: mixedCase, plan: 'pro' } }));

      const byUser = ok(await get(`/v1/profiles/user_id:${user}`));
      const id = byUser.id as string;
      expect(typeof id).toBe('string');
      expect(byUser.traits).toMatchObject({ plan: 'pro', email: mixedCase });
      expect(byUser.identities).toEqual(
        expect.arrayContaining([
          { kind: 'user_id', value: user },
          { kind: 'email', value: mixedCase.toLowerCase() },
          { kind: 'anonymous_id', value: anon },
        ]),
      );

      const refs = [id, `email:${mixedCase}`, `email:${mixedCase.toLowerCase()}`, `email:${mixedCase.toUpperCase()}`, `email:  ${mixedCase}  `, `anonymous_id:${anon}`];
      for (const ref of refs) {
        const r = ok(await get(`/v1/profiles/${encodeURIComponent(ref)}`));
        expect(r.id, ref).toBe(id);
      }
    });

    it('the longest accepted ids can be looked up (a 256-character userId, a long email)', async () => {
      const user = `${uid('long')}-`.padEnd(256, 'x');
      const email = `${'e'.repeat(200)}@${'d'.repeat(60)}.example.com`;
      ok(await track('/v1/identify', { userId: user, traits: { email } }));
      const id = ok(await get(`/v1/profiles/${encodeURIComponent(`user_id:${user}`)}`)).id;
      expect(ok(await get(`/v1/profiles/${encodeURIComponent(`email:${email}`)}/events`)).items).toHaveLength(1);
      expect(ok(await get(`/v1/profiles/${encodeURIComponent(`email:${email.toUpperCase()}`)}`)).id).toBe(id);
    });

    it('the profile carries traits with their source and time, and computed traits', async () => {
      const user = uid('computed');
      ok(await track('/v1/identify', { userId: user, traits: { plan: 'basic' }, timestamp: '2026-11-20T10:00:00Z' }));
      ok(await track('/v1/track', { userId: user, event: 'Order Completed', properties: { revenue: 30 } }));
      ok(await track('/v1/track', { userId: user, event: 'Order Completed', properties: { revenue: 12.5 } }));
      const p = ok(await get(`/v1/profiles/user_id:${user}`));
      expect(p.traitSources).toEqual({ plan: { source: 'web', at: '2026-11-20T10:00:00.000Z' } });
      expect(p.computed).toMatchObject({ orders_60d: 2, revenue_60d: 42.5 });
    });

    it('an unknown profile → 404 CAIRN_ERR_PROFILE_NOT_FOUND', async () => {
      for (const ref of ['user_id:nobody-here', 'email:nobody@example.com', 'anonymous_id:zzz', '0190d1f0-0000-7000-8000-000000000000', 'not-an-id']) {
        for (const suffix of ['', '/events', '/consent', '/identity-log']) {
          const r = await get(`/v1/profiles/${encodeURIComponent(ref)}${suffix}`);
          expect(r.statusCode, `${ref}${suffix}`).toBe(404);
          expect(r.json().code).toBe('CAIRN_ERR_PROFILE_NOT_FOUND');
        }
      }
      const c = await postConsent('user_id:nobody-here', { purpose: 'marketing', status: 'granted' });
      expect(c.statusCode).toBe(404);
      expect(c.json().code).toBe('CAIRN_ERR_PROFILE_NOT_FOUND');
    });

    it('a bad identity kind or empty value → 400 CAIRN_ERR_BAD_IDENTITY', async () => {
      for (const ref of ['shoe_size:42', 'user_id:', 'email:   ', ':value', 'USER_ID:x']) {
        const r = await get(`/v1/profiles/${encodeURIComponent(ref)}`);
        expect(r.statusCode, ref).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_BAD_IDENTITY');
      }
    });

    it('without a key → 401; with a write key → 403', async () => {
      const r = await t.app.inject({ method: 'GET', url: '/v1/profiles/user_id:x' });
      expect(r.statusCode).toBe(401);
      expect(r.json().code).toBe('CAIRN_ERR_AUTH_MISSING');
      const w = await get('/v1/profiles/user_id:x', t.writeKey);
      expect(w.statusCode).toBe(403);
      expect(w.json().code).toBe('CAIRN_ERR_AUTH_SCOPE');
      const c = await postConsent('user_id:x', { purpose: 'marketing', status: 'granted' }, t.writeKey);
      expect(c.statusCode).toBe(403);
      expect(c.json().code).toBe('CAIRN_ERR_AUTH_SCOPE');
    });
  });

  describe('timeline paging', () => {
    it('walks every event exactly once, newest first, including events that share a timestamp', async () => {
      const user = uid('pager');
      const base = Date.parse('2026-11-01T00:00:00.000Z');
      // 23 events over 8 distinct timestamps (ties on purpose), sent in a scrambled order in two batches.
      const events = Array.from({ length: 23 }, (_, i) => ({ type: 'track', userId: user, event: `E${i}`, messageId: `${user}-${i}`, timestamp: new Date(base + ((i * 5) % 8) * MINUTE).toISOString() }));
      const scrambled = [...events].sort((a, b) => ((a.messageId.length * 7 + Number(a.event.slice(1)) * 13) % 23) - ((b.messageId.length * 7 + Number(b.event.slice(1)) * 13) % 23));
      ok(await track('/v1/batch', { batch: scrambled.slice(0, 11) }));
      ok(await track('/v1/batch', { batch: scrambled.slice(11) }));

      for (const limit of [1, 5, 7, 23, 50]) {
        const seen: { messageId: string; timestamp: string }[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const q: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const page = ok(await get(`/v1/profiles/user_id:${user}/events?${q}`)) as unknown as TimelinePage;
          expect(page.items.length).toBeLessThanOrEqual(limit);
          seen.push(...page.items);
          cursor = page.nextCursor;
          pages++;
          expect(pages).toBeLessThan(100);
        } while (cursor);
        expect(seen.map((s) => s.messageId).sort(), `limit ${limit}`).toEqual(events.map((e) => e.messageId).sort());
        expect(new Set(seen.map((s) => s.messageId)).size).toBe(23);
        const times = seen.map((s) => Date.parse(s.timestamp));
        for (let i = 1; i < times.length; i++) expect(times[i - 1] as number).toBeGreaterThanOrEqual(times[i] as number);
        expect(pages).toBe(Math.ceil(23 / limit)); // no empty last page
      }
    });

    it('filters by type and source', async () => {
      const user = uid('filter');
      ok(await track('/v1/batch', { batch: [{ type: 'identify', userId: user }, { type: 'track', userId: user, event: 'A' }, { type: 'page', userId: user, name: 'Home' }] }));
      const page = ok(await get(`/v1/profiles/user_id:${user}/events?type=track`)) as unknown as TimelinePage;
      expect(page.items.map((i) => i.type)).toEqual(['track']);
      const none = ok(await get(`/v1/profiles/user_id:${user}/events?source=crm`)) as unknown as TimelinePage;
      expect(none.items).toEqual([]);
    });

    it('a bad cursor → 400 CAIRN_ERR_BAD_CURSOR', async () => {
      const user = uid('cursor');
      ok(await track('/v1/track', { userId: user, event: 'A' }));
      const bad = ['garbage', '!!!', Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[1]').toString('base64url'), Buffer.from('["x","y"]').toString('base64url'), Buffer.from('[1,2]').toString('base64url')];
      for (const cursor of bad) {
        const r = await get(`/v1/profiles/user_id:${user}/events?cursor=${encodeURIComponent(cursor)}`);
        expect(r.statusCode, cursor).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_BAD_CURSOR');
      }
    });

    it('a limit out of range → 400 CAIRN_ERR_VALIDATION', async () => {
      const user = uid('limit');
      ok(await track('/v1/track', { userId: user, event: 'A' }));
      for (const limit of ['0', '501', '-1', 'ten', '2.5']) {
        const r = await get(`/v1/profiles/user_id:${user}/events?limit=${limit}`);
        expect(r.statusCode, limit).toBe(400);
        expect(r.json().code).toBe('CAIRN_ERR_VALIDATION');
      }
    });
  });

  describe('consent API', () => {
    it('POST records an entry (201) and the current state is derived from the ledger', async () => {
      const user = uid('consent');
      ok(await track('/v1/identify', { userId: user }));
      const ref = `user_id:${user}`;

      const a = await postConsent(ref, { purpose: 'marketing', channel: 'email', status: 'granted', source: 'preference-center', wording_version: 'v3', occurred_at: '2026-11-01T10:00:00Z' });
      expect(a.statusCode).toBe(201);
      expect(a.json()).toMatchObject({ success: true, duplicate: false, current: [{ purpose: 'marketing', channel: 'email', status: 'granted', source: 'preference-center', wordingVersion: 'v3' }] });

      // Withdrawn later in real time wins over the earlier grant.
      const b = await postConsent(ref, { purpose: 'marketing', channel: 'email', status: 'withdrawn', occurred_at: '2026-11-10T10:00:00Z' });
      expect(b.statusCode).toBe(201);
      // A grant that arrives last but happened first does not override the withdrawal.
      const c = await postConsent(ref, { purpose: 'marketing', channel: 'email', status: 'granted', occurred_at: '2026-11-05T10:00:00Z' });
      expect(c.statusCode).toBe(201);

      const state = ok(await get(`/v1/profiles/${ref}/consent`)) as unknown as ConsentReply;
      expect(state.current).toEqual([{ purpose: 'marketing', channel: 'email', status: 'withdrawn', source: 'api', occurredAt: '2026-11-10T10:00:00.000Z', wordingVersion: null }]);
      // Append-only: every decision is kept, ordered by when it happened.
      expect(state.ledger.map((e) => [e.status, e.occurredAt])).toEqual([
        ['granted', '2026-11-01T10:00:00.000Z'],
        ['granted', '2026-11-05T10:00:00.000Z'],
        ['withdrawn', '2026-11-10T10:00:00.000Z'],
      ]);
      const profile = ok(await get(`/v1/profiles/${ref}`));
      expect(profile.consent).toEqual(state.current);
    });

    it('without occurred_at the server clock is used; channel defaults to every channel', async () => {
      const user = uid('consent-now');
      ok(await track('/v1/identify', { userId: user }));
      const r = await postConsent(`user_id:${user}`, { purpose: 'service', status: 'denied' });
      expect(r.statusCode).toBe(201);
      expect(r.json().current).toEqual([{ purpose: 'service', channel: '*', status: 'denied', source: 'api', occurredAt: new Date(clock.now()).toISOString(), wordingVersion: null }]);
    });

    it('the same messageId twice is recorded once', async () => {
      const user = uid('consent-dup');
      ok(await track('/v1/identify', { userId: user }));
      const body = { purpose: 'marketing', status: 'granted', messageId: `${user}-c1` };
      expect((await postConsent(`user_id:${user}`, body)).statusCode).toBe(201);
      const again = await postConsent(`user_id:${user}`, { ...body, status: 'denied' });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ duplicate: true, current: [{ status: 'granted' }] });
      const state = ok(await get(`/v1/profiles/user_id:${user}/consent`)) as unknown as ConsentReply;
      expect(state.ledger).toHaveLength(1);
    });

    it('the consent decision shows on the timeline', async () => {
      const user = uid('consent-tl');
      ok(await track('/v1/identify', { userId: user }));
      expect((await postConsent(`user_id:${user}`, { purpose: 'marketing', status: 'granted' })).statusCode).toBe(201);
      const page = ok(await get(`/v1/profiles/user_id:${user}/events`)) as unknown as { items: { name: string | null }[] };
      expect(page.items.map((i) => i.name)).toContain('Consent Updated');
    });

    it('rejects an unknown purpose, a bad status and a bad date with codes', async () => {
      const user = uid('consent-bad');
      ok(await track('/v1/identify', { userId: user }));
      const ref = `user_id:${user}`;
      const cases: [unknown, number, string][] = [
        [{ purpose: 'newsletter', status: 'granted' }, 400, 'CAIRN_ERR_UNKNOWN_PURPOSE'],
        [{ purpose: 'marketing', status: 'maybe' }, 400, 'CAIRN_ERR_VALIDATION'],
        [{ purpose: 'marketing' }, 400, 'CAIRN_ERR_VALIDATION'],
        [{ status: 'granted' }, 400, 'CAIRN_ERR_VALIDATION'],
        [{ purpose: 'marketing', status: 'granted', occurred_at: 'last week' }, 400, 'CAIRN_ERR_VALIDATION'],
        [{ purpose: 'marketing', status: 'granted', occurred_at: '2026-02-30T10:00:00Z' }, 400, 'CAIRN_ERR_VALIDATION'],
        [{ purpose: 'marketing', channel: '', status: 'granted' }, 400, 'CAIRN_ERR_VALIDATION'],
        [['marketing'], 400, 'CAIRN_ERR_VALIDATION'],
      ];
      for (const [body, status, code] of cases) {
        const r = await postConsent(ref, body);
        expect(r.statusCode, JSON.stringify(body)).toBe(status);
        expect(r.json().code, JSON.stringify(body)).toBe(code);
      }
      const state = ok(await get(`/v1/profiles/${ref}/consent`)) as unknown as ConsentReply;
      expect(state.ledger).toEqual([]);
    });
  });

  describe('identity log', () => {
    it('after a merge shows "merged" and the old id resolves to the survivor', async () => {
      const anon = uid('anon');
      const user = uid('user');
      ok(await track('/v1/track', { anonymousId: anon, event: 'Product Viewed', messageId: `${anon}-1` }));
      ok(await track('/v1/identify', { anonymousId: anon, traits: { favourite_colour: 'teal' }, messageId: `${anon}-2` }));
      ok(await track('/v1/identify', { userId: user, traits: { plan: 'pro' }, messageId: `${user}-1` }));
      const anonId = ok(await get(`/v1/profiles/anonymous_id:${anon}`)).id as string;
      const userId = ok(await get(`/v1/profiles/user_id:${user}`)).id as string;
      expect(anonId).not.toBe(userId);

      ok(await track('/v1/identify', { userId: user, anonymousId: anon, messageId: `${user}-2` }));

      const survivor = ok(await get(`/v1/profiles/user_id:${user}`));
      expect(survivor.id).toBe(userId);
      expect(survivor.mergedFrom).toEqual([anonId]);
      expect(survivor.traits).toMatchObject({ plan: 'pro', favourite_colour: 'teal' });
      // The old id and the anonymous id both resolve to the survivor.
      expect(ok(await get(`/v1/profiles/${anonId}`)).id).toBe(userId);
      expect(ok(await get(`/v1/profiles/anonymous_id:${anon}`)).id).toBe(userId);

      const log = ok(await get(`/v1/profiles/user_id:${user}/identity-log`)) as unknown as { items: { outcome: string; customerId: string; otherId: string | null; messageId: string | null }[] };
      expect(log.items.filter((i) => i.outcome === 'merged')).toEqual([expect.objectContaining({ outcome: 'merged', customerId: userId, otherId: anonId, messageId: `${user}-2` })]);
      // The old id's log is the survivor's.
      expect((ok(await get(`/v1/profiles/${anonId}/identity-log`)) as unknown as { items: unknown[] }).items).toEqual(log.items);

      // No history lost: every event of both profiles is on the survivor's timeline.
      const page = ok(await get(`/v1/profiles/${userId}/events`)) as unknown as TimelinePage;
      expect(page.items.map((i) => i.messageId).sort()).toEqual([`${anon}-1`, `${anon}-2`, `${user}-1`, `${user}-2`].sort());
    });

    it('an unauthenticated signal does not merge and the refusal is logged', async () => {
      const email = `${uid('shared')}@example.com`;
      const a1 = uid('a');
      const a2 = uid('b');
      ok(await track('/v1/identify', { anonymousId: a1 }));
      ok(await track('/v1/identify', { anonymousId: a2, traits: { email } }));
      ok(await track('/v1/identify', { anonymousId: a1, traits: { email } }));
      const p1 = ok(await get(`/v1/profiles/anonymous_id:${a1}`)).id;
      const p2 = ok(await get(`/v1/profiles/anonymous_id:${a2}`)).id;
      expect(p1).not.toBe(p2);
      const log = ok(await get(`/v1/profiles/anonymous_id:${a1}/identity-log`)) as unknown as { items: { outcome: string }[] };
      expect(log.items.map((i) => i.outcome)).toContain('refused_unauthenticated');
    });
  });

  describe('OpenAPI', () => {
    it('GET /openapi.json is an OpenAPI 3.1 document listing every route', async () => {
      const r = await t.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(r.statusCode).toBe(200);
      expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
      const doc = JSON.parse(r.body) as {
        openapi: string;
        info: { title: string; version: string };
        paths: Record<string, Record<string, { responses?: Record<string, unknown>; parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: unknown }>>;
        components?: Record<string, Record<string, unknown>>;
      };
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
      expect(typeof doc.info.title).toBe('string');
      expect(typeof doc.info.version).toBe('string');

      const expected: [string, string][] = [
        ...['identify', 'track', 'page', 'screen', 'group', 'alias', 'batch', 'import'].map((x) => [`/v1/${x}`, 'post'] as [string, string]),
        ['/v1/profiles/{ref}', 'get'],
        ['/v1/profiles/{ref}/events', 'get'],
        ['/v1/profiles/{ref}/consent', 'get'],
        ['/v1/profiles/{ref}/consent', 'post'],
        ['/v1/profiles/{ref}/identity-log', 'get'],
        ['/v1/webhooks/{source}', 'post'],
      ];
      for (const [path, method] of expected) expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();

      // Structural validity: every operation has responses; every templated segment is a declared path parameter;
      // every POST documents a request body; every $ref points into the document.
      const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
      for (const [path, item] of Object.entries(doc.paths)) {
        expect(path.startsWith('/')).toBe(true);
        for (const [method, op] of Object.entries(item)) {
          if (!methods.has(method)) continue;
          expect(op.responses && Object.keys(op.responses).length, `${method} ${path} responses`).toBeGreaterThan(0);
          for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
            expect(op.parameters?.find((p) => p.in === 'path' && p.name === name)?.required, `${method} ${path} {${name}}`).toBe(true);
          }
          if (method === 'post') expect(op.requestBody, `${method} ${path} body`).toBeDefined();
        }
      }
      const refs = [...r.body.matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] as string);
      for (const ref of refs) {
        expect(ref.startsWith('#/'), ref).toBe(true);
        let cur: unknown = doc;
        for (const part of ref.slice(2).split('/')) cur = (cur as Record<string, unknown> | undefined)?.[decodeURIComponent(part.replace(/~1/g, '/').replace(/~0/g, '~'))];
        expect(cur, ref).toBeDefined();
      }
      // Internal probes stay out of the public document.
      expect(doc.paths['/healthz']).toBeUndefined();
      expect(doc.paths['/openapi.json']).toBeUndefined();
    });
  });
});
