import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECOND } from '../core/index.js';
import { ENGINES } from '../../test/helpers/stores.js';
import { startPolicyApp, type PolicyApp } from '../../test/scenarios/policy-harness.js';
import { Dispatcher, getMessageByKey, recordChannelEvents, recordDeliveryEvents } from './index.js';

/**
 * The ledger, the outbox and the dispatcher on both engines: idempotent enqueue, rendering and
 * addresses, retries with backoff (retryAfterMs honoured), giving up, failed sends not counting
 * towards caps, arbitration across calls within the window, and the message log route.
 */
describe.each(ENGINES)('delivery on $name', (engine) => {
  let p: PolicyApp;
  beforeAll(async () => {
    p = await startPolicyApp(engine, { env: { CAIRN_DELIVERY_MAX_ATTEMPTS: '3' } });
  });
  afterAll(async () => {
    await p?.close();
  });

  const ledger = async (key: string) => {
    const m = await getMessageByKey(p.t.rt.store.db, p.t.workspaceId, key);
    if (!m) throw new Error(`no ledger row for ${key}`);
    return m;
  };

  it('queues a send with rendered content and the address, then the dispatcher delivers it once', async () => {
    await p.identify('ana', { email: 'ana@example.com', first_name: 'Ana' });
    const [o] = await p.enqueue('ana', [{ key: 'j:1:promo', offer: 'shoe_promo', category: 'promotions', priority: 10 }]);
    expect(o).toMatchObject({ outcome: 'send', channel: 'email', channelType: 'email' });
    expect((await ledger('j:1:promo')).status).toBe('queued');
    expect(await p.t.rt.delivery.dispatcher.runOnce()).toBe(1);
    const sent = p.adapter.sent.filter((m) => m.key === 'j:1:promo');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ channel: 'email', to: { email: 'ana@example.com' }, content: { subject: 'Shoes for Ana', body: 'Our shoes.' }, attempt: 1, messageClass: 'marketing', category: 'promotions' });
    expect(sent[0]?.id).toBe(o?.messageId);
    const row = await ledger('j:1:promo');
    expect(row).toMatchObject({ status: 'sent', attempts: 1, sentAt: new Date(p.clock.now()).toISOString() });
    // Nothing left to do.
    expect(await p.t.rt.delivery.dispatcher.runOnce()).toBe(0);
  });

  it('is idempotent: the same key twice gives one ledger row and one send', async () => {
    await p.identify('ben', { email: 'ben@example.com' });
    const first = await p.enqueue('ben', [{ key: 'd:dec1:winter_sale', messageClass: 'service' }]);
    const again = await p.enqueue('ben', [{ key: 'd:dec1:winter_sale', messageClass: 'service' }, { key: 'd:dec1:winter_sale', messageClass: 'service' }]);
    expect(again).toEqual([first[0], first[0]]);
    await p.t.rt.delivery.dispatcher.runOnce();
    await p.enqueue('ben', [{ key: 'd:dec1:winter_sale', messageClass: 'service' }]);
    await p.t.rt.delivery.dispatcher.runOnce();
    expect(p.adapter.sent.filter((m) => m.key === 'd:dec1:winter_sale')).toHaveLength(1);
    const log = await p.messages('ben');
    expect(log.filter((m) => m.key === 'd:dec1:winter_sale')).toHaveLength(1);
  });

  it('retries retryable failures with backoff, honouring retryAfterMs, and records the attempts', async () => {
    await p.identify('cleo', { email: 'cleo@example.com' });
    const d = p.t.rt.delivery.dispatcher;
    p.adapter.failNext(1, { ok: false, retryable: true, retryAfterMs: 90 * SECOND, code: 'RATE_LIMITED', error: '429 Too Many Requests' });
    p.adapter.failNext(1, { ok: false, retryable: true, code: 'TIMEOUT', error: 'no answer' });
    await p.enqueue('cleo', [{ key: 'retry-1', messageClass: 'service' }]);
    const t0 = p.clock.now();
    await d.runOnce();
    let row = await ledger('retry-1');
    expect(row).toMatchObject({ status: 'queued', attempts: 1, lastError: 'RATE_LIMITED: 429 Too Many Requests', dueAt: new Date(t0 + 90 * SECOND).toISOString() });
    p.clock.advance(89 * SECOND);
    expect(await d.runOnce()).toBe(0);
    p.clock.advance(SECOND);
    await d.runOnce();
    row = await ledger('retry-1');
    // Default backoff for attempt 2: 30 s · 2^(2−1) = 60 s.
    expect(row).toMatchObject({ status: 'queued', attempts: 2, dueAt: new Date(p.clock.now() + 60 * SECOND).toISOString() });
    p.clock.advance(60 * SECOND);
    await d.runOnce();
    expect(await ledger('retry-1')).toMatchObject({ status: 'sent', attempts: 3 });
    expect(p.adapter.sent.filter((m) => m.key === 'retry-1').map((m) => m.attempt)).toEqual([3]);
  });

  it('gives up after the last attempt, and fails a permanent rejection at once; failed sends do not count towards caps', async () => {
    await p.identify('dan', { email: 'dan@example.com' });
    const d = p.t.rt.delivery.dispatcher;
    p.adapter.failNext(3, { ok: false, retryable: true, retryAfterMs: 0, code: 'UNAVAILABLE', error: '503' });
    await p.enqueue('dan', [{ key: 'giveup', category: 'promotions' }]);
    // retryAfterMs 0: due again at once, attempted on the next run (one attempt per row per run).
    await d.runOnce();
    expect(await ledger('giveup')).toMatchObject({ status: 'queued', attempts: 1 });
    await d.runOnce();
    await d.runOnce();
    expect(await ledger('giveup')).toMatchObject({ status: 'failed', reason: 'PROVIDER_REJECTED', attempts: 3 });
    expect((await ledger('giveup')).detail).toMatch(/gave up after 3 attempts/);
    // The failed marketing message did not use the daily slot.
    p.adapter.failNext(1, { ok: false, retryable: false, code: 'INVALID_ADDRESS', error: 'mailbox unknown' });
    const [o] = await p.enqueue('dan', [{ key: 'rejected' }]);
    expect(o?.outcome).toBe('send');
    await d.runOnce();
    expect(await ledger('rejected')).toMatchObject({ status: 'failed', reason: 'PROVIDER_REJECTED', attempts: 1 });
    const [third] = await p.enqueue('dan', [{ key: 'third' }]);
    expect(third?.outcome).toBe('send');
    await d.runOnce();
    const [fourth] = await p.enqueue('dan', [{ key: 'fourth' }]);
    expect(fourth).toMatchObject({ outcome: 'drop', reason: 'CAP_REACHED', rule: 'marketing_per_day' });
  });

  it('arbitrates across calls within the arbitration window: a later higher-priority request takes the slot', async () => {
    await p.identify('eve', { email: 'eve@example.com' });
    const options = { arbitrationWindowMs: 5 * SECOND };
    const [low] = await p.enqueue('eve', [{ key: 'eve-low', priority: 1 }], { options });
    expect(low?.outcome).toBe('send');
    p.clock.advance(2 * SECOND);
    // Not yet due: held for the window.
    expect(await p.t.rt.delivery.dispatcher.runOnce()).toBe(0);
    const [high] = await p.enqueue('eve', [{ key: 'eve-high', priority: 7 }], { options });
    expect(high?.outcome).toBe('send');
    expect(await ledger('eve-low')).toMatchObject({ status: 'not_sent', reason: 'LOWER_PRIORITY', rule: 'marketing_per_day' });
    p.clock.advance(5 * SECOND);
    await p.t.rt.delivery.dispatcher.runOnce();
    expect(p.adapter.sent.map((m) => m.key).filter((k) => k.startsWith('eve'))).toEqual(['eve-high']);
  });

  it('records provider feedback on the ledger (first open wins; a click implies an open)', async () => {
    const row = await ledger('j:1:promo');
    const at = p.clock.now();
    expect(await recordDeliveryEvents(p.t.rt.store.db, p.t.workspaceId, [{ type: 'clicked', messageId: row.id, at }])).toBe(1);
    expect(await recordDeliveryEvents(p.t.rt.store.db, p.t.workspaceId, [{ type: 'opened', messageId: row.id, at: at + 1000 }])).toBe(0);
    expect(await ledger('j:1:promo')).toMatchObject({ openedAt: new Date(at).toISOString(), clickedAt: new Date(at).toISOString() });
    expect(await recordDeliveryEvents(p.t.rt.store.db, p.t.workspaceId, [{ type: 'delivered', providerMessageId: `test-${row.id}`, at }])).toBe(1);
    expect((await ledger('j:1:promo')).deliveredAt).toBe(new Date(at).toISOString());
  });

  it('a provider callback only speaks for messages of its own channel', async () => {
    await p.identify('cross', { email: 'cross@example.com' });
    await p.enqueue('cross', [{ key: 'cross-1', messageClass: 'service' }]);
    await p.t.rt.delivery.dispatcher.runOnce();
    const row = await ledger('cross-1');
    expect(row.channel).toBe('email');
    const at = p.clock.now();
    const db = p.t.rt.store.db;
    // A receiver authenticated for another channel names this email message: nothing changes.
    const other = await recordChannelEvents(db, p.clock, p.t.workspaceId, 'sms', [{ type: 'opened', messageId: row.id, at }], [], { fromProvider: true });
    expect(other[0]?.customerId).toBeNull();
    expect((await ledger('cross-1')).openedAt).toBeNull();
    // The email channel's own callback does.
    await recordChannelEvents(db, p.clock, p.t.workspaceId, 'email', [{ type: 'opened', messageId: row.id, at }], [], { fromProvider: true });
    expect((await ledger('cross-1')).openedAt).toBe(new Date(at).toISOString());
  });

  it('re-gates deferred messages when due: consent withdrawn meanwhile drops them; a deferral past max_deferral expires', async () => {
    await p.identify('fay', { email: 'fay@example.com' });
    const d = p.t.rt.delivery.dispatcher;
    const start = p.clock.now();
    p.clock.set('2026-11-24T21:30:00.000Z'); // 22:30 in Berlin: quiet until 07:00Z
    const [night] = await p.enqueue('fay', [{ key: 'fay-night', category: 'recommendations' }]);
    expect(night).toMatchObject({ outcome: 'defer', reason: 'QUIET_HOURS' });
    const r = await p.t.app.inject({ method: 'POST', url: '/v1/profiles/user_id:fay/consent', headers: { authorization: `Bearer ${p.t.secretKey}`, 'content-type': 'application/json' }, payload: JSON.stringify({ purpose: 'marketing', channel: 'email', status: 'withdrawn' }) });
    expect(r.statusCode, r.body).toBe(201);
    // A paused channel with when_unavailable: defer, re-checked hourly, for at most 2 days.
    const [push] = await p.enqueue('fay', [{ key: 'fay-push', channels: ['push'], messageClass: 'service' }]);
    expect(push).toMatchObject({ outcome: 'defer', reason: 'CHANNEL_UNAVAILABLE', rule: 'push' });
    p.clock.set('2026-11-25T07:00:00.000Z');
    await d.runOnce();
    expect(await ledger('fay-night')).toMatchObject({ status: 'not_sent', reason: 'NO_CONSENT' });
    expect(await ledger('fay-push')).toMatchObject({ status: 'deferred', reason: 'CHANNEL_UNAVAILABLE' });
    p.clock.set('2026-11-26T21:00:00.000Z');
    await d.runOnce();
    expect(await ledger('fay-push')).toMatchObject({ status: 'not_sent', reason: 'DEFERRAL_EXPIRED', rule: 'push' });
    expect(p.adapter.sent.filter((m) => m.key.startsWith('fay'))).toEqual([]);
    p.clock.set(start);
  });

  it('pauses a category after three ignored messages, read from the ledger (outcome_pause)', async () => {
    await p.identify('gus', { email: 'gus@example.com' });
    const start = p.clock.now();
    for (let i = 0; i < 3; i++) {
      const [o] = await p.enqueue('gus', [{ key: `gus-rec-${i}`, category: 'recommendations' }]);
      expect(o?.outcome).toBe('send');
      await p.t.rt.delivery.dispatcher.runOnce();
      p.clock.advance(24 * 3600 * SECOND);
    }
    // The third counts as ignored 2 days after it was sent.
    p.clock.advance(24 * 3600 * SECOND);
    const [rec, promo] = await p.enqueue('gus', [{ key: 'gus-rec-3', category: 'recommendations', priority: 5 }, { key: 'gus-promo', category: 'promotions' }]);
    expect(rec).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'rest_after_ignored' });
    expect(promo).toMatchObject({ outcome: 'send' });
    p.clock.set(start);
  });

  it('two dispatchers on one database deliver each queued message exactly once', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `many${i}`);
    for (const u of users) await p.identify(u, { email: `${u}@example.com` });
    for (const u of users) await p.enqueue(u, [{ key: `${u}-a`, messageClass: 'service' }, { key: `${u}-b`, messageClass: 'transactional' }]);
    const rt = p.t.rt;
    const other = new Dispatcher({ store: rt.store, clock: p.clock, log: rt.log, registry: rt.delivery.registry, workspace: (id) => rt.workspaces.get(id), publicUrl: 'http://127.0.0.1', signingSecret: 'x' }, { intervalMs: 0, batchSize: 5 });
    const [a, b] = await Promise.all([rt.delivery.dispatcher.runOnce(), other.runOnce()]);
    await other.close();
    expect((a ?? 0) + (b ?? 0)).toBe(24);
    const keys = p.adapter.sent.map((m) => m.key).filter((k) => k.startsWith('many'));
    expect(keys).toHaveLength(24);
    expect(new Set(keys).size).toBe(24);
  });

  it('an answer that comes after another attempt took the row over records and announces nothing', async () => {
    await p.identify('late', { email: 'late@example.com' });
    await p.enqueue('late', [{ key: 'late-1', messageClass: 'service' }]);
    const rt = p.t.rt;
    const sent: string[] = [];
    const off = rt.delivery.dispatcher.events.on('message:sent', (e) => sent.push(e.key));
    // While the provider call is out, the lease runs out and another attempt claims the row.
    rt.delivery.registry.register({
      ...p.adapter,
      name: 'test',
      send: async (m, ctx) => {
        await rt.store.db.updateTable('messages').set({ attempts: m.attempt + 1 }).where('workspace_id', '=', m.workspaceId).where('id', '=', m.id).execute();
        return p.adapter.send(m, ctx);
      },
    });
    try {
      await rt.delivery.dispatcher.runOnce();
    } finally {
      rt.delivery.registry.register(p.adapter);
      off();
    }
    expect(sent).not.toContain('late-1');
    expect(await ledger('late-1')).toMatchObject({ status: 'sending', attempts: 2 });
  });

  it('lists the message log newest first, paged and filtered, with 4xx answers for bad input', async () => {
    const all = await p.messages('dan');
    expect(all.map((m) => m.key)).toEqual(['fourth', 'third', 'rejected', 'giveup']);
    const page1 = (await p.get('/v1/profiles/user_id:dan/messages?limit=2')).json() as { items: { key: string }[]; nextCursor: string };
    expect(page1.items.map((m) => m.key)).toEqual(['fourth', 'third']);
    const page2 = (await p.get(`/v1/profiles/user_id:dan/messages?limit=2&cursor=${page1.nextCursor}`)).json() as { items: { key: string }[]; nextCursor: string | null };
    expect(page2.items.map((m) => m.key)).toEqual(['rejected', 'giveup']);
    expect(page2.nextCursor).toBeNull();
    expect((await p.messages('dan', '?status=not_sent')).map((m) => [m.key, m.reason])).toEqual([['fourth', 'CAP_REACHED']]);
    const bad = await p.get('/v1/profiles/user_id:dan/messages?status=lost');
    expect([bad.statusCode, (bad.json() as { code: string }).code]).toEqual([400, 'CAIRN_ERR_UNKNOWN_MESSAGE_STATUS']);
    const cursor = await p.get('/v1/profiles/user_id:dan/messages?cursor=nope');
    expect([cursor.statusCode, (cursor.json() as { code: string }).code]).toEqual([400, 'CAIRN_ERR_BAD_CURSOR']);
    const unknown = await p.get('/v1/profiles/user_id:nobody/messages');
    expect([unknown.statusCode, (unknown.json() as { code: string }).code]).toEqual([404, 'CAIRN_ERR_PROFILE_NOT_FOUND']);
  });
});
