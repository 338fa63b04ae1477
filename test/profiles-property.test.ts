import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { ENGINES, type TestStore } from './helpers/stores.js';
import { DAY, HOUR, MINUTE, VirtualClock, uuidv7 } from '../src/core/index.js';
import { parseBlueprint, resolveModel } from '../src/blueprint/index.js';
import { upsertWorkspace, WorkspaceRegistry } from '../src/governance/index.js';
import { IngestPipeline, normalizeMessage, type ItemOutcome } from '../src/ingest/index.js';
import { getProfile, getTimeline, recomputeComputedTraits, type ProfileEvent } from '../src/profiles/index.js';
import { ORDER_TRAITS } from './helpers/runtime.js';

/**
 * Properties of the profile engine, through the real ingest pipeline and storage:
 *  (a) the merged profile depends neither on the order events arrive in, nor on replays, nor on
 *      how they are cut into batches;
 *  (b) computed traits kept incrementally equal a recompute from the timeline, now and after the
 *      window has slid.
 */

const BLUEPRINT = `version: 1
workspace:
  name: Properties
consent:
  purposes:
    - name: marketing
    - name: service
computed_traits:
${ORDER_TRAITS}  - name: revenue_total
    kind: sum
    event: Order Completed
    property: revenue
  - name: shoes_viewed_30d
    kind: count
    event: Product Viewed
    where:
      category: [shoes, boots]
    window: 30d
  - name: views_12h
    kind: count
    event: Product Viewed
    window: 12h
  - name: last_category
    kind: last
    event: Product Viewed
    property: category
  - name: first_order
    kind: first_seen
    event: Order Completed
  - name: last_active
    kind: last_seen
    types: [track, page, identify]
  - name: pages
    kind: count
    types: [page]
`;
const model = resolveModel(parseBlueprint(BLUEPRINT, 'properties.yaml').blueprint);
const START = Date.parse('2026-09-14T10:00:00.000Z');
const ANON = ['anon-a', 'anon-b', 'anon-c'] as const;
const USER = 'user-1';

// ---------------------------------------------------------------------------------------------
// Generated events for one person. Every event that names more than one identity carries the
// user_id (authenticated), so the merged result is well defined.

type Spec =
  | { kind: 'page'; anon: number; page: string }
  | { kind: 'identify'; anon: number | null; email: boolean; traits: Record<string, string>; consent: ConsentSpec | null }
  | { kind: 'anonIdentify'; anon: number; traits: Record<string, string>; consent: ConsentSpec | null }
  | { kind: 'track'; who: 'user' | 'anon' | 'both'; anon: number; what: { order: number } | { category: string | null } }
  | { kind: 'alias'; anon: number };
type ConsentSpec = { purpose: 'marketing' | 'service'; channel: '*' | 'email' | 'sms'; status: 'granted' | 'denied' | 'withdrawn' };
interface Timed {
  spec: Spec;
  /** Slots of 8 days back from the run's base time: few values, so ties are common; some fall out of the 60-day window. */
  slot: number;
  source: 'web' | 'ios';
}

const anonIdx = fc.nat(ANON.length - 1);
const traitsArb = fc.record({ plan: fc.constantFrom('free', 'pro', 'team'), city: fc.constantFrom('Oslo', 'Lima', 'Pune') }, { requiredKeys: [] });
const consentArb = fc.option(fc.record({ purpose: fc.constantFrom('marketing', 'service'), channel: fc.constantFrom('*', 'email', 'sms'), status: fc.constantFrom('granted', 'denied', 'withdrawn') }) as fc.Arbitrary<ConsentSpec>, { nil: null });
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant('page' as const), anon: anonIdx, page: fc.constantFrom('Home', 'Shoes', 'Pricing') }),
  fc.record({ kind: fc.constant('identify' as const), anon: fc.option(anonIdx, { nil: null }), email: fc.boolean(), traits: traitsArb, consent: consentArb }),
  fc.record({ kind: fc.constant('anonIdentify' as const), anon: anonIdx, traits: traitsArb, consent: consentArb }),
  fc.record({
    kind: fc.constant('track' as const),
    who: fc.constantFrom('user' as const, 'anon' as const, 'both' as const),
    anon: anonIdx,
    what: fc.oneof(fc.record({ order: fc.integer({ min: 0, max: 250_00 }) }), fc.record({ category: fc.constantFrom('shoes', 'boots', 'hats', null) })),
  }),
  fc.record({ kind: fc.constant('alias' as const), anon: anonIdx }),
);
const timedArb: fc.Arbitrary<Timed> = fc.record({ spec: specArb, slot: fc.integer({ min: 0, max: 9 }), source: fc.constantFrom('web' as const, 'ios' as const) });

