import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, VirtualClock } from '../../src/core/index.js';
import { decisionServiceOf } from '../../src/server/index.js';
import { ENGINES } from '../helpers/stores.js';
import { basic, ORDER_TRAITS, startTestApp, type TestApp } from '../helpers/runtime.js';
import { cli, ensureBuilt } from '../helpers/process.js';

/**
 * POST /v1/decide on both engines: every reason code from a real scenario, per-profile and total
 * caps with their windows, impressions and clicks counted from tracked events, key scopes, the
 * decision log, and 4xx answers with codes.
 */

export const DECIDE_BLUEPRINT = `version: 1
workspace:
  name: Decide
  timezone: Europe/Lisbon
consent:
  purposes:
    - name: marketing
      channels: [email, sms]
    - name: service
      default: granted
channels:
  - name: email
    type: email
  - name: sms
    type: sms
policies:
  classes:
    marketing:
      consent_purpose: marketing
  suppressions:
    - name: open_ticket
      type: pause
      when: 'count("Ticket Opened", "90d") > count("Ticket Solved", "90d")'
      applies_to: { classes: [marketing] }
    - name: never_returned
      type: exclude_item
      event: Order Refunded
      event_item_path: products.product_id
      item_key: product_id
computed_traits:
${ORDER_TRAITS}segments:
  - name: vip
    condition: 'traits.plan == "vip"'
stages:
  - name: customer
    condition: 'count("Order Completed", "3650d") >= 1'
placements:
  - name: home_hero
    type: web
    fallback_offer: default_banner
  - name: recs
    type: web
    max_offers: 2
  - name: side
    type: web
offers:
  - name: default_banner
    placements: [home_hero]
    condition: 'traits.plan == "never"'
    content:
      home_hero: { headline: Welcome }
  - name: vip_offer
    placements: [home_hero]
    channels: [email]
    condition: 'in_segment("vip")'
    priority: 50
    value: 10
    caps:
      - { per: profile, limit: 2, count: decision, window: { type: rolling, length: 1d } }
    content:
      home_hero:
        headline: "Hi {{ profile.traits.first_name | default: 'there' }}"
      email:
        subject: VIP
        body: VIP body
  - name: plus_offer
    placements: [home_hero]
    condition: 'traits.plan == "plus" || in_segment("vip")'
    priority: 50
    value: 5
    context_weights:
      - { when: 'context.device == "ios"', weight: 4 }
    content:
      home_hero: { headline: Plus }
  - name: customer_only
    placements: [home_hero]
    stages: [customer]
    priority: 10
    content:
      home_hero: { headline: Thanks }
  - name: shoe
    placements: [recs]
    item_key: product_id
    priority: 5
    content:
      recs: { headline: "Shoe {{ context.product_id }}" }
  - name: limited
    placements: [recs]
    priority: 1
    caps:
      - { per: total, limit: 2, count: decision, window: { type: calendar, period: day } }
    content:
      recs: { headline: Limited }
  - name: clicked_once
    placements: [recs]
    caps:
      - { per: profile, limit: 1, count: click }
    content:
      recs: { headline: Once }
  - name: one_view
    placements: [side]
    caps:
      - { per: total, limit: 1, count: impression }
    content:
      side: { headline: One view }
  - name: email_promo
    channels: [email]
    priority: 10
    content:
      email:
        subject: "Promo for {{ profile.traits.first_name | default: 'you' }}"
        body: Promo
`;

interface Reply {
  statusCode: number;
  json: () => Record<string, unknown>;
}
interface Candidate {
  offer: string;
  outcome: string;
  score: number | null;
  steps: { step: string; passed: boolean; detail: string; condition?: { result: boolean; steps: { text: string; value: unknown }[] }; values?: Record<string, unknown> }[];
}
interface Decision {
  decisionId: string;
  outcome: string;
  customerId?: string | null;
  offers: { offer: string; rank: number; score: number; fallback?: boolean; content: Record<string, unknown> | null }[];
  explanation?: { outcome: string; candidates: Candidate[] };
}

