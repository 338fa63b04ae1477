import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { applyProfileEvents, applyTrait, extractIdentities, findCustomerId, getProfile, mergeTraits, traitValues, wins, type ProfileEvent, type TraitValue, type Traits } from './index.js';

const T = Date.parse('2026-04-01T09:00:00.000Z');
const model = resolveModel(parseBlueprint('version: 1\nworkspace:\n  name: Traits\n', 'traits.yaml').blueprint);

describe('last write wins by event time', () => {
  it('a later event time wins, an earlier one never does, whatever the arrival order', () => {
    const traits: Traits = {};
    expect(applyTrait(traits, 'plan', { v: 'pro', ts: T + 10, src: 'crm' })).toBe(true);
    expect(applyTrait(traits, 'plan', { v: 'free', ts: T + 5, src: 'web' })).toBe(false);
    expect(traits.plan).toEqual({ v: 'pro', ts: T + 10, src: 'crm' });
    expect(applyTrait(traits, 'plan', { v: 'team', ts: T + 11, src: 'web' })).toBe(true);
    expect(traitValues(traits)).toEqual({ plan: 'team' });
  });

  it('breaks ties at the same event time the same way in either order', () => {
    const a: TraitValue = { v: 'gold', ts: T, src: 'crm' };
    const b: TraitValue = { v: 'silver', ts: T, src: 'web' };
    expect(wins(a, b)).not.toBe(wins(b, a));
    const x: Traits = {};
    applyTrait(x, 'tier', a);
    applyTrait(x, 'tier', b);
    const y: Traits = {};
    applyTrait(y, 'tier', b);
    applyTrait(y, 'tier', a);
    expect(x).toEqual(y);
    // Same value from two sources: still one deterministic winner.
    expect(wins({ v: 1, ts: T, src: 'a' }, { v: 1, ts: T, src: 'b' })).not.toBe(wins({ v: 1, ts: T, src: 'b' }, { v: 1, ts: T, src: 'a' }));
    // A write never beats itself (replays change nothing).
    expect(wins(a, { ...a })).toBe(false);
  });

  it('any order of writes and merges gives the same traits (commutative, idempotent)', () => {
    const write = fc.record({ key: fc.constantFrom('plan', 'city', 'age'), v: fc.oneof(fc.string({ maxLength: 3 }), fc.integer({ min: 0, max: 3 }), fc.constant(null), fc.array(fc.nat(2), { maxLength: 2 })), ts: fc.integer({ min: 0, max: 4 }), src: fc.constantFrom('crm', 'web') });
    fc.assert(
      fc.property(fc.array(write, { maxLength: 25 }), fc.array(fc.nat(), { minLength: 25, maxLength: 25 }), fc.nat(), (writes, keys, seed) => {
        const apply = (list: typeof writes): Traits => {
          const out: Traits = {};
          for (const w of list) applyTrait(out, w.key, { v: w.v, ts: w.ts, src: w.src });
          return out;
        };
        const canonical = apply(writes);
        const shuffled = writes.map((w, i) => ({ w, k: keys[i] as number })).sort((p, q) => p.k - q.k).map((x) => x.w);
        expect(apply([...shuffled, ...shuffled.slice(0, seed % 5)])).toEqual(canonical);
        // Split in two profiles and merged, either way round.
        const cut = seed % (writes.length + 1);
        const left = apply(writes.slice(0, cut));
        const right = apply(writes.slice(cut));
        const lr = structuredClone(left);
        mergeTraits(lr, right);
        const rl = structuredClone(right);
        mergeTraits(rl, left);
        expect(lr).toEqual(canonical);
        expect(rl).toEqual(canonical);
      }),
      { numRuns: 300 },
    );
  });
});