function toMessage(x: Timed, i: number, base: number): { source: string; raw: Record<string, unknown> } {
  const s = x.spec;
  const raw: Record<string, unknown> = { type: s.kind === 'anonIdentify' ? 'identify' : s.kind, messageId: `msg-${i}`, timestamp: new Date(base - x.slot * 8 * DAY).toISOString() };
  const consentTrait = (c: ConsentSpec | null) => (c === null ? {} : { $consent: { [c.purpose]: { [c.channel]: c.status, wording_version: 'w1' } } });
  switch (s.kind) {
    case 'page':
      Object.assign(raw, { anonymousId: ANON[s.anon], name: s.page });
      break;
    case 'identify':
      Object.assign(raw, { userId: USER, traits: { ...s.traits, ...(s.email ? { email: 'Pat@Example.com' } : {}), ...consentTrait(s.consent) } });
      if (s.anon !== null) raw.anonymousId = ANON[s.anon];
      break;
    case 'anonIdentify':
      Object.assign(raw, { anonymousId: ANON[s.anon], traits: { ...s.traits, ...consentTrait(s.consent) } });
      break;
    case 'track':
      if (s.who !== 'anon') raw.userId = USER;
      if (s.who !== 'user') raw.anonymousId = ANON[s.anon];
      if ('order' in s.what) Object.assign(raw, { event: 'Order Completed', properties: { revenue: s.what.order / 100, currency: 'EUR' } });
      else Object.assign(raw, { event: 'Product Viewed', properties: s.what.category === null ? {} : { category: s.what.category } });
      break;
    case 'alias':
      Object.assign(raw, { userId: USER, previousId: ANON[s.anon] });
      break;
  }
  return { source: x.source, raw };
}

// ---------------------------------------------------------------------------------------------