describe.each(ENGINES)('decide API on $name', (engine) => {
  let t: TestApp;
  const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
  let seq = 0;
  const uid = (p: string): string => `${p}-${engine.name}-${++seq}`;

  beforeAll(async () => {
    t = await startTestApp(engine, { clock, blueprint: DECIDE_BLUEPRINT });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function post(url: string, body: unknown, auth: string): Promise<Reply> {
    return (await t.app.inject({ method: 'POST', url, headers: { authorization: auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) })) as unknown as Reply;
  }
  const track = async (path: string, body: unknown): Promise<void> => {
    const r = await post(path, body, basic(t.writeKey));
    expect(r.statusCode, JSON.stringify(r.json())).toBe(200);
  };
  async function decide(body: Record<string, unknown>, auth = `Bearer ${t.secretKey}`): Promise<Decision> {
    const r = await post('/v1/decide', body, auth);
    expect(r.statusCode, JSON.stringify(r.json())).toBe(200);
    return r.json() as unknown as Decision;
  }
  const get = async (path: string, key = t.secretKey): Promise<Reply> => (await t.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${key}` } })) as unknown as Reply;
  const cand = (d: Decision, offer: string): Candidate => {
    const c = d.explanation?.candidates.find((x) => x.offer === offer);
    if (!c) throw new Error(`no candidate ${offer} in ${JSON.stringify(d.explanation)}`);
    return c;
  };
  const names = (d: Decision): string[] => d.offers.map((o) => o.offer);

  it('an unknown identity decides on an empty profile: NOT_ELIGIBLE everywhere, NO_ACTION and the fallback', async () => {
    const d = await decide({ anonymousId: uid('nobody'), placement: 'home_hero', explain: true });
    expect(d.outcome).toBe('NO_ACTION');
    expect(d.customerId).toBeNull();
    expect(d.offers).toEqual([expect.objectContaining({ offer: 'default_banner', rank: 1, fallback: true, content: { headline: 'Welcome' } })]);
    expect(cand(d, 'vip_offer').outcome).toBe('NOT_ELIGIBLE');
    const cond = cand(d, 'vip_offer').steps.find((s) => s.step === 'condition');
    expect(cond?.passed).toBe(false);
    expect(cond?.condition?.result).toBe(false);
    expect(cand(d, 'customer_only').steps.at(-1)).toMatchObject({ step: 'stage', passed: false });
    expect(cand(d, 'default_banner')).toMatchObject({ outcome: 'SELECTED' });
    expect(cand(d, 'default_banner').steps.at(-1)).toMatchObject({ step: 'fallback', passed: true });
    // Nothing was created for the unknown visitor.
    const profiles = await t.rt.store.db.selectFrom('customers').select('id').where('workspace_id', '=', t.workspaceId).execute();
    expect(profiles).toHaveLength(0);
  });

  it('arbitration: priority, then score (value × context weights), LOWER_PRIORITY for the rest; content is rendered', async () => {
    const user = uid('vip');
    await track('/v1/identify', { userId: user, traits: { plan: 'vip', first_name: 'Ana' } });
    const d = await decide({ userId: user, placement: 'home_hero', explain: true });
    expect(d.outcome).toBe('SELECTED');
    expect(d.offers).toEqual([expect.objectContaining({ offer: 'vip_offer', rank: 1, score: 10, content: { headline: 'Hi Ana' } })]);
    expect(cand(d, 'plus_offer')).toMatchObject({ outcome: 'LOWER_PRIORITY', score: 5 });
    // The explanation shows the value each comparison saw.
    const cond = cand(d, 'vip_offer').steps.find((s) => s.step === 'condition');
    expect(cond?.condition?.steps.some((s) => s.text.includes('in_segment') && s.value === true)).toBe(true);

    const ios = await decide({ userId: user, placement: 'home_hero', context: { device: 'ios' }, explain: true });
    expect(names(ios)).toEqual(['plus_offer']);
    expect(ios.offers[0]?.score).toBe(20);
    const score = cand(ios, 'plus_offer').steps.find((s) => s.step === 'score');
    expect(score?.values).toMatchObject({ value: 5, score: 20, weights: [expect.objectContaining({ weight: 4, held: true })] });
    expect(cand(ios, 'vip_offer').outcome).toBe('LOWER_PRIORITY');
  });

  it('a decision right after an event sees it (the loaded customer is dropped from the cache on commit)', async () => {
    const user = uid('cache');
    const anon = uid('cache-anon');
    // First seen by an anonymous id that no profile holds yet: an empty profile, cached as such.
    expect((await decide({ anonymousId: anon, placement: 'home_hero' })).offers.map((o) => o.offer)).toEqual(['default_banner']);
    await track('/v1/identify', { anonymousId: anon, traits: { plan: 'vip', first_name: 'Bo' } });
    // Same instant (the virtual clock did not move): the identify must be visible.
    expect(names(await decide({ anonymousId: anon, placement: 'home_hero' }))).toEqual(['vip_offer']);
    await track('/v1/identify', { userId: user, traits: { plan: 'free' } });
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['default_banner']);
    await track('/v1/identify', { userId: user, traits: { plan: 'vip' } });
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['vip_offer']);
  });

  it('the explanation comes from the decision itself: explain on and off choose the same for the same profile', async () => {
    const a = uid('same');
    const b = uid('same');
    for (const u of [a, b]) await track('/v1/identify', { userId: u, traits: { plan: 'plus' } });
    const plain = await decide({ userId: a, placement: 'home_hero', context: { device: 'android' } });
    const explained = await decide({ userId: b, placement: 'home_hero', context: { device: 'android' }, explain: true });
    expect(names(explained)).toEqual(names(plain));
    expect(explained.offers.map((o) => o.score)).toEqual(plain.offers.map((o) => o.score));
    const selected = explained.explanation?.candidates.filter((c) => c.outcome === 'SELECTED').map((c) => c.offer);
    expect(selected).toEqual(names(plain));
  });

  it('per-profile decision cap with a rolling window: CAP_REACHED on the third, back after the window', async () => {
    const user = uid('capped');
    await track('/v1/identify', { userId: user, traits: { plan: 'vip' } });
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['vip_offer']);
    clock.advance(HOUR);
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['vip_offer']);
    clock.advance(HOUR);
    const third = await decide({ userId: user, placement: 'home_hero', explain: true });
    expect(names(third)).toEqual(['plus_offer']);
    expect(cand(third, 'vip_offer')).toMatchObject({ outcome: 'CAP_REACHED' });
    expect(cand(third, 'vip_offer').steps.at(-1)).toMatchObject({ step: 'cap', passed: false, values: { count: 2, limit: 2 } });
    clock.advance(DAY - HOUR + 1);
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['vip_offer']);
  });

  it('a per-profile cap counts the decisions of a profile merged into the customer', async () => {
    const user = uid('merged');
    const anon = uid('merged-anon');
    await track('/v1/identify', { userId: user, traits: { plan: 'vip' } });
    // One use as the known customer (its uses are now cached), one as an anonymous visitor that
    // is a profile of its own until it signs in.
    expect(names(await decide({ userId: user, placement: 'home_hero' }))).toEqual(['vip_offer']);
    await track('/v1/identify', { anonymousId: anon, traits: { plan: 'vip' } });
    expect(names(await decide({ anonymousId: anon, placement: 'home_hero' }))).toEqual(['vip_offer']);
    clock.advance(HOUR);
    // The visitor signs in: one person, whose two uses reach the limit of 2.
    await track('/v1/identify', { userId: user, anonymousId: anon });
    const after = await decide({ userId: user, placement: 'home_hero', explain: true });
    expect(cand(after, 'vip_offer')).toMatchObject({ outcome: 'CAP_REACHED' });
    expect(cand(after, 'vip_offer').steps.at(-1)).toMatchObject({ step: 'cap', passed: false, values: { count: 2, limit: 2 } });
    expect(names(await decide({ anonymousId: anon, placement: 'home_hero' }))).toEqual(['plus_offer']);
  });

  it('concurrent decisions for one customer never exceed a per-profile cap (one group commit)', async () => {
    const user = uid('burst');
    await track('/v1/identify', { userId: user, traits: { plan: 'vip' } });
    const all = await Promise.all(Array.from({ length: 6 }, () => decide({ userId: user, placement: 'home_hero' })));
    expect(all.filter((d) => names(d)[0] === 'vip_offer')).toHaveLength(2);
  });

  it('total cap per calendar day across customers; the next day it resets', async () => {
    clock.set('2026-11-24T10:00:00.000Z');
    const picks: string[][] = [];
    for (let i = 0; i < 3; i++) picks.push(names(await decide({ userId: uid('crowd'), placement: 'recs' })));
    expect(picks[0]).toEqual(['shoe', 'limited']);
    expect(picks[1]).toEqual(['shoe', 'limited']);
    expect(picks[2]).toEqual(['shoe', 'clicked_once']);
    // Midnight in Lisbon (UTC+0 in November): the day bucket changes.
    clock.set('2026-11-25T00:00:01.000Z');
    expect(names(await decide({ userId: uid('crowd'), placement: 'recs' }))).toEqual(['shoe', 'limited']);
  });

  it('clicks and impressions come back as tracked events with the decisionId and count toward caps', async () => {
    const user = uid('clicker');
    await track('/v1/identify', { userId: user, traits: {} });
    const d = await decide({ userId: user, placement: 'side' });
    expect(names(d)).toEqual(['one_view']);
    await track('/v1/track', { userId: user, event: 'Offer Viewed', properties: { decision_id: d.decisionId, offer: 'one_view', placement: 'side' } });
    await decisionServiceOf(t.rt)?.settled();
    const after = await decide({ userId: uid('other'), placement: 'side', explain: true });
    expect(after.outcome).toBe('NO_ACTION');
    expect(cand(after, 'one_view')).toMatchObject({ outcome: 'CAP_REACHED' });

    clock.advance(DAY * 3);
    const recs = await decide({ userId: user, placement: 'recs' });
    const clickedOffer = 'clicked_once';
    await track('/v1/track', { userId: user, event: 'Offer Clicked', properties: { decision_id: recs.decisionId, offer: clickedOffer, placement: 'recs' } });
    const next = await decide({ userId: user, placement: 'recs', explain: true });
    expect(cand(next, clickedOffer).outcome).toBe('CAP_REACHED');
    // The decision an impression refers to is resolvable by id.
    const logged = await get(`/v1/decisions/${d.decisionId}`);
    expect(logged.statusCode).toBe(200);
    expect(logged.json()).toMatchObject({ decisionId: d.decisionId, offers: [expect.objectContaining({ offer: 'one_view' })] });
  });

  it('SUPPRESSED: an open ticket pauses marketing offers; a returned item is never promoted', async () => {
    const user = uid('ticket');
    await track('/v1/identify', { userId: user, traits: { plan: 'vip' } });
    await track('/v1/track', { userId: user, event: 'Ticket Opened', properties: {} });
    const d = await decide({ userId: user, placement: 'home_hero', explain: true });
    expect(cand(d, 'vip_offer')).toMatchObject({ outcome: 'SUPPRESSED' });
    expect(cand(d, 'vip_offer').steps.at(-1)).toMatchObject({ step: 'suppression', passed: false });

    const buyer = uid('returner');
    await track('/v1/track', { userId: buyer, event: 'Order Refunded', properties: { products: [{ product_id: 'p1' }, { product_id: 'p9' }] } });
    const returned = await decide({ userId: buyer, placement: 'recs', context: { product_id: 'p1' }, explain: true });
    expect(cand(returned, 'shoe')).toMatchObject({ outcome: 'SUPPRESSED' });
    const other = await decide({ userId: buyer, placement: 'recs', context: { product_id: 'p2' } });
    expect(names(other)[0]).toBe('shoe');
  });

  it('NO_CONSENT on a channel until the customer grants it', async () => {
    const user = uid('consent');
    await track('/v1/identify', { userId: user, traits: { first_name: 'Rui' } });
    const before = await decide({ userId: user, channel: 'email', explain: true });
    expect(before.outcome).toBe('NO_ACTION');
    expect(cand(before, 'email_promo')).toMatchObject({ outcome: 'NO_CONSENT' });
    const r = await post(`/v1/profiles/user_id:${user}/consent`, { purpose: 'marketing', channel: 'email', status: 'granted' }, `Bearer ${t.secretKey}`);
    expect(r.statusCode).toBeLessThan(300);
    const after = await decide({ userId: user, channel: 'email' });
    expect(after.offers).toEqual([expect.objectContaining({ offer: 'email_promo', content: { subject: 'Promo for Rui', body: 'Promo' } })]);
  });

  it('a write key can decide (no profile id, no explanation) but cannot read profiles or decisions', async () => {
    const user = uid('public');
    await track('/v1/identify', { userId: user, traits: { plan: 'plus' } });
    const d = await decide({ userId: user, placement: 'home_hero' }, basic(t.writeKey));
    expect(names(d)).toEqual(['plus_offer']);
    expect(d).not.toHaveProperty('customerId');
    const ex = await post('/v1/decide', { userId: user, placement: 'home_hero', explain: true }, basic(t.writeKey));
    expect(ex.statusCode).toBe(403);
    expect(ex.json().code).toBe('CAIRN_ERR_AUTH_SCOPE');
    // Nor by another identity: a public key must not probe emails or read what content shows of them.
    const byEmail = await post('/v1/decide', { identity: `user_id:${user}`, placement: 'home_hero' }, basic(t.writeKey));
    expect(byEmail.statusCode).toBe(403);
    expect(byEmail.json().code).toBe('CAIRN_ERR_AUTH_SCOPE');
    expect(names(await decide({ identity: `user_id:${user}`, placement: 'home_hero' }))).toEqual(['plus_offer']);
    for (const path of [`/v1/profiles/user_id:${user}`, `/v1/profiles/user_id:${user}/decisions`, `/v1/decisions/${d.decisionId}`]) {
      const r = await get(path, t.writeKey);
      expect(r.statusCode, path).toBe(403);
    }
  });

  it('lists a customer’s decisions newest first, paged', async () => {
    const user = uid('logged');
    await track('/v1/identify', { userId: user, traits: { plan: 'plus' } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      ids.push((await decide({ userId: user, placement: i === 2 ? 'recs' : 'home_hero' })).decisionId);
    }
    const first = await get(`/v1/profiles/user_id:${user}/decisions?limit=2`);
    expect(first.statusCode).toBe(200);
    const page = first.json() as { items: { decisionId: string; placement: string; offers: { offer: string }[]; reasons: Record<string, string> }[]; nextCursor: string };
    expect(page.items.map((i) => i.decisionId)).toEqual([ids[2], ids[1]]);
    expect(page.items[1]).toMatchObject({ placement: 'home_hero', offers: [{ offer: 'plus_offer' }], reasons: { vip_offer: 'NOT_ELIGIBLE', default_banner: 'NOT_ELIGIBLE' } });
    const second = (await get(`/v1/profiles/user_id:${user}/decisions?limit=2&cursor=${page.nextCursor}`)).json() as { items: { decisionId: string }[]; nextCursor: string | null };
    expect(second.items.map((i) => i.decisionId)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();
  });

  it('bad requests get a 4xx with a code (and a suggestion for a misspelt placement)', async () => {
    const auth = `Bearer ${t.secretKey}`;
    const cases: [Record<string, unknown>, number, string][] = [
      [{ userId: 'x', placement: 'home_heor' }, 400, 'CAIRN_ERR_UNKNOWN_PLACEMENT'],
      [{ userId: 'x', channel: 'emial' }, 400, 'CAIRN_ERR_UNKNOWN_CHANNEL'],
      [{ placement: 'home_hero' }, 400, 'CAIRN_ERR_DECIDE_IDENTITY'],
      [{ userId: 'x' }, 400, 'CAIRN_ERR_DECIDE_TARGET'],
      [{ userId: 'x', placement: 'home_hero', context: 'ios' }, 400, 'CAIRN_ERR_VALIDATION'],
      [{ identity: 'nokind:1', placement: 'home_hero' }, 400, 'CAIRN_ERR_BAD_IDENTITY'],
    ];
    for (const [body, status, code] of cases) {
      const r = await post('/v1/decide', body, auth);
      expect(r.statusCode, JSON.stringify(body)).toBe(status);
      expect(r.json().code, JSON.stringify(body)).toBe(code);
    }
    const r = await post('/v1/decide', { userId: 'x', placement: 'home_heor' }, auth);
    expect(r.json().message).toContain('did you mean "home_hero"');
    const ctx = await post('/v1/decide', { userId: 'x', placement: 'home_hero', context: 'ios' }, auth);
    expect(ctx.json().message).toContain('context');
  });
});

describe('cairn explain', () => {
  const engine = ENGINES[0];
  let t: TestApp;
  beforeAll(async () => {
    if (!engine) return;
    await ensureBuilt();
    t = await startTestApp(engine, { blueprint: DECIDE_BLUEPRINT, clock: new VirtualClock(Date.now()) });
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });

  it('prints every candidate with its outcome and deciding step, writes nothing, exits 0', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ userId: 'cli-vip', traits: { plan: 'vip' } }) });
    expect(r.statusCode).toBe(200);
    const env = { CAIRN_DATABASE_URL: t.rt.config.databaseUrl };
    const table = await cli(['explain', 'user_id:cli-vip', '--placement', 'home_hero', '-w', t.workspaceId], env);
    expect(table.code, table.stderr).toBe(0);
    const line = (offer: string): string => table.stdout.split('\n').find((l) => l.trim().startsWith(offer)) ?? '';
    expect(line('vip_offer')).toMatch(/SELECTED/);
    expect(line('plus_offer')).toMatch(/LOWER_PRIORITY/);
    expect(line('default_banner')).toMatch(/NOT_ELIGIBLE\s+0\s+—\s+condition ✗: traits\.plan == "never" is false/);
    expect(line('customer_only')).toMatch(/NOT_ELIGIBLE.*stage ✗/);

    const json = await cli(['explain', 'cli-unknown', '--channel', 'email', '--json', '-w', t.workspaceId], env);
    expect(json.code, json.stderr).toBe(0);
    const d = JSON.parse(json.stdout) as Decision & { dryRun: boolean };
    expect(d.dryRun).toBe(true);
    expect(d.explanation?.candidates.find((c) => c.offer === 'email_promo')?.outcome).toBe('NO_CONSENT');
    const logged = await t.rt.store.db.selectFrom('decisions').select('id').where('workspace_id', '=', t.workspaceId).execute();
    expect(logged).toHaveLength(0);
  });
});
