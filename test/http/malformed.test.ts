import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, createBrotliCompress, createDeflate, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, VirtualClock } from '../../src/core/index.js';
import { ENGINES } from '../helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Malformed input against every JSON endpoint, on both engines. The corpus is Nicolas Seriot's
 * JSONTestSuite (../shared/corpora/jsontestsuite, see its README): every file, plain and gzipped,
 * to every endpoint → a 4xx with a CAIRN_ERR_ code (a 2xx only where the body is a valid
 * request), never a 5xx, never a hang. Then targeted cases (wrong types, size, depth, prototype
 * keys, UTF-8, compression, media types, NUL characters) and a liveness check on a listening
 * server: valid traffic keeps being stored while the bad corpus is fired at it.
 *
 * The whole corpus runs on both engines: the bodies are refused before storage, so PostgreSQL
 * adds little time, and running it there proves that nothing reaches the database as a 5xx.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CORPUS = resolve(repoRoot, '..', 'shared', 'corpora', 'jsontestsuite', 'test_parsing');
const CORPUS_FILES: { name: string; body: Buffer; gz: Buffer }[] = existsSync(CORPUS)
  ? readdirSync(CORPUS)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((name) => {
        const body = readFileSync(join(CORPUS, name));
        return { name, body, gz: gzipSync(body) };
      })
  : [];

/** Codes that say "the body itself is not acceptable JSON", as opposed to "valid JSON, wrong request". */
const BODY_CODES = new Set(['CAIRN_ERR_INVALID_JSON', 'CAIRN_ERR_INVALID_UTF8', 'CAIRN_ERR_TOO_DEEP', 'CAIRN_ERR_FORBIDDEN_KEY']);

interface Reply {
  statusCode: number;
  body: string;
  headers: Record<string, string | string[] | number | undefined>;
  json: () => Record<string, unknown>;
}

