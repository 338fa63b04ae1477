import { describe, expect, it } from 'vitest';
import { DAY, HOUR, SECOND } from '../../src/core/index.js';
import type { MessageRequest } from '../../src/delivery/index.js';
import { ENGINES } from '../helpers/stores.js';
import { startPolicyApp, type PolicyApp } from './policy-harness.js';

/**
 * The contact policy end to end, on both engines, in virtual time: events go in through the
 * tracking API, journeys' and decisions' sends go through enqueueMessages (rt.delivery.enqueue),
 * the dispatcher delivers through the test adapter, and the profile's message log shows every
 * message sent and not sent with its reason code. docs/contact-policy.md describes the rules.
 */

async function withApp(engine: (typeof ENGINES)[number], fn: (p: PolicyApp) => Promise<void>, opts: Parameters<typeof startPolicyApp>[1] = {}): Promise<void> {
  const p = await startPolicyApp(engine, opts);
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

const journeySend = (journey: string, instance: string, step: string, over: Partial<MessageRequest>): Partial<MessageRequest> => ({ key: `j:${instance}:${step}`, journey: { name: journey, instanceId: instance, step }, ...over });

describe.each(ENGINES)('contact policy scenarios on $name', (engine) => {
  it('(1) an open support ticket pauses marketing until it is solved; a service message still goes', async () => {
    await withApp(engine, async (p) => {
      await p.identify('u1', { email: 'u1@example.com' });
      await p.track('u1', 'Ticket Opened', { ticket_id: 't-1' });
      p.clock.advance(HOUR);
      const [promo] = await p.enqueue('u1', [journeySend('winback', 'i1', 'promo', { offer: 'winter_sale', channels: ['email'], category: 'promotions', priority: 50 })]);
      const [care] = await p.enqueue('u1', [journeySend('onboarding', 'i2', 'care', { messageClass: 'service', category: 'order_updates' })]);
      expect(promo).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'open_ticket_pauses_marketing' });
      expect(care).toMatchObject({ outcome: 'send', channel: 'email' });
      await p.t.rt.delivery.dispatcher.runOnce();
      expect(p.adapter.sent.map((m) => m.key)).toEqual(['j:i2:care']);

      // Still open the next day: still paused.
      p.clock.advance(DAY);
      expect((await p.enqueue('u1', [journeySend('winback', 'i3', 'promo', { category: 'promotions' })]))[0]).toMatchObject({ reason: 'SUPPRESSED' });

      await p.track('u1', 'Ticket Solved', { ticket_id: 't-1' });
      p.clock.advance(HOUR);
      const [after] = await p.enqueue('u1', [journeySend('winback', 'i4', 'promo', { offer: 'winter_sale', category: 'promotions', priority: 50 })]);
      expect(after).toMatchObject({ outcome: 'send', channel: 'email' });
      await p.t.rt.delivery.dispatcher.runOnce();
      expect(p.adapter.sent.map((m) => m.key)).toEqual(['j:i2:care', 'j:i4:promo']);
      expect(p.adapter.sent[1]?.content).toEqual({ subject: 'Winter sale', body: '50% off' });

      const log = await p.messages('u1');
      expect(log.map((m) => [m.key, m.status, m.reason])).toEqual([
        ['j:i4:promo', 'sent', null],
        ['j:i3:promo', 'not_sent', 'SUPPRESSED'],
        ['j:i2:care', 'sent', null],
        ['j:i1:promo', 'not_sent', 'SUPPRESSED'],
      ]);
      expect(log[3]).toMatchObject({ rule: 'open_ticket_pauses_marketing', journey: { name: 'winback', instanceId: 'i1', step: 'promo' } });
      expect(log[3]?.detail).toMatch(/Ticket Opened/);
    });
  });

  it('(2) an item the customer returned is never promoted to them', async () => {
    await withApp(engine, async (p) => {
      await p.identify('u2', { email: 'u2@example.com' });
      await p.track('u2', 'Order Refunded', { order_id: 'o-9', products: [{ product_id: 'sku-42' }, { product_id: 'sku-43' }] });
      p.clock.advance(HOUR);
      const [returned] = await p.enqueue('u2', [{ key: 'd:dec-1:shoe_promo', offer: 'shoe_promo', category: 'promotions', items: ['sku-42'] }]);
      expect(returned).toMatchObject({ outcome: 'drop', reason: 'SUPPRESSED', rule: 'never_promote_returned_items' });
      expect(returned?.outcome === 'drop' && returned.detail).toMatch(/sku-42 was named by a Order Refunded event/);
      // Months later (the rule has no window): still never.
      p.clock.advance(120 * DAY);
      expect((await p.enqueue('u2', [{ key: 'd:dec-2:shoe_promo', offer: 'shoe_promo', category: 'promotions', items: ['sku-43'] }]))[0]).toMatchObject({ reason: 'SUPPRESSED' });
      // Another item goes.
      const [other] = await p.enqueue('u2', [{ key: 'd:dec-3:shoe_promo', offer: 'shoe_promo', category: 'promotions', items: ['sku-7'] }]);
      expect(other).toMatchObject({ outcome: 'send' });
      await p.t.rt.delivery.dispatcher.runOnce();
      expect(p.adapter.sent.map((m) => m.key)).toEqual(['d:dec-3:shoe_promo']);
      expect((await p.messages('u2', '?status=not_sent')).map((m) => m.reason)).toEqual(['SUPPRESSED', 'SUPPRESSED']);
    });
  });

  it('(3) three journeys compete for one customer on one day: the cap holds, the highest priority wins', async () => {
    // A 5 s arbitration window, as in production: a send waits 5 s before dispatch.
    await withApp(
      engine,
      async (p) => {
        await p.identify('u3', { email: 'u3@example.com' });
        // 10:00:00 UTC (11:00 in Berlin): the welcome journey (priority 1) asks first.
        const [welcome] = await p.enqueue('u3', [journeySend('welcome', 'w1', 'tip', { category: 'recommendations', priority: 1 })]);
        expect(welcome?.outcome).toBe('send');
        // 2 s later the win-back journey (priority 40) asks for the same customer.
        p.clock.advance(2 * SECOND);
        const [winback] = await p.enqueue('u3', [journeySend('winback', 'b1', 'offer', { offer: 'winter_sale', channels: ['sms', 'email'], category: 'promotions', priority: 40 })]);
        expect(winback).toMatchObject({ outcome: 'send', channel: 'email' });
        p.clock.advance(5 * SECOND);
        await p.t.rt.delivery.dispatcher.runOnce();
        // The afternoon: the cart journey (priority 90) finds the day's slot used.
        p.clock.set('2026-11-23T15:00:00.000Z');
        const [cart] = await p.enqueue('u3', [journeySend('cart_recovery', 'c1', 'remind', { category: 'promotions', priority: 90 })]);
        expect(cart).toMatchObject({ outcome: 'drop', reason: 'CAP_REACHED', rule: 'marketing_per_day' });
        await p.t.rt.delivery.dispatcher.runOnce();

        expect(p.adapter.sent.map((m) => m.key)).toEqual(['j:b1:offer']);
        const log = await p.messages('u3');
        expect(log.map((m) => [m.journey?.name, m.status, m.reason, m.rule])).toEqual([
          ['cart_recovery', 'not_sent', 'CAP_REACHED', 'marketing_per_day'],
          ['winback', 'sent', null, null],
          ['welcome', 'not_sent', 'LOWER_PRIORITY', 'marketing_per_day'],
        ]);
        expect(log[2]?.detail).toMatch(/last slot went to j:b1:offer \(priority 40\)/);

        // The cap is per calendar day in the customer's zone: after local midnight there is a slot again.
        p.clock.set('2026-11-23T23:00:00.000Z'); // 00:00 in Berlin — but quiet hours until 08:00
        const [tomorrow] = await p.enqueue('u3', [journeySend('cart_recovery', 'c2', 'remind', { category: 'promotions', priority: 90 })]);
        expect(tomorrow).toMatchObject({ outcome: 'defer', reason: 'QUIET_HOURS', until: Date.parse('2026-11-24T07:00:00.000Z') });
        p.clock.set('2026-11-24T07:00:00.000Z');
        await p.t.rt.delivery.dispatcher.runOnce(); // re-gated: queued, held for the window
        p.clock.advance(5 * SECOND);
        await p.t.rt.delivery.dispatcher.runOnce();
        expect(p.adapter.sent.map((m) => m.key)).toEqual(['j:b1:offer', 'j:c2:remind']);
      },
      { env: { CAIRN_ARBITRATION_WINDOW: '5s' } },
    );
  });

  it('(4) SMS is not live until rollout phase 2: email is used, then SMS once phase 2 starts', async () => {
    await withApp(engine, async (p) => {
      await p.identify('u4', { email: 'u4@example.com', phone: '+4915112345678' });
      const sale = (key: string): Partial<MessageRequest> => ({ key, offer: 'winter_sale', channels: ['sms', 'email'], category: 'promotions', priority: 50 });
      const [phase1] = await p.enqueue('u4', [sale('d:p1:winter_sale')]);
      expect(phase1).toMatchObject({ outcome: 'send', channel: 'email' });
      expect(phase1?.outcome === 'send' && phase1.detail).toMatch(/sms: live from rollout phase phase2/);
      await p.t.rt.delivery.dispatcher.runOnce();
      expect(p.adapter.sent[0]).toMatchObject({ channel: 'email', to: { email: 'u4@example.com' }, content: { subject: 'Winter sale', body: '50% off' } });

      // Phase 2 starts on 2026-12-01 in the workspace zone (Berlin): 2026-11-30T23:00Z.
      p.clock.set('2026-12-01T09:00:00.000Z');
      const [phase2] = await p.enqueue('u4', [sale('d:p2:winter_sale')]);
      expect(phase2).toMatchObject({ outcome: 'send', channel: 'sms' });
      await p.t.rt.delivery.dispatcher.runOnce();
      expect(p.adapter.sent[1]).toMatchObject({ channel: 'sms', channelType: 'sms', to: { phone: '+4915112345678' }, content: { body: 'Winter sale 50% off' } });
      expect((await p.messages('u4')).map((m) => m.channel)).toEqual(['sms', 'email']);
    });
  });

  it('(5) quiet hours in the customer’s zone defer a send to 08:00 local', async () => {
    await withApp(
      engine,
      async (p) => {
        await p.identify('u5', { email: 'u5@example.com', timezone: 'America/New_York' });
        // 03:00 UTC is 22:00 in New York (UTC−5): quiet until 08:00 local = 13:00 UTC.
        const [o] = await p.enqueue('u5', [journeySend('newsletter', 'n1', 'send', { category: 'recommendations' })]);
        expect(o).toMatchObject({ outcome: 'defer', reason: 'QUIET_HOURS', rule: 'night', until: Date.parse('2026-11-24T13:00:00.000Z') });
        await p.t.rt.delivery.dispatcher.runOnce();
        expect(p.adapter.sent).toEqual([]);
        expect((await p.messages('u5'))[0]).toMatchObject({ status: 'deferred', reason: 'QUIET_HOURS', dueAt: '2026-11-24T13:00:00.000Z' });

        p.clock.set('2026-11-24T12:59:00.000Z');
        await p.t.rt.delivery.dispatcher.runOnce();
        expect(p.adapter.sent).toEqual([]);
        p.clock.set('2026-11-24T13:00:00.000Z');
        await p.t.rt.delivery.dispatcher.runOnce();
        expect(p.adapter.sent.map((m) => m.key)).toEqual(['j:n1:send']);
        expect((await p.messages('u5'))[0]).toMatchObject({ status: 'sent', reason: null, sentAt: '2026-11-24T13:00:00.000Z', requestedAt: '2026-11-24T03:00:00.000Z' });

        // A customer without a zone gets the workspace's (Berlin): 03:00Z is 04:00 there, quiet until 07:00Z.
        await p.identify('u6', { email: 'u6@example.com' });
        p.clock.set('2026-11-25T03:00:00.000Z');
        expect((await p.enqueue('u6', [{ key: 'berlin', category: 'recommendations' }]))[0]).toMatchObject({ outcome: 'defer', until: Date.parse('2026-11-25T07:00:00.000Z') });
      },
      { start: '2026-11-24T03:00:00.000Z' },
    );
  });
});