describe.each(ENGINES)('profile properties on $name', (engine) => {
  let t: TestStore;
  let clock: VirtualClock;
  let pipeline: IngestPipeline;
  const runs = engine.name === 'sqlite' ? 80 : 20;

  beforeAll(async () => {
    t = await engine.open();
    clock = new VirtualClock(START);
    pipeline = new IngestPipeline(t.store, new WorkspaceRegistry(t.store.db, clock), clock, pino({ level: 'silent' }), { maxBatch: 1000, dedupeWindowMs: 7 * DAY });
  });
  afterAll(async () => {
    await pipeline?.close();
    await t?.cleanup();
  });

  async function newWorkspace(): Promise<string> {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await upsertWorkspace(t.store.db, clock, ws, BLUEPRINT, null);
    return ws;
  }

  function normalize(m: { source: string; raw: Record<string, unknown> }): ProfileEvent {
    const r = normalizeMessage(m.raw, { model, source: m.source, receivedAt: clock.now() });
    if (!r.ok) throw new Error(`generated message rejected: ${JSON.stringify(r.error)}`);
    return r.event;
  }

  async function liveIds(ws: string): Promise<string[]> {
    return (await t.store.db.selectFrom('customers').select('id').where('workspace_id', '=', ws).where('merged_into', 'is', null).execute()).map((r) => r.id);
  }

  /** Everything a reader can see of a workspace's profiles, without the random profile ids. */
  async function contents(ws: string, at: number) {
    const profiles = [];
    for (const id of await liveIds(ws)) {
      const p = await getProfile(t.store.db, ws, model, id, at);
      if (!p) throw new Error(`live profile ${id} not readable`);
      const timeline = (await getTimeline(t.store.db, ws, id, { limit: 10_000 })).items;
      profiles.push({
        identities: p.identities.map((i) => `${i.kind}:${i.value}`).sort(),
        traits: p.traits,
        traitSources: p.traitSources,
        computed: p.computed,
        consent: p.consent,
        firstSeen: p.firstSeen,
        lastSeen: p.lastSeen,
        messageIds: timeline.map((e) => `${e.source}/${e.messageId}`).sort(),
        events: timeline.length,
      });
    }
    profiles.sort((a, b) => (a.identities[0] ?? '').localeCompare(b.identities[0] ?? ''));
    const stored = await t.store.db.selectFrom('events').select(['source', 'message_id']).where('workspace_id', '=', ws).execute();
    return { profiles, stored: stored.map((r) => `${r.source}/${r.message_id}`).sort() };
  }

  it('(a) the merged profile does not depend on event order, replays or batch boundaries', async () => {
    const scenario = fc
      .array(timedArb, { minLength: 1, maxLength: 24 })
      .chain((events) =>
        fc.record({
          events: fc.constant(events),
          // A random permutation: sort by random keys.
          keys: fc.array(fc.nat(), { minLength: events.length, maxLength: events.length }),
          // Replays of some events (same messageId), inserted at random positions.
          replays: fc.array(fc.record({ of: fc.nat(events.length - 1), at: fc.nat(events.length) }), { maxLength: 6 }),
          // Where the arrival stream is cut into requests, whether a request waits for the previous
          // one (a separate transaction) or is sent alongside it (a shared group commit), and how
          // much time passes in between.
          cuts: fc.array(fc.record({ cut: fc.boolean(), wait: fc.boolean(), gapMs: fc.integer({ min: 0, max: 10 * MINUTE }) }), { minLength: events.length + 6, maxLength: events.length + 6 }),
        }),
      );

    await fc.assert(
      fc.asyncProperty(scenario, async ({ events, keys, replays, cuts }) => {
        const base = clock.now();
        const messages = events.map((e, i) => toMessage(e, i, base));

        // Canonical: every event once, in generation order, in one request.
        const canonical = await newWorkspace();
        expect(await pipeline.submit(canonical, messages.map(normalize))).toEqual(messages.map(() => 'accepted'));

        // Shuffled, replayed and cut into requests.
        const shuffled = await newWorkspace();
        const order = messages.map((m, i) => ({ m, k: keys[i] as number, i })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.m);
        for (const r of replays) order.splice(r.at, 0, messages[r.of] as (typeof messages)[number]);
        const pending: Promise<ItemOutcome[]>[] = [];
        let batch: ProfileEvent[] = [];
        for (let i = 0; i < order.length; i++) {
          batch.push(normalize(order[i] as (typeof order)[number]));
          const c = cuts[i] as (typeof cuts)[number];
          if (c.cut || i === order.length - 1) {
            pending.push(pipeline.submit(shuffled, batch));
            batch = [];
            if (c.wait) await Promise.all(pending);
            clock.advance(c.gapMs);
          }
        }
        const outcomes = (await Promise.all(pending)).flat();
        expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(messages.length);
        expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(replays.length);

        const at = clock.now() + HOUR;
        const want = await contents(canonical, at);
        const got = await contents(shuffled, at);
        expect(got).toEqual(want);
        // Sanity: the scenario is what we meant it to be.
        expect(want.stored).toHaveLength(messages.length);
        const userProfiles = want.profiles.filter((p) => p.identities.includes(`user_id:${USER}`));
        expect(userProfiles.length).toBeLessThanOrEqual(1);
        clock.advance(MINUTE);
      }),
      { numRuns: runs },
    );
  });

  it('(c) stored rows are byte for byte the same whether the same events arrive in one commit or in many', async () => {
    // Across commits a profile is loaded from its stored text and written back (saveUnit reuses the
    // stored traits text when nothing changed them); in one commit every profile is new and
    // serialized from memory. The clock stands still, so `now` (created/updated, window pruning)
    // is the same for both.
    const rowsOf = async (ws: string) => {
      const customers = await t.store.db.selectFrom('customers').select(['traits', 'computed', 'first_seen', 'last_seen', 'created_at', 'updated_at', 'merged_into']).where('workspace_id', '=', ws).execute();
      const events = await t.store.db.selectFrom('events').select(['source', 'message_id', 'type', 'name', 'ts', 'received_at', 'payload']).where('workspace_id', '=', ws).execute();
      return {
        customers: customers.map((r) => JSON.stringify([r.traits, r.computed, Number(r.first_seen), Number(r.last_seen), Number(r.created_at), Number(r.updated_at), r.merged_into !== null])).sort(),
        events: events.map((r) => JSON.stringify([r.source, r.message_id, r.type, r.name, Number(r.ts), Number(r.received_at), r.payload])).sort(),
      };
    };
    const scenario = fc.record({
      events: fc.array(timedArb, { minLength: 1, maxLength: 24 }),
      cuts: fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ events, cuts }) => {
        const base = clock.now();
        const messages = events.map((e, i) => toMessage(e, i, base));
        const one = await newWorkspace();
        await pipeline.submit(one, messages.map(normalize));
        const many = await newWorkspace();
        let batch: ProfileEvent[] = [];
        for (let i = 0; i < messages.length; i++) {
          batch.push(normalize(messages[i] as (typeof messages)[number]));
          if (cuts[i] === true || i === messages.length - 1) {
            await pipeline.submit(many, batch);
            batch = [];
          }
        }
        const want = await rowsOf(one);
        expect(want.events).toHaveLength(messages.length);
        expect(await rowsOf(many)).toEqual(want);
        clock.advance(MINUTE);
      }),
      { numRuns: runs },
    );
  });

  it('(b) incremental computed traits equal a recompute from history, also after the window slides', async () => {
    const trackArb = fc.record({
      who: fc.oneof(fc.constant(-1), fc.nat(3)), // -1: the user, else an anonymous id
      ageMs: fc.integer({ min: -HOUR, max: 90 * DAY }),
      what: fc.oneof(fc.record({ order: fc.integer({ min: 1, max: 500_00 }) }), fc.record({ category: fc.constantFrom('shoes', 'boots', 'hats', null) })),
    });
    const stepArb = fc.oneof(
      { weight: 6, arbitrary: trackArb.map((x) => ({ kind: 'track' as const, ...x })) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('identify' as const, 'alias' as const), anon: fc.nat(3) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 20 * DAY }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'commit' as const }) },
    );
    const scenario = fc.record({
      steps: fc.array(stepArb, { minLength: 1, maxLength: 40 }),
      slide: fc.integer({ min: 0, max: 75 * DAY }),
      after: fc.array(trackArb, { maxLength: 6 }),
    });

    let n = 0;
    const raw = (x: { who: number; ageMs: number; what: { order: number } | { category: string | null } }) => {
      const m: Record<string, unknown> = { messageId: `t-${n++}`, timestamp: new Date(clock.now() - x.ageMs).toISOString() };
      if (x.who < 0) m.userId = USER;
      else m.anonymousId = `anon-${x.who}`;
      if ('order' in x.what) Object.assign(m, { type: 'track', event: 'Order Completed', properties: { revenue: x.what.order / 100 } });
      else Object.assign(m, { type: 'track', event: 'Product Viewed', properties: x.what.category === null ? {} : { category: x.what.category } });
      return m;
    };
    const computedOf = async (ws: string, at: number) => {
      const out: Record<string, unknown>[] = [];
      for (const id of (await liveIds(ws)).sort()) out.push({ id, ...(await getProfile(t.store.db, ws, model, id, at))?.computed });
      return out;
    };

    await fc.assert(
      fc.asyncProperty(scenario, async ({ steps, slide, after }) => {
        const ws = await newWorkspace();
        let batch: ProfileEvent[] = [];
        const flush = async () => {
          if (batch.length > 0) await pipeline.submit(ws, batch);
          batch = [];
        };
        for (const s of steps) {
          if (s.kind === 'track') batch.push(normalize({ source: 'web', raw: raw(s) }));
          else if (s.kind === 'identify') batch.push(normalize({ source: 'web', raw: { type: 'identify', userId: USER, anonymousId: `anon-${s.anon}`, messageId: `t-${n++}` } }));
          else if (s.kind === 'alias') batch.push(normalize({ source: 'web', raw: { type: 'alias', userId: USER, previousId: `anon-${s.anon}`, messageId: `t-${n++}` } }));
          else if (s.kind === 'advance') {
            await flush();
            clock.advance(s.ms);
          } else await flush();
        }
        await flush();

        // Now: incremental state read now and read later (no new event), versus recomputes.
        const now = clock.now();
        const incrementalNow = await computedOf(ws, now);
        const incrementalLater = await computedOf(ws, now + slide);
        expect(await recomputeComputedTraits(t.store, ws, model, now)).toBe(incrementalNow.length);
        expect(await computedOf(ws, now)).toEqual(incrementalNow);
        clock.advance(slide);
        await recomputeComputedTraits(t.store, ws, model, clock.now());
        expect(await computedOf(ws, clock.now())).toEqual(incrementalLater);

        // New events on top of the recomputed state keep both ways in agreement.
        if (after.length > 0) await pipeline.submit(ws, after.map((x) => normalize({ source: 'web', raw: raw(x) })));
        const incremental = await computedOf(ws, clock.now());
        await recomputeComputedTraits(t.store, ws, model, clock.now());
        expect(await computedOf(ws, clock.now())).toEqual(incremental);
        // Sanity: the history holds everything that was sent (no event lost to a merge).
        const stored = await t.store.db.selectFrom('events').select('id').where('workspace_id', '=', ws).execute();
        expect(stored.length).toBe(steps.filter((s) => s.kind === 'track' || s.kind === 'identify' || s.kind === 'alias').length + after.length);
      }),
      { numRuns: runs },
    );
  });
});