/** Guards a request against hanging: fails with its label instead of blocking the suite. */
async function within<T>(p: Promise<T>, label: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${label}`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Streams `total` zero bytes through a compressor without holding them in memory. */
async function compressZeros(total: number, make: () => NodeJS.ReadWriteStream): Promise<Buffer> {
  const z = make();
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((res, rej) => {
    z.on('end', () => res());
    z.on('error', rej);
  });
  const chunk = Buffer.alloc(1024 * 1024);
  for (let written = 0; written < total; written += chunk.length) {
    if (!z.write(chunk)) await new Promise<void>((r) => z.once('drain', () => r()));
  }
  z.end();
  await done;
  return Buffer.concat(out);
}

/** Body limits per endpoint: 32 KB per event, 500 KB per batch or webhook, 64 KB for other JSON routes. */
const limitOf = (url: string): number => (/\/v1\/(batch|import|webhooks\/)/.test(url) ? 500 * 1024 : url.endsWith('/consent') ? 64 * 1024 : 32 * 1024);

/** Compression bombs, made once per file (streaming, so making them does not raise the peak memory). */
let bombCache: Promise<{ bomb: Buffer; big: Buffer; deflated: Buffer; br: Buffer }> | undefined;
const bombs = (): Promise<{ bomb: Buffer; big: Buffer; deflated: Buffer; br: Buffer }> =>
  (bombCache ??= (async () => ({
    bomb: await compressZeros(50 * 1024 * 1024, () => createGzip({ level: 9 })),
    big: await compressZeros(200 * 1024 * 1024, () => createGzip({ level: 9 })),
    deflated: await compressZeros(200 * 1024 * 1024, () => createDeflate({ level: 9 })),
    br: await compressZeros(200 * 1024 * 1024, () => createBrotliCompress({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } })),
  }))());

const isCode = (code: unknown): boolean => typeof code === 'string' && code.startsWith('CAIRN_ERR_') && code in ERRORS;
const codeOf = (r: { body: string }): string => {
  try {
    return String((JSON.parse(r.body) as { code?: unknown }).code);
  } catch {
    return 'not JSON';
  }
};

describe('the JSONTestSuite corpus', () => {
  it(`is present at ${CORPUS}`, () => {
    expect(existsSync(CORPUS), `JSONTestSuite corpus missing at ${CORPUS}; see ../shared/corpora/README.md`).toBe(true);
    expect(CORPUS_FILES.length).toBeGreaterThan(300);
    expect(CORPUS_FILES.some((f) => f.name.startsWith('n_'))).toBe(true);
    expect(CORPUS_FILES.some((f) => f.name.startsWith('y_'))).toBe(true);
  });
});

describe.each(ENGINES)('malformed input on $name', (engine) => {
  let t: TestApp;
  const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
  const corpusUser = `corpus-${engine.name}`;
  let seq = 0;
  const uid = (p: string): string => `${p}-${engine.name}-${++seq}`;

  const ENDPOINTS: { url: string; key: 'write' | 'secret' }[] = [
    ...['identify', 'track', 'page', 'screen', 'group', 'alias', 'batch', 'import'].map((x) => ({ url: `/v1/${x}`, key: 'write' as const })),
    { url: `/v1/profiles/user_id:${corpusUser}/consent`, key: 'secret' },
    { url: '/v1/webhooks/helpdesk', key: 'write' },
  ];

  beforeAll(async () => {
    t = await startTestApp(engine, { clock });
    const r = await t.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ userId: corpusUser }) });
    expect(r.statusCode).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  const authFor = (key: 'write' | 'secret'): string => (key === 'write' ? basic(t.writeKey) : `Bearer ${t.secretKey}`);

  async function send(url: string, payload: Buffer | string, headers: Record<string, string> = {}, key: 'write' | 'secret' | null = 'write'): Promise<Reply> {
    const h: Record<string, string> = { 'content-type': 'application/json', ...headers };
    if (key) h.authorization = authFor(key);
    return (await within(t.app.inject({ method: 'POST', url, headers: h, payload }), `POST ${url}`)) as unknown as Reply;
  }
  const json = (v: unknown): string => JSON.stringify(v);

  async function countEvents(): Promise<number> {
    const r = await t.rt.store.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', t.workspaceId).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async function expectStored(user: string, n: number): Promise<void> {
    const r = await t.app.inject({ method: 'GET', url: `/v1/profiles/user_id:${encodeURIComponent(user)}/events?limit=500`, headers: { authorization: `Bearer ${t.secretKey}` } });
    if (n === 0 && r.statusCode === 404) return;
    expect(r.statusCode).toBe(200);
    expect((r.json() as { items: unknown[] }).items).toHaveLength(n);
  }

  describe('gzip bombs (first, while the peak memory of this process is still low)', () => {
    it('50 MB of zeros gzipped to ~50 KB → 413 on every 500 KB endpoint, memory does not jump', async () => {
      const { bomb, big, deflated, br } = await bombs();
      expect(bomb.length).toBeLessThan(100 * 1024);
      for (const b of [big, deflated, br]) expect(b.length).toBeLessThan(500 * 1024);

      const before = process.resourceUsage().maxRSS; // KiB, the peak so far
      const cases: [string, Buffer, string][] = [
        ['/v1/batch', bomb, 'gzip'],
        ['/v1/import', bomb, 'gzip'],
        ['/v1/webhooks/helpdesk', bomb, 'gzip'],
        ['/v1/batch', big, 'gzip'],
        ['/v1/batch', deflated, 'deflate'],
        ['/v1/batch', br, 'br'],
        [`/v1/profiles/user_id:${corpusUser}/consent`, bomb, 'gzip'],
      ];
      for (const [url, body, encoding] of cases) {
        const r = await send(url, body, { 'content-encoding': encoding }, url.includes('/profiles/') ? 'secret' : 'write');
        expect(r.statusCode, `${encoding} ${url}`).toBe(413);
        expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
      }
      // A 200 MB body inflated in memory would raise the peak by hundreds of MiB.
      const grownMiB = (process.resourceUsage().maxRSS - before) / 1024;
      expect(grownMiB).toBeLessThan(64);
    });

    it('a single-event endpoint refuses the bomb on the wire already (32 KB limit)', async () => {
      const { bomb } = await bombs();
      const r = await send('/v1/track', bomb, { 'content-encoding': 'gzip' });
      expect(r.statusCode).toBe(413);
      expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
    });
  });

  describe('every corpus file to every JSON endpoint, plain and gzipped', () => {
    for (const ep of ['/v1/identify', '/v1/track', '/v1/page', '/v1/screen', '/v1/group', '/v1/alias', '/v1/batch', '/v1/import', 'consent', '/v1/webhooks/helpdesk']) {
      it(`${ep}`, async () => {
        const endpoint = ENDPOINTS.find((e) => e.url === ep || (ep === 'consent' && e.url.endsWith('/consent')));
        expect(endpoint).toBeDefined();
        const { url, key } = endpoint as { url: string; key: 'write' | 'secret' };
        const eventsBefore = await countEvents();
        const problems: string[] = [];
        let successes = 0;
        for (const f of CORPUS_FILES) {
          const plain = await send(url, f.body, {}, key);
          const gz = await send(url, f.gz, { 'content-encoding': 'gzip' }, key);
          for (const [how, r] of [
            ['plain', plain],
            ['gzip', gz],
          ] as const) {
            const where = `${f.name} (${how})`;
            if (r.statusCode >= 500 || r.statusCode < 200 || (r.statusCode >= 300 && r.statusCode < 400)) {
              problems.push(`${where}: status ${r.statusCode} ${r.body.slice(0, 200)}`);
              continue;
            }
            let body: Record<string, unknown>;
            try {
              body = JSON.parse(r.body) as Record<string, unknown>;
            } catch {
              problems.push(`${where}: the answer is not JSON: ${r.body.slice(0, 100)}`);
              continue;
            }
            if (r.statusCode >= 400) {
              if (!isCode(body.code)) problems.push(`${where}: ${r.statusCode} without a catalogue code: ${r.body.slice(0, 200)}`);
              if (f.body.length > limitOf(url)) {
                if (body.code !== 'CAIRN_ERR_PAYLOAD_TOO_LARGE') problems.push(`${where}: ${f.body.length} bytes, over the limit, but ${String(body.code)}`);
              } else if (f.name.startsWith('n_') && f.body.length > 0 && !BODY_CODES.has(String(body.code))) problems.push(`${where}: rejected for the wrong reason, ${String(body.code)}`);
              else if (f.name.startsWith('y_') && BODY_CODES.has(String(body.code))) problems.push(`${where}: valid JSON refused as a malformed body, ${String(body.code)}`);
            } else {
              successes++;
              if (f.name.startsWith('n_')) problems.push(`${where}: an invalid JSON text was accepted (${r.statusCode})`);
              if (body.success !== true) problems.push(`${where}: a 2xx without success: true`);
            }
          }
          if (plain.statusCode !== gz.statusCode || codeOf(plain) !== codeOf(gz)) problems.push(`${f.name}: plain ${plain.statusCode} ${codeOf(plain)} but gzip ${gz.statusCode} ${codeOf(gz)}`);
        }
        expect(problems, problems.slice(0, 30).join('\n')).toEqual([]);
        // None of the corpus bodies is a valid request to these endpoints, so nothing may be stored.
        expect(successes).toBe(0);
        expect(await countEvents()).toBe(eventsBefore);
      });
    }

    it('the server still serves valid traffic afterwards', async () => {
      const user = uid('after');
      const r = await send('/v1/track', json({ userId: user, event: 'Still Alive' }));
      expect(r.statusCode).toBe(200);
      await expectStored(user, 1);
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    });
  });

  describe('wrong types', () => {
    const cases: [string, string, Record<string, unknown> | string, string][] = [
      ['userId as object', '/v1/track', { userId: { id: 1 }, event: 'X' }, 'userId'],
      ['userId as array', '/v1/identify', { userId: ['a'] }, 'userId'],
      ['userId as boolean', '/v1/identify', { userId: true }, 'userId'],
      ['userId too long', '/v1/identify', { userId: 'u'.repeat(257) }, 'userId'],
      ['userId overflowing to Infinity', '/v1/identify', '{"userId":1e999,"anonymousId":"a"}', 'userId'],
      ['anonymousId as object', '/v1/page', { anonymousId: { a: 1 } }, 'anonymousId'],
      ['messageId as object', '/v1/track', { userId: 'u', event: 'X', messageId: { id: 1 } }, 'messageId'],
      ['properties as array', '/v1/track', { userId: 'u', event: 'X', properties: [1, 2] }, 'properties'],
      ['properties as string', '/v1/page', { userId: 'u', properties: 'x' }, 'properties'],
      ['traits as array', '/v1/identify', { userId: 'u', traits: ['plan'] }, 'traits'],
      ['context as array', '/v1/track', { userId: 'u', event: 'X', context: [] }, 'context'],
      ['context as string', '/v1/track', { userId: 'u', event: 'X', context: 'web' }, 'context'],
      ['integrations as number', '/v1/track', { userId: 'u', event: 'X', integrations: 1 }, 'integrations'],
      ['event as number', '/v1/track', { userId: 'u', event: 42 }, 'event'],
      ['event as object', '/v1/track', { userId: 'u', event: { name: 'X' } }, 'event'],
      ['event as null', '/v1/track', { userId: 'u', event: null }, 'event'],
      ['event too long', '/v1/track', { userId: 'u', event: 'E'.repeat(201) }, 'event'],
      ['page name as number', '/v1/page', { userId: 'u', name: 7 }, 'name'],
      ['screen name as array', '/v1/screen', { userId: 'u', name: ['Home'] }, 'name'],
      ['groupId as object', '/v1/group', { userId: 'u', groupId: { id: 'acme' } }, 'groupId'],
      ['previousId as array', '/v1/alias', { userId: 'u', previousId: ['a'] }, 'previousId'],
    ];
    it.each(cases)('%s → 400 CAIRN_ERR_INVALID_EVENT naming the field', async (_label, url, body, field) => {
      const r = await send(url, typeof body === 'string' ? body : json(body));
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('CAIRN_ERR_INVALID_EVENT');
      expect(String(r.json().message).split(':')[0]).toBe(field);
    });

    it('a batch item of the wrong type is reported by index, the rest kept', async () => {
      const user = uid('types');
      const r = await send('/v1/batch', json({ batch: [{ type: 7, userId: user }, { type: 'track', userId: user, event: 'OK' }, null, [], { type: 'track', userId: user, event: 'X', properties: [] }] }));
      expect(r.statusCode).toBe(200);
      expect((r.json().errors as { index: number; code: string }[]).map((e) => [e.index, e.code])).toEqual([
        [0, 'CAIRN_ERR_INVALID_EVENT'],
        [2, 'CAIRN_ERR_INVALID_EVENT'],
        [3, 'CAIRN_ERR_INVALID_EVENT'],
        [4, 'CAIRN_ERR_INVALID_EVENT'],
      ]);
      await expectStored(user, 1);
    });

    it.each([['null'], ['1'], ['"text"'], ['true'], ['[]'], ['[{"type":"track","userId":"u","event":"A"}]']])('a top-level %s is refused by every endpoint with a code', async (text) => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, text, {}, ep.key);
        expect(r.statusCode, `${ep.url} ${text}`).toBeGreaterThanOrEqual(400);
        expect(r.statusCode, `${ep.url} ${text}`).toBeLessThan(500);
        expect(isCode(r.json().code), `${ep.url} ${text} ${r.body}`).toBe(true);
      }
    });

    it('an empty body is refused by every endpoint with a code', async () => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, '', {}, ep.key);
        expect(r.statusCode, ep.url).toBeGreaterThanOrEqual(400);
        expect(r.statusCode, ep.url).toBeLessThan(500);
        expect(isCode(r.json().code), `${ep.url} ${r.body}`).toBe(true);
      }
    });

    it('webhook payloads of the wrong shape name the missing field', async () => {
      const cases: [unknown, number, string][] = [
        [{ ticket: 'open' }, 422, 'CAIRN_ERR_NO_MAPPING_MATCH'],
        [{ ticket: { status: 'open' } }, 400, 'CAIRN_ERR_MAPPING'],
        [{ ticket: { status: 'open', id: 5, created_at: '2026-11-01T10:00:00Z', requester: { external_id: { nested: true } } } }, 400, 'CAIRN_ERR_INVALID_EVENT'],
        [{ ticket: { status: 'open', id: 6, created_at: 'soon', requester: { external_id: 'u' } } }, 400, 'CAIRN_ERR_INVALID_TIMESTAMP'],
        [[1, 'x', null], 400, 'CAIRN_ERR_MAPPING'],
      ];
      for (const [body, status, code] of cases) {
        const r = await send('/v1/webhooks/helpdesk', json(body));
        expect(r.statusCode, json(body)).toBe(status);
        expect(r.json().code, json(body)).toBe(code);
      }
      const r = await send('/v1/webhooks/helpdesk', json({ ticket: { status: 'open' } }));
      expect(String(r.json().message)).toContain('ticket.requester.external_id');
    });
  });

  describe('size', () => {
    it.each([
      ['/v1/track', 33 * 1024],
      ['/v1/identify', 1024 * 1024],
      ['/v1/batch', 501 * 1024],
      ['/v1/import', 2 * 1024 * 1024],
      ['/v1/webhooks/helpdesk', 600 * 1024],
      ['consent', 65 * 1024],
    ])('%s with a %i-byte body → 413 CAIRN_ERR_PAYLOAD_TOO_LARGE', async (ep, size) => {
      const endpoint = ENDPOINTS.find((e) => e.url === ep || (ep === 'consent' && e.url.endsWith('/consent'))) as { url: string; key: 'write' | 'secret' };
      const user = uid('size');
      const shell = json({ userId: user, event: 'Big', batch: [], properties: { blob: '' } });
      const body = json({ userId: user, event: 'Big', batch: [], properties: { blob: 'b'.repeat(size - shell.length + 1) } });
      expect(Buffer.byteLength(body)).toBeGreaterThan(size);
      const r = await send(endpoint.url, body, {}, endpoint.key);
      expect(r.statusCode).toBe(413);
      expect(r.json().code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
      await expectStored(user, 0);
    });

    it('a huge string value inside the limit is fine; a huge number of keys is fine', async () => {
      const user = uid('wide');
      const props = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]));
      const r = await send('/v1/track', json({ userId: user, event: 'Wide', properties: props }));
      expect(r.statusCode).toBe(200);
      await expectStored(user, 1);
    });
  });

  describe('depth', () => {
    it.each([
      ['10,000 nested arrays', '['.repeat(10_000) + ']'.repeat(10_000)],
      ['10,000 nested objects', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
      ['an unclosed 100,000-deep array', '['.repeat(100_000)],
      ['deep properties in a track call', `{"userId":"u","event":"E","properties":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`],
    ])('%s → 400 CAIRN_ERR_TOO_DEEP on every endpoint', async (_label, text) => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, text, {}, ep.key);
        if (Buffer.byteLength(text) > limitOf(ep.url)) {
          expect(r.statusCode, ep.url).toBe(413);
          continue;
        }
        expect(r.statusCode, ep.url).toBe(400);
        expect(r.json().code, ep.url).toBe('CAIRN_ERR_TOO_DEEP');
      }
    });

    it('32 levels are accepted, 33 are refused', async () => {
      const nest = (k: number): string => `${'{"a":'.repeat(k)}1${'}'.repeat(k)}`;
      const user = uid('depth');
      const ok = await send('/v1/track', `{"userId":"${user}","event":"Deep","properties":${nest(31)}}`);
      expect(ok.statusCode).toBe(200);
      const deep = await send('/v1/track', `{"userId":"${user}","event":"Deep","properties":${nest(32)}}`);
      expect(deep.statusCode).toBe(400);
      expect(deep.json().code).toBe('CAIRN_ERR_TOO_DEEP');
      await expectStored(user, 1);
    });

    it('brackets inside strings do not count as depth', async () => {
      const user = uid('brackets');
      const r = await send('/v1/track', json({ userId: user, event: 'Brackets', properties: { s: '['.repeat(5000), q: '"\\[{'.repeat(500) } }));
      expect(r.statusCode).toBe(200);
      await expectStored(user, 1);
    });
  });

  describe('prototype keys', () => {
    it.each([
      ['__proto__ at the top', '{"__proto__":{"isAdmin":true},"userId":"u","event":"E"}'],
      ['__proto__ in properties', '{"userId":"u","event":"E","properties":{"__proto__":{"isAdmin":true}}}'],
      ['__proto__ written with escapes', '{"userId":"u","event":"E","properties":{"\\u005f_proto__":{"isAdmin":true}}}'],
      ['constructor.prototype in traits', '{"userId":"u","traits":{"constructor":{"prototype":{"isAdmin":true}}}}'],
      ['constructor.prototype in a batch item', '{"batch":[{"type":"track","userId":"u","event":"E","properties":{"constructor":{"prototype":{"x":1}}}}]}'],
      ['__proto__ in a webhook', '{"ticket":{"__proto__":{"status":"open"}}}'],
    ])('%s → 400 CAIRN_ERR_FORBIDDEN_KEY', async (_label, text) => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, text, {}, ep.key);
        expect(r.statusCode, ep.url).toBe(400);
        expect(r.json().code, ep.url).toBe('CAIRN_ERR_FORBIDDEN_KEY');
      }
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });

    it('a plain "constructor" property is ordinary data', async () => {
      const user = uid('ctor');
      const r = await send('/v1/track', json({ userId: user, event: 'Car Viewed', properties: { constructor: 'Ford', prototype: 'T' } }));
      expect(r.statusCode).toBe(200);
      await expectStored(user, 1);
    });
  });

  describe('UTF-8', () => {
    const wrap = (bytes: number[]): Buffer => Buffer.concat([Buffer.from('{"userId":"u","event":"'), Buffer.from(bytes), Buffer.from('"}')]);
    it.each([
      ['a lone continuation byte', [0x80]],
      ['a truncated two-byte sequence', [0xc3, 0x28]],
      ['an overlong slash', [0xc0, 0xaf]],
      ['an encoded surrogate', [0xed, 0xa0, 0x80]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['0xFF', [0xff]],
      ['Latin-1 é', [0xe9]],
    ])('%s → 400 CAIRN_ERR_INVALID_UTF8 (plain and gzipped)', async (_label, bytes) => {
      for (const ep of ENDPOINTS) {
        const body = wrap(bytes);
        for (const [payload, headers] of [
          [body, {}],
          [gzipSync(body), { 'content-encoding': 'gzip' }],
        ] as const) {
          const r = await send(ep.url, payload, headers, ep.key);
          expect(r.statusCode, ep.url).toBe(400);
          expect(r.json().code, ep.url).toBe('CAIRN_ERR_INVALID_UTF8');
        }
      }
    });

    it('a UTF-16 body → 400 CAIRN_ERR_INVALID_UTF8', async () => {
      const r = await send('/v1/track', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"userId":"u","event":"E"}', 'utf16le')]));
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('CAIRN_ERR_INVALID_UTF8');
    });

    it('valid multi-byte text and a UTF-8 BOM are accepted', async () => {
      const user = uid('utf8');
      const r = await send('/v1/track', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json({ userId: user, event: 'Größe gewählt 🎉', properties: { city: 'Zürich', ja: '東京' } }))]));
      expect(r.statusCode).toBe(200);
      const tl = await t.app.inject({ method: 'GET', url: `/v1/profiles/user_id:${user}/events`, headers: { authorization: `Bearer ${t.secretKey}` } });
      expect((tl.json() as { items: { name: string }[] }).items[0]?.name).toBe('Größe gewählt 🎉');
    });
  });

  describe('NUL characters and lone surrogates (text PostgreSQL cannot store or would silently alter)', () => {
    const cases: [string, string, Record<string, unknown>, string, string][] = [
      ['userId with NUL', '/v1/track', { userId: 'a\u0000b', event: 'E' }, 'CAIRN_ERR_INVALID_EVENT', 'userId'],
      ['anonymousId with NUL', '/v1/track', { anonymousId: '\u0000', event: 'E' }, 'CAIRN_ERR_INVALID_EVENT', 'anonymousId'],
      ['event name with NUL', '/v1/track', { userId: 'u', event: 'Order\u0000Completed' }, 'CAIRN_ERR_INVALID_EVENT', 'event'],
      ['page name with NUL', '/v1/page', { userId: 'u', name: 'Home\u0000' }, 'CAIRN_ERR_INVALID_EVENT', 'name'],
      ['messageId with NUL', '/v1/track', { userId: 'u', event: 'E', messageId: 'm\u0000' }, 'CAIRN_ERR_INVALID_EVENT', 'messageId'],
      ['previousId with NUL', '/v1/alias', { userId: 'u', previousId: 'p\u0000' }, 'CAIRN_ERR_INVALID_EVENT', 'previousId'],
      ['email trait with NUL', '/v1/identify', { userId: 'u-nul-mail', traits: { email: 'a\u0000@example.com' } }, 'CAIRN_ERR_INVALID_EVENT', 'email'],
      ['userId with a lone high surrogate', '/v1/identify', { userId: 'x\ud800' }, 'CAIRN_ERR_INVALID_EVENT', 'userId'],
      ['messageId with a lone low surrogate', '/v1/track', { userId: 'u', event: 'E', messageId: '\udc00' }, 'CAIRN_ERR_INVALID_EVENT', 'messageId'],
      ['consent channel with NUL', '/v1/identify', { userId: 'u', traits: { $consent: { marketing: { 'e\u0000mail': 'granted' } } } }, 'CAIRN_ERR_INVALID_CONSENT', 'traits'],
      ['consent wording with NUL', '/v1/identify', { userId: 'u', traits: { $consent: [{ purpose: 'marketing', status: 'granted', wording_version: 'v\u0000' }] } }, 'CAIRN_ERR_INVALID_CONSENT', 'traits'],
    ];
    it.each(cases)('%s → 400 %s', async (_label, url, body, code, field) => {
      const r = await send(url, json(body));
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().code).toBe(code);
      expect(String(r.json().message).startsWith(field) || String(r.json().message).includes(field)).toBe(true);
    });

    it('a NUL in one batch item rejects that item only', async () => {
      const user = uid('nulbatch');
      const r = await send('/v1/batch', json({ batch: [{ type: 'track', userId: user, event: 'A' }, { type: 'track', userId: `${user}\u0000`, event: 'B' }, { type: 'track', userId: user, event: 'C\u0000' }] }));
      expect(r.statusCode).toBe(200);
      expect((r.json().errors as { index: number }[]).map((e) => e.index)).toEqual([1, 2]);
      await expectStored(user, 1);
    });

    it('two lone surrogates do not collapse into one identity', async () => {
      const a = await send('/v1/identify', json({ userId: 'dup\ud800' }));
      const b = await send('/v1/identify', json({ userId: 'dup\udc00' }));
      expect([a.statusCode, b.statusCode]).toEqual([400, 400]);
    });

    it('NUL and surrogate pairs elsewhere in properties are stored as data', async () => {
      const user = uid('nulprops');
      const r = await send('/v1/track', json({ userId: user, event: 'Data', properties: { raw: 'a\u0000b', emoji: '😀', lone: '\ud800' } }));
      expect(r.statusCode).toBe(200);
      await expectStored(user, 1);
    });

    it('consent API fields with NUL → 400, not a 5xx', async () => {
      const url = `/v1/profiles/user_id:${corpusUser}/consent`;
      for (const body of [
        { purpose: 'marketing', channel: 'e\u0000', status: 'granted' },
        { purpose: 'marketing', status: 'granted', source: 'x\u0000' },
        { purpose: 'marketing', status: 'granted', wording_version: '\u0000' },
        { purpose: 'marketing', status: 'granted', messageId: 'm\u0000' },
        { purpose: 'market\u0000ing', status: 'granted' },
      ]) {
        const r = await send(url, json(body), {}, 'secret');
        expect(r.statusCode, json(body)).toBe(400);
        expect(isCode(r.json().code)).toBe(true);
      }
    });

    it('NUL in a URL (profile ref, query, cursor) → 400, not a 5xx', async () => {
      const cursor = Buffer.from(JSON.stringify([1, 'a\u0000'])).toString('base64url');
      const urls = [
        '/v1/profiles/user_id:a%00b',
        '/v1/profiles/a%00b',
        '/v1/profiles/email:x%00@example.com/events',
        `/v1/profiles/user_id:${corpusUser}/events?source=%00`,
        `/v1/profiles/user_id:${corpusUser}/events?type=tr%00ack`,
        `/v1/profiles/user_id:${corpusUser}/events?cursor=${cursor}`,
        `/v1/profiles/user_id:${corpusUser}/events?cursor=${Buffer.from('[1e308,"x"]').toString('base64url')}`,
        `/v1/profiles/user_id:${corpusUser}/events?cursor=${Buffer.from('[1.5,"x"]').toString('base64url')}`,
        `/v1/profiles/user_id:${corpusUser}/identity-log`.replace(corpusUser, `${corpusUser}%00`),
      ];
      for (const url of urls) {
        const r = await within(t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.secretKey}` } }), url);
        expect(r.statusCode, `${url} ${r.body}`).toBeGreaterThanOrEqual(400);
        expect(r.statusCode, `${url} ${r.body}`).toBeLessThan(500);
        expect(isCode(r.json().code), url).toBe(true);
      }
      const w = await send('/v1/webhooks/help%00desk', json({ ticket: {} }));
      expect(w.statusCode).toBeLessThan(500);
      expect(isCode(w.json().code)).toBe(true);
    });
  });

  describe('URLs', () => {
    it('URLs that do not decode, over-long segments and unknown routes answer with a catalogue code', async () => {
      const cases: [string, string, number][] = [
        ['GET', '/v1/profiles/%FF', 400],
        ['GET', '/v1/profiles/user_id:%ED%A0%80', 400],
        ['GET', '/v1/profiles/email:%C0%AF/events', 400],
        ['POST', '/v1/webhooks/%E0%80', 400],
        ['GET', `/v1/profiles/${'x'.repeat(9000)}`, 414],
        ['POST', `/v1/webhooks/${'h'.repeat(9000)}`, 414],
        ['PUT', '/v1/track', 404],
        ['GET', '/v1/track', 404],
        ['POST', '/v1/nothing-here', 404],
      ];
      for (const [method, url, status] of cases) {
        const r = await within(t.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { payload: '{}' }) }), url);
        expect(r.statusCode, `${method} ${url.slice(0, 60)}`).toBe(status);
        expect(isCode(r.json().code), `${method} ${url.slice(0, 60)} ${r.body.slice(0, 120)}`).toBe(true);
      }
    });

    it('malformed Authorization headers → 401 with a code', async () => {
      for (const auth of ['Basic', 'Basic %%%', `Basic ${'A'.repeat(10_000)}`, 'Bearer', 'Digest abc', `Basic ${Buffer.from('\u0000:').toString('base64')}`, `Basic ${Buffer.from([0xff, 0xfe, 0x3a]).toString('base64')}`]) {
        const r = await send('/v1/track', json({ userId: 'u', event: 'E' }), { authorization: auth }, null);
        expect(r.statusCode, auth.slice(0, 20)).toBe(401);
        expect(['CAIRN_ERR_AUTH_MISSING', 'CAIRN_ERR_AUTH_INVALID']).toContain(r.json().code);
      }
    });
  });

  describe('encodings and media types', () => {
    it.each(['compress', 'zstd', 'gzip, br', 'base64', 'utf-8'])('Content-Encoding %s → 415 CAIRN_ERR_BAD_ENCODING', async (encoding) => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, json({ userId: 'u', event: 'E' }), { 'content-encoding': encoding }, ep.key);
        expect(r.statusCode, ep.url).toBe(415);
        expect(r.json().code).toBe('CAIRN_ERR_BAD_ENCODING');
      }
    });

    it('identity and upper-case GZIP are understood', async () => {
      const user = uid('enc');
      expect((await send('/v1/track', json({ userId: user, event: 'A' }), { 'content-encoding': 'identity' })).statusCode).toBe(200);
      expect((await send('/v1/track', gzipSync(json({ userId: user, event: 'B' })), { 'content-encoding': 'GZIP' })).statusCode).toBe(200);
      await expectStored(user, 2);
    });

    it.each(['application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'image/png', 'application/octet-stream'])('Content-Type %s → 415 CAIRN_ERR_MEDIA_TYPE', async (type) => {
      for (const ep of ENDPOINTS) {
        const r = await send(ep.url, json({ userId: 'u', event: 'E' }), { 'content-type': type }, ep.key);
        expect(r.statusCode, ep.url).toBe(415);
        expect(r.json().code).toBe('CAIRN_ERR_MEDIA_TYPE');
      }
    });

    it('a body without Content-Type → 415 CAIRN_ERR_MEDIA_TYPE', async () => {
      const r = (await t.app.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basic(t.writeKey) }, payload: Buffer.from(json({ userId: 'u', event: 'E' })) })) as unknown as Reply;
      expect(r.statusCode).toBe(415);
      expect(r.json().code).toBe('CAIRN_ERR_MEDIA_TYPE');
    });

    it('truncated or corrupt compressed bodies → 400 CAIRN_ERR_BAD_COMPRESSION', async () => {
      const full = gzipSync(json({ batch: Array.from({ length: 20 }, (_, i) => ({ type: 'track', userId: 'u', event: `E${i}` })) }));
      const deflated = deflateSync(json({ userId: 'u', event: 'E' }));
      const cases: [Buffer, string][] = [
        [full.subarray(0, full.length - 12), 'gzip'],
        [full.subarray(0, 15), 'gzip'],
        [Buffer.from(json({ userId: 'u', event: 'E' })), 'gzip'],
        [Buffer.concat([full.subarray(0, 40), Buffer.alloc(30, 0x55), full.subarray(70)]), 'gzip'],
        [deflated.subarray(0, deflated.length - 5), 'deflate'],
        [Buffer.from('not brotli at all, really not'), 'br'],
      ];
      for (const ep of ENDPOINTS) {
        for (const [payload, encoding] of cases) {
          const r = await send(ep.url, payload, { 'content-encoding': encoding }, ep.key);
          expect(r.statusCode, `${ep.url} ${encoding} ${payload.length}`).toBe(400);
          expect(r.json().code, `${ep.url} ${encoding}`).toBe('CAIRN_ERR_BAD_COMPRESSION');
        }
      }
    });
  });

  describe('liveness on a listening server', () => {
    let base: string;
    beforeAll(async () => {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    });

    it('valid track calls are all stored while the bad corpus is fired concurrently', async () => {
      const user = uid('live');
      const bad = CORPUS_FILES.filter((f) => !f.name.startsWith('y_'));
      const badResults: { label: string; status: number; code: unknown }[] = [];
      const goodResults: { i: number; status: number; body: string }[] = [];
      const extraBad: { url: string; body: Buffer; headers: Record<string, string> }[] = [
        { url: '/v1/batch', body: (await bombs()).bomb, headers: { 'content-encoding': 'gzip' } },
        { url: '/v1/track', body: Buffer.from('['.repeat(20_000)), headers: {} },
        { url: '/v1/track', body: Buffer.from('{"__proto__":{"x":1}}'), headers: {} },
        { url: '/v1/batch', body: Buffer.from(json({ batch: [] })), headers: {} },
        { url: '/v1/track', body: Buffer.from([0x7b, 0xff, 0x7d]), headers: {} },
      ];
      const jobs: { label: string; url: string; body: Buffer; headers: Record<string, string> }[] = [];
      for (const f of bad) {
        for (const [i, ep] of ENDPOINTS.entries()) {
          if ((f.name.length + i) % 5 !== 0) continue; // a fifth of the pairs, spread over every endpoint
          jobs.push({ label: `${f.name} → ${ep.url}`, url: ep.url, body: f.body, headers: { authorization: authFor(ep.key) } });
          jobs.push({ label: `${f.name} (gzip) → ${ep.url}`, url: ep.url, body: f.gz, headers: { authorization: authFor(ep.key), 'content-encoding': 'gzip' } });
        }
      }
      for (const x of extraBad) jobs.push({ label: `extra → ${x.url}`, url: x.url, body: x.body, headers: { authorization: basic(t.writeKey), ...x.headers } });

      const fire = async (url: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; text: string }> => {
        const res = await within(fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }), `POST ${url}`, 30_000);
        return { status: res.status, text: await res.text() };
      };

      let next = 0;
      const badWorker = async (): Promise<void> => {
        while (next < jobs.length) {
          const job = jobs[next++] as (typeof jobs)[number];
          const r = await fire(job.url, job.body, job.headers);
          let code: unknown;
          try {
            code = (JSON.parse(r.text) as { code?: unknown }).code;
          } catch {
            code = `not JSON: ${r.text.slice(0, 80)}`;
          }
          badResults.push({ label: job.label, status: r.status, code });
        }
      };
      const GOOD = 120;
      const goodWorker = async (start: number): Promise<void> => {
        for (let i = start; i < GOOD; i += 3) {
          const r = await fire('/v1/track', json({ userId: user, event: 'Live', messageId: `${user}-${i}`, properties: { i } }), { authorization: basic(t.writeKey) });
          goodResults.push({ i, status: r.status, body: r.text });
        }
      };
      await Promise.all([...Array.from({ length: 8 }, () => badWorker()), goodWorker(0), goodWorker(1), goodWorker(2)]);

      expect(badResults).toHaveLength(jobs.length);
      const wrong = badResults.filter((r) => r.status < 400 || r.status >= 500 || !isCode(r.code));
      expect(wrong, wrong.slice(0, 10).map((w) => `${w.label}: ${w.status} ${String(w.code)}`).join('\n')).toEqual([]);
      expect(goodResults).toHaveLength(GOOD);
      expect(goodResults.filter((g) => g.status !== 200 || g.body !== '{"success":true}')).toEqual([]);

      const tl = await fetch(`${base}/v1/profiles/user_id:${user}/events?limit=500`, { headers: { authorization: `Bearer ${t.secretKey}` } });
      const items = ((await tl.json()) as { items: { messageId: string }[] }).items;
      expect(items.map((x) => x.messageId).sort()).toEqual(Array.from({ length: GOOD }, (_, i) => `${user}-${i}`).sort());
    });

    it('a chunked body without Content-Length is cut off at the limit with 413', async () => {
      const { port } = t.app.server.address() as AddressInfo;
      const res = await within(
        new Promise<{ status: number; body: string }>((resolvePromise, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/track', headers: { 'content-type': 'application/json', authorization: basic(t.writeKey), 'transfer-encoding': 'chunked' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.write('{"userId":"u","event":"E","properties":{"blob":"');
          const chunk = 'c'.repeat(64 * 1024);
          let sent = 0;
          const pump = (): void => {
            while (sent < 2 * 1024 * 1024) {
              sent += chunk.length;
              if (!req.write(chunk)) return void req.once('drain', pump);
            }
            req.end('"}}');
          };
          pump();
        }),
        'chunked upload',
        30_000,
      );
      expect(res.status).toBe(413);
      expect((JSON.parse(res.body) as { code: string }).code).toBe('CAIRN_ERR_PAYLOAD_TOO_LARGE');
    });

    it('a client that aborts mid-body does not disturb the server', async () => {
      const { port } = t.app.server.address() as AddressInfo;
      await new Promise<void>((done) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/batch', headers: { 'content-type': 'application/json', authorization: basic(t.writeKey), 'content-length': '100000' } });
        req.on('error', () => done());
        req.write('{"batch":[{"type":"track",', () => {
          req.destroy();
          done();
        });
      });
      const user = uid('abort');
      const r = await fetch(`${base}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: basic(t.writeKey) }, body: json({ userId: user, event: 'After Abort' }) });
      expect(r.status).toBe(200);
      await expectStored(user, 1);
    });
  });
});
