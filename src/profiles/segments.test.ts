import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { DAY, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import {
  applyProfileEvents,
  buildEvalInput,
  extractIdentities,
  findCustomerId,
  getProfile,
  getSegmentHistory,
  getSegmentMemberships,
  recomputeComputedTraits,
  recomputeSegments,
  computed,
  segmentSizes,
  type ConsentInput,
  type ProfileEvent,
  type ProfileRow,
} from './index.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');
// vip is declared before the segments it reads: evaluation follows dependencies, not declaration.
const BLUEPRINT = `version: 1
workspace:
  name: Segments
consent:
  purposes:
    - name: marketing
computed_traits:
  - name: orders_total
    kind: count
    event: Order Completed
segments:
  - name: vip
    condition: in_segment("buyers") && in_segment("big_spenders")
  - name: buyers
    condition: count("Order Completed", "60d") >= 3
  - name: big_spenders
    condition: sum("Order Completed", "revenue", "30d") >= 100
  - name: emailable
    condition: consent("marketing", "email") && reachable("email")
  - name: ios_buyer
    condition: last("Order Completed").platform == "ios"
`;
const parsed = parseBlueprint(BLUEPRINT, 'segments.yaml');
const model = resolveModel(parsed.blueprint, undefined, parsed.conditions);

function track(userId: string, id: string, ts: number, props: Record<string, unknown>, extra: { email?: string; consent?: ConsentInput[] } = {}): ProfileEvent {
  const message = { type: 'track', userId, event: 'Order Completed', messageId: id, properties: props, ...(extra.email ? { context: { traits: { email: extra.email } } } : {}) };
  return {
    source: 'web',
    messageId: id,
    type: 'track',
    name: 'Order Completed',
    ts,
    receivedAt: ts,
    identities: extractIdentities(model, message),
    properties: props,
    payload: JSON.stringify(message),
    ...(extra.consent ? { consent: extra.consent } : {}),
  };
}

function alias(userId: string, anon: string, id: string, ts: number): ProfileEvent {
  const message = { type: 'alias', userId, previousId: anon, messageId: id };
  return { source: 'web', messageId: id, type: 'alias', name: null, ts, receivedAt: ts, identities: extractIdentities(model, message), previousId: anon, payload: JSON.stringify(message) };
}

function anonTrack(anon: string, id: string, ts: number, props: Record<string, unknown>): ProfileEvent {
  const message = { type: 'track', anonymousId: anon, event: 'Order Completed', messageId: id, properties: props };
  return { source: 'web', messageId: id, type: 'track', name: 'Order Completed', ts, receivedAt: ts, identities: extractIdentities(model, message), properties: props, payload: JSON.stringify(message) };
}

describe('model and evaluation input', () => {
  it('turns every distinct counter into one implicit computed trait, ordered segments by dependency', () => {
    const implicit = model.computed.filter((d) => d.implicit === true);
    expect(implicit.map((d) => d.kind).sort()).toEqual(['count', 'last_event', 'sum']);
    const order = model.segments.map((s) => s.name);
    expect(order.indexOf('vip')).toBeGreaterThan(Math.max(order.indexOf('buyers'), order.indexOf('big_spenders')));
    expect(order.slice(3)).toEqual(['emailable', 'ios_buyer']);
    // Compiling inside resolveModel gives the same counters as parseBlueprint's compilation.
    expect(resolveModel(parsed.blueprint).computed.map((d) => d.name)).toEqual(model.computed.map((d) => d.name));
  });

  it('reads counters, consent defaults and reachability from the profile', () => {
    const row: ProfileRow = { id: 'c1', createdAt: NOW, updatedAt: NOW, mergedInto: null, traits: {}, computed: {}, firstSeen: NOW, lastSeen: NOW, identities: new Set(['email\u0000a@x.io']) };
    const count = model.computed.find((d) => d.implicit && d.kind === 'count');
    const last = model.computed.find((d) => d.implicit && d.kind === 'last_event');
    if (!count || !last) throw new Error('missing counters');
    row.computed[count.name] = { b: { [Math.floor((NOW - DAY) / DAY)]: 2, [Math.floor((NOW - 90 * DAY) / DAY)]: 5 } };
    row.computed[last.name] = { p: { platform: 'ios' }, ts: NOW - DAY };
    const input = buildEvalInput(model, row, { now: NOW, segments: new Set(), stage: null, consent: [] });
    expect(input.counter(count.name)).toBe(2);
    expect(input.counter(last.name)).toEqual({ ts: NOW - DAY, properties: { platform: 'ios' } });
    expect(input.counter('["count","Nope",null,null,null]')).toBeUndefined();
    expect(input.consent('marketing', 'email')).toBe(false);
    expect(input.reachable('email')).toBe(true);
    expect(input.reachable('sms')).toBe(false);
    expect(input.reachable('in_app')).toBe(true);
    const granted = buildEvalInput(model, { ...row, traits: { push_token: { v: 'tok', ts: NOW, src: 'app' } } }, { now: NOW, segments: new Set(), stage: null, consent: [{ purpose: 'marketing', channel: '*', status: 'granted', source: 'web', occurredAt: new Date(NOW).toISOString(), wordingVersion: null }] });
    expect(granted.consent('marketing', 'email')).toBe(true);
    expect(granted.reachable('push')).toBe(true);
  });
});