describe.each(ENGINES)('stored traits on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  function identify(x: { userId?: string; anonymousId?: string; traits: Record<string, unknown>; at: number; id: string; source?: string; receivedAt: number }): ProfileEvent {
    const message: Record<string, unknown> = { type: 'identify', messageId: x.id, traits: x.traits };
    if (x.userId) message.userId = x.userId;
    if (x.anonymousId) message.anonymousId = x.anonymousId;
    return { source: x.source ?? 'web', messageId: x.id, type: 'identify', name: null, ts: x.at, receivedAt: x.receivedAt, identities: extractIdentities(model, message), traits: x.traits, payload: JSON.stringify(message) };
  }

  it('an older identify that arrives later does not overwrite a newer value', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const run = (e: ProfileEvent) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [e], e.receivedAt));
    await run(identify({ userId: 'u', traits: { plan: 'pro', city: 'Oslo' }, at: T + 10_000, id: 'm1', source: 'crm', receivedAt: T + 20_000 }));
    // Sent from an offline device: happened earlier, arrives an hour later.
    await run(identify({ userId: 'u', traits: { plan: 'free', phone_model: 'X' }, at: T, id: 'm2', source: 'ios', receivedAt: T + 3_600_000 }));
    const id = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })) as string;
    const p = await getProfile(t.store.db, ws, model, id, T + 3_600_000);
    expect(p?.traits).toEqual({ plan: 'pro', city: 'Oslo', phone_model: 'X' });
    expect(p?.traitSources.plan).toEqual({ source: 'crm', at: new Date(T + 10_000).toISOString() });
    expect(p?.traitSources.phone_model).toEqual({ source: 'ios', at: new Date(T).toISOString() });
    // A newer one does overwrite, and records its source and time.
    await run(identify({ userId: 'u', traits: { plan: 'team' }, at: T + 30_000, id: 'm3', source: 'web', receivedAt: T + 3_700_000 }));
    const q = await getProfile(t.store.db, ws, model, id, T + 3_700_000);
    expect(q?.traits.plan).toBe('team');
    expect(q?.traitSources.plan).toEqual({ source: 'web', at: new Date(T + 30_000).toISOString() });
  });

  it('on a merge the newer value wins, whichever profile survives', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    const run = (...es: ProfileEvent[]) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, es, T + 3_600_000));
    await run(identify({ anonymousId: 'a', traits: { plan: 'newer-on-loser', color: 'red' }, at: T + 50_000, id: 'm1', receivedAt: T }));
    await run(identify({ userId: 'u', traits: { plan: 'older-on-survivor', color: 'blue' }, at: T + 60_000, id: 'm2', receivedAt: T }));
    await run(identify({ userId: 'u', anonymousId: 'a', traits: {}, at: T, id: 'm3', receivedAt: T }));
    // Both traits were last set on the survivor (T+60s), later than on the loser (T+50s).
    const id = (await findCustomerId(t.store.db, ws, { kind: 'anonymous_id', value: 'a' })) as string;
    expect(await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })).toBe(id);
    const p = await getProfile(t.store.db, ws, model, id, T + 3_600_000);
    expect(p?.traits).toEqual({ plan: 'older-on-survivor', color: 'blue' });

    const ws2 = `ws_${uuidv7().slice(-12)}`;
    const run2 = (...es: ProfileEvent[]) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws2, model, es, T + 3_600_000));
    await run2(identify({ anonymousId: 'a', traits: { plan: 'newer-on-loser' }, at: T + 70_000, id: 'm1', receivedAt: T }));
    await run2(identify({ userId: 'u', traits: { plan: 'older-on-survivor' }, at: T + 60_000, id: 'm2', receivedAt: T }));
    await run2(identify({ userId: 'u', anonymousId: 'a', traits: {}, at: T, id: 'm3', receivedAt: T }));
    const id2 = (await findCustomerId(t.store.db, ws2, { kind: 'user_id', value: 'u' })) as string;
    expect((await getProfile(t.store.db, ws2, model, id2, T + 3_600_000))?.traits).toEqual({ plan: 'newer-on-loser' });
  });
});
