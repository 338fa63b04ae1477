import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VirtualClock, isCairnError } from '../core/index.js';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { LinkSigner, encodeToken, hmacSign, peekToken, trackedUrl, unsubscribeUrl, verifyToken, type LinkPayload } from './links.js';

/**
 * Signed links: tokens verify only with the key that signed them, any change to a token is
 * refused with CAIRN_ERR_LINK_INVALID, and the per-workspace keys are shared by every process on
 * the same database (or derived from CAIRN_LINK_SECRET) — on both engines.
 */

const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
const code = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return isCairnError(e) ? e.code : String(e);
  }
};

describe('link tokens', () => {
  const sign = (p: string): string => hmacSign(Buffer.alloc(32, 9), p);
  const ctx = { publicUrl: 'https://cx.example.com', sign };
  const msg = { id: 'm1', workspaceId: 'ws1', customerId: 'c1', channel: 'email', messageClass: 'marketing' as const };

  it('round-trips unsubscribe and redirect payloads', () => {
    const u = unsubscribeUrl(ctx, msg);
    expect(verifyToken(u.slice('https://cx.example.com/v1/unsubscribe/'.length), sign)).toEqual({ k: 'u', w: 'ws1', c: 'c1', ch: 'email', cls: 'marketing', m: 'm1' });
    const r = trackedUrl(ctx, msg, 'https://shop.example/a?b=1#c');
    expect(verifyToken(r.slice('https://cx.example.com/v1/r/'.length), sign)).toEqual({ k: 'r', w: 'ws1', m: 'm1', u: 'https://shop.example/a?b=1#c', c: 'c1', ch: 'email' });
    expect(trackedUrl(ctx, msg, 'mailto:help@shop.example')).toBe('mailto:help@shop.example');
  });

  it('refuses every single-character change to a token (property)', () => {
    const token = encodeToken({ k: 'r', w: 'ws1', m: 'm1', u: 'https://shop.example/' }, sign);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    fc.assert(
      fc.property(fc.integer({ min: 0, max: token.length - 1 }), fc.integer({ min: 0, max: alphabet.length - 1 }), (at, c) => {
        const ch = alphabet[c] as string;
        fc.pre(ch !== token[at]);
        const changed = token.slice(0, at) + ch + token.slice(at + 1);
        return code(() => verifyToken(changed, sign)) === 'CAIRN_ERR_LINK_INVALID';
      }),
    );
  });

  it('refuses malformed tokens and payloads without their fields', () => {
    for (const bad of ['', 'abc', 'a.b.c', '.sig', 'body.', 'b@d.sig', `${Buffer.from('{"k":"r","w":"x"}').toString('base64url')}.sig`, `${Buffer.from('not json').toString('base64url')}.sig`]) {
      expect(code(() => peekToken(bad)), bad).toBe('CAIRN_ERR_LINK_INVALID');
    }
    expect(code(() => peekToken('x'.repeat(9000)))).toBe('CAIRN_ERR_LINK_INVALID');
  });

  it('refuses a signed redirect to a non-http(s) target', () => {
    const token = encodeToken({ k: 'r', w: 'ws1', m: 'm1', u: 'javascript:alert(1)' } as LinkPayload, sign);
    expect(code(() => verifyToken(token, sign))).toBe('CAIRN_ERR_LINK_INVALID');
    // A line break or space in the target could not be a Location header: refused, never a 500.
    const crlf = encodeToken({ k: 'r', w: 'ws1', m: 'm1', u: 'https://shop.example/a\r\nSet-Cookie: x=1' } as LinkPayload, sign);
    expect(code(() => verifyToken(crlf, sign))).toBe('CAIRN_ERR_LINK_INVALID');
    // …and such a target is left as it is rather than wrapped in a tracked link.
    expect(trackedUrl(ctx, msg, 'https://shop.example/a b')).toBe('https://shop.example/a b');
    expect(trackedUrl(ctx, msg, 'https://shop.example/a?b=1')).toMatch(/^https:\/\/cx\.example\.com\/v1\/r\//);
  });
});

describe.each(ENGINES)('link signing keys on $name', (engine) => {
  let s: TestStore;
  beforeAll(async () => {
    s = await engine.open();
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  it('two processes on one database sign alike; workspaces get different keys', async () => {
    const a = new LinkSigner(s.store.db, clock, undefined);
    const b = new LinkSigner(s.store.db, clock, undefined);
    const [ka, kb] = await Promise.all([a.keyFor('ws1'), b.keyFor('ws1')]);
    expect(ka.equals(kb)).toBe(true);
    expect(ka.length).toBe(32);
    expect((await a.keyFor('ws2')).equals(ka)).toBe(false);
    const token = encodeToken({ k: 'u', w: 'ws1', c: 'c1', ch: 'email', cls: 'marketing' }, await a.signerFor('ws1'));
    await expect(b.verify(token)).resolves.toMatchObject({ c: 'c1' });
    // A token signed for ws1 but claiming ws2 does not verify.
    const claimed = encodeToken({ k: 'u', w: 'ws2', c: 'c1', ch: 'email', cls: 'marketing' }, await a.signerFor('ws1'));
    await expect(b.verify(claimed)).rejects.toMatchObject({ code: 'CAIRN_ERR_LINK_INVALID' });
  });

  it('derives keys from CAIRN_LINK_SECRET without touching the table, and they differ from database keys', async () => {
    const configured = new LinkSigner(s.store.db, clock, 's'.repeat(40));
    const other = new LinkSigner(s.store.db, clock, 't'.repeat(40));
    const k = await configured.keyFor('ws_cfg');
    expect((await other.keyFor('ws_cfg')).equals(k)).toBe(false);
    expect((await new LinkSigner(s.store.db, clock, 's'.repeat(40)).keyFor('ws_cfg')).equals(k)).toBe(true);
    const rows = await s.store.db.selectFrom('link_secrets').select('workspace_id').where('workspace_id', '=', 'ws_cfg').execute();
    expect(rows).toEqual([]);
  });
});