describe('last_event counter algebra', () => {
  it('the newest event wins whatever the arrival order or merge split', () => {
    const def = model.computed.find((d) => d.implicit && d.kind === 'last_event');
    if (!def) throw new Error('missing counter');
    const ev = fc.record({ ts: fc.integer({ min: 0, max: 5 }), platform: fc.constantFrom('ios', 'android', 'web') });
    fc.assert(
      fc.property(fc.array(ev, { minLength: 1, maxLength: 8 }), fc.nat(), (events, cut) => {
        const fold = (list: typeof events) => list.reduce<computed.ComputedState | undefined>((s, e) => computed.update(def, s, { type: 'track', name: 'Order Completed', ts: e.ts, properties: { platform: e.platform } }, NOW), undefined);
        const whole = fold(events);
        expect(fold([...events].reverse())).toEqual(whole);
        const k = cut % (events.length + 1);
        expect(computed.merge(def, fold(events.slice(0, k)), fold(events.slice(k)), NOW)).toEqual(whole);
        expect(computed.merge(def, fold(events.slice(k)), fold(events.slice(0, k)), NOW)).toEqual(whole);
      }),
    );
  });
});

describe.each(ENGINES)('segment membership on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  async function members(ws: string): Promise<string[]> {
    const rows = await t.store.db.selectFrom('segment_membership').select(['customer_id', 'segment']).where('workspace_id', '=', ws).orderBy('customer_id').orderBy('segment').execute();
    return rows.map((r) => `${r.customer_id}:${r.segment}`);
  }

  it('enters and exits segments on ingest, with history, sizes and hidden counters', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const apply = (events: ProfileEvent[], now = NOW): Promise<unknown> => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, now));
    await apply([track('a', 'm1', NOW - 3 * DAY, { revenue: 60, platform: 'android' }), track('a', 'm2', NOW - 2 * DAY, { revenue: 50, platform: 'ios' })]);
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['big_spenders', 'ios_buyer']);
    // The third order makes a a buyer, hence vip; the newest order is on android.
    await apply([track('a', 'm3', NOW - DAY, { revenue: 1, platform: 'android' }, { email: 'a@x.io', consent: [{ purpose: 'marketing', channel: 'email', status: 'granted', wordingVersion: null }] })]);
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['big_spenders', 'buyers', 'emailable', 'vip']);
    expect(await getSegmentHistory(t.store.db, ws, a)).toEqual(
      expect.arrayContaining([
        { segment: 'ios_buyer', change: 'entered', at: new Date(NOW).toISOString() },
        { segment: 'ios_buyer', change: 'exited', at: new Date(NOW).toISOString() },
        { segment: 'vip', change: 'entered', at: new Date(NOW).toISOString() },
      ]),
    );
    expect((await getSegmentHistory(t.store.db, ws, a)).length).toBe(6);
    await apply([track('b', 'm4', NOW, { revenue: 500 })]);
    expect(await segmentSizes(t.store.db, ws)).toEqual({ big_spenders: 2, buyers: 1, emailable: 1, vip: 1 });
    // Implicit counters are kept but not shown as computed traits.
    expect((await getProfile(t.store.db, ws, model, a, NOW))?.computed).toEqual({ orders_total: 3 });

    // Time alone: 40 days later the 30d revenue window has emptied; only a recompute sees it.
    const later = NOW + 40 * DAY;
    expect(await recomputeSegments(t.store, ws, model, later)).toBe(2);
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['buyers', 'emailable']);
    expect(await segmentSizes(t.store.db, ws)).toEqual({ buyers: 1, emailable: 1 });
    expect((await getSegmentHistory(t.store.db, ws, a)).filter((h) => h.change === 'exited' && h.at === new Date(later).toISOString()).map((h) => h.segment).sort()).toEqual(['big_spenders', 'vip']);
  });

  it('a profile merged away leaves its segments; the survivor is evaluated on the union', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    let now = NOW;
    // Ingest time advances between batches, so history orders by time.
    const apply = (events: ProfileEvent[]): Promise<unknown> => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, (now += 1000)));
    await apply([anonTrack('anon1', 'm1', NOW - DAY, { revenue: 150 })]);
    const anon = (await findCustomerId(t.store.db, ws, { kind: 'anonymous_id', value: 'anon1' })) as string;
    await apply([track('u', 'm2', NOW - DAY, { revenue: 1 }), track('u', 'm3', NOW - DAY, { revenue: 1 })]);
    const u = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })) as string;
    expect(await members(ws)).toEqual([`${anon}:big_spenders`]);
    await apply([alias('u', 'anon1', 'm4', NOW)]);
    expect(await members(ws)).toEqual([`${u}:big_spenders`, `${u}:buyers`, `${u}:vip`].sort());
    expect((await getSegmentHistory(t.store.db, ws, anon)).map((h) => h.change)).toEqual(['entered', 'exited']);
  });

  it('a recompute repairs stored memberships that differ from the evaluation in members, not only in number', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [track('a', 'm1', NOW - DAY, { revenue: 150, platform: 'ios' }), track('b', 'm2', NOW - DAY, { revenue: 5, platform: 'android' })], NOW));
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    const b = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'b' })) as string;
    expect(await members(ws)).toEqual([`${a}:big_spenders`, `${a}:ios_buyer`]);
    // a: as many stored memberships as wanted, one of them wrong (a segment the model no longer has);
    // b: one stored where none is wanted.
    await t.store.db.deleteFrom('segment_membership').where('workspace_id', '=', ws).where('customer_id', '=', a).where('segment', '=', 'ios_buyer').execute();
    await t.store.db
      .insertInto('segment_membership')
      .values([
        { workspace_id: ws, customer_id: a, segment: 'retired', entered_at: NOW },
        { workspace_id: ws, customer_id: b, segment: 'buyers', entered_at: NOW },
      ])
      .execute();
    const later = NOW + 1000;
    expect(await recomputeSegments(t.store, ws, model, later)).toBe(2);
    expect(await members(ws)).toEqual([`${a}:big_spenders`, `${a}:ios_buyer`]);
    const at = new Date(later).toISOString();
    expect((await getSegmentHistory(t.store.db, ws, a)).filter((h) => h.at === at)).toEqual(expect.arrayContaining([{ segment: 'retired', change: 'exited', at }, { segment: 'ios_buyer', change: 'entered', at }]));
    expect((await getSegmentHistory(t.store.db, ws, a)).filter((h) => h.at === at)).toHaveLength(2);
    expect((await getSegmentHistory(t.store.db, ws, b)).filter((h) => h.at === at)).toEqual([{ segment: 'buyers', change: 'exited', at }]);
    // Once repaired, a second recompute finds nothing to change.
    const history = await t.store.db.selectFrom('segment_history').select('id').where('workspace_id', '=', ws).execute();
    await recomputeSegments(t.store, ws, model, later);
    expect(await t.store.db.selectFrom('segment_history').select('id').where('workspace_id', '=', ws).execute()).toHaveLength(history.length);
  });

  it('never meets an in_segment cycle: loading refuses one, so every pass has a dependency order', () => {
    const yaml = `version: 1
workspace:
  name: Cycle
segments:
  - name: p
    condition: count("Order Completed") >= 1 || in_segment("q")
  - name: q
    condition: in_segment("p")
`;
    expect(() => parseBlueprint(yaml, 'cycle.yaml')).toThrow(expect.objectContaining({ code: 'CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE' }));
    expect(model.segments.every((s) => !s.inCycle)).toBe(true);
  });

  it('incremental memberships equal a bulk recompute after random batches', async () => {
    const users = ['a', 'b', 'c', 'd'];
    const eventArb = fc.record({
      user: fc.constantFrom(...users),
      anon: fc.option(fc.constantFrom('x1', 'x2'), { nil: undefined }),
      ageDays: fc.integer({ min: 0, max: 90 }),
      revenue: fc.integer({ min: 0, max: 80 }),
      platform: fc.constantFrom('ios', 'android'),
      consent: fc.option(fc.constantFrom('granted', 'denied', 'withdrawn'), { nil: undefined }),
      email: fc.boolean(),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(eventArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }), async (batches) => {
        const ws = `ws_${uuidv7().slice(-12)}`;
        for (const batch of batches) {
          const events = batch.map((e) => {
            const id = `m${n++}`;
            const ts = NOW - e.ageDays * DAY;
            if (e.anon !== undefined && e.ageDays % 3 === 0) return alias(e.user, e.anon, id, ts);
            if (e.anon !== undefined) return anonTrack(e.anon, id, ts, { revenue: e.revenue, platform: e.platform });
            return track(e.user, id, ts, { revenue: e.revenue, platform: e.platform }, { ...(e.email ? { email: `${e.user}@x.io` } : {}), ...(e.consent ? { consent: [{ purpose: 'marketing', channel: 'email', status: e.consent as ConsentInput['status'], wordingVersion: null }] } : {}) });
          });
          await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, NOW));
        }
        const incremental = await members(ws);
        const historyBefore = await t.store.db.selectFrom('segment_history').select('id').where('workspace_id', '=', ws).execute();
        // Rebuild the counters from the timeline too: the incremental counters must have been equal.
        await recomputeComputedTraits(t.store, ws, model, NOW);
        await recomputeSegments(t.store, ws, model, NOW);
        expect(await members(ws)).toEqual(incremental);
        // The recompute found nothing to change.
        expect((await t.store.db.selectFrom('segment_history').select('id').where('workspace_id', '=', ws).execute()).length).toBe(historyBefore.length);
      }),
      { numRuns: 15 },
    );
  }, 60_000);
});

describe.each(ENGINES)('segments over HTTP on $name', (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(engine, { blueprint: BLUEPRINT });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('tracking updates membership in the same commit; GET /v1/segments lists sizes, the profile lists segments', async () => {
    const post = (body: unknown) => t.app.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const get = (url: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.secretKey}` } });
    for (let i = 0; i < 3; i++) expect((await post({ userId: 'h1', event: 'Order Completed', messageId: `h1-${i}`, properties: { revenue: 40, platform: 'ios' } })).statusCode).toBe(200);
    expect((await post({ userId: 'h2', event: 'Order Completed', messageId: 'h2-0', properties: { revenue: 5 } })).statusCode).toBe(200);
    const sizes = await get('/v1/segments');
    expect(sizes.statusCode).toBe(200);
    expect(sizes.json()).toEqual({
      items: [
        { name: 'vip', persona: false, size: 1 },
        { name: 'buyers', persona: false, size: 1 },
        { name: 'big_spenders', persona: false, size: 1 },
        { name: 'emailable', persona: false, size: 0 },
        { name: 'ios_buyer', persona: false, size: 1 },
      ],
    });
    const profile = (await get('/v1/profiles/user_id:h1')).json() as { segments: { segment: string }[]; computed: Record<string, unknown> };
    expect(profile.segments.map((m) => m.segment)).toEqual(['big_spenders', 'buyers', 'ios_buyer', 'vip']);
    expect(profile.computed).toEqual({ orders_total: 3 });
  });
});
