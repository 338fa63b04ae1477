import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../core/index.js';
import { findCustomerId, parseIdentity } from '../profiles/index.js';
import { ENGINES } from '../../test/helpers/stores.js';
import { openStore } from '../store/index.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { planOf } from './plan.js';
import { SubjectCache } from './subject.js';
import { DecisionService } from './service.js';

/** Decision service details on both engines: the subject cache under concurrent commits, fallback caps. */

const BLUEPRINT = `version: 1
workspace:
  name: Service
channels:
  - name: email
    type: email
placements:
  - name: hero
    type: web
    fallback_offer: fb
  - name: banner
    type: web
offers:
  - name: twice
    placements: [banner]
    priority: 10
    caps:
      - { per: profile, limit: 2, count: decision, window: { type: rolling, length: 1d } }
    content:
      banner: { headline: Twice }
  - name: always
    placements: [banner]
    content:
      banner: { headline: Always }
  - name: fb
    placements: [hero]
    caps:
      - { per: profile, limit: 1, count: decision }
    content:
      hero: { headline: Default }
  - name: mail_only
    placements: [hero]
    channels: [email]
    condition: 'traits.plan == "vip"'
    content:
      hero: { headline: Vip }
      email: { subject: Vip, body: Vip }
`;

describe.each(ENGINES)('decision service on $name', (engine) => {
  let t: TestApp;
  const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
  beforeAll(async () => {
    t = await startTestApp(engine, { clock, blueprint: BLUEPRINT });
  });
  afterAll(async () => {
    await t?.close();
  });

  const identify = async (userId: string, traits: Record<string, unknown>): Promise<void> => {
    const r = await t.app.inject({ method: 'POST', url: '/v1/identify', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ userId, traits }) });
    expect(r.statusCode).toBe(200);
  };

  it('a customer loaded while a commit invalidated it is not kept in the cache', async () => {
    await identify('race-1', { plan: 'free' });
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const refs = [parseIdentity(ws.model, 'user_id:race-1') ?? { id: 'none' }];
    const cache = new SubjectCache(60_000);
    const load = () => cache.load(t.rt.store.db, ws.id, ws.model, planOf(ws.model), refs, clock.now());
    // A commit for this customer lands while the load is in flight: what the load read may predate it.
    const inFlight = load();
    cache.invalidate(ws.id, [], [{ kind: 'user_id', value: 'race-1' }]);
    const first = await inFlight;
    expect(first.rec?.id).toBeDefined();
    // The commit's write (the load may have missed it).
    await t.rt.store.db.updateTable('customers').set({ traits: JSON.stringify({ plan: { v: 'vip', ts: clock.now(), src: 'test' } }) }).where('workspace_id', '=', ws.id).where('id', '=', first.rec?.id as string).execute();
    const second = await load();
    expect(JSON.parse(second.rec?.traits ?? '{}').plan.v).toBe('vip');
  });

  it('a per-profile cap counts uses another process wrote since this one last decided', async () => {
    await identify('other-proc', { plan: 'free' });
    const decide = async (): Promise<{ decisionId: string; customerId: string; offers: { offer: string }[] }> => {
      const r = await t.app.inject({ method: 'POST', url: '/v1/decide', headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' }, payload: JSON.stringify({ userId: 'other-proc', placement: 'banner' }) });
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    };
    // The first use of `twice` (limit 2): this process now knows the customer's uses.
    const first = await decide();
    expect(first.offers.map((o) => o.offer)).toEqual(['twice']);
    // Another process (its own connection) decides `twice` for the same customer: the second use.
    const other = openStore(t.rt.config.databaseUrl);
    try {
      await other.db.insertInto('offer_uses').values({ workspace_id: t.workspaceId, customer_id: first.customerId, offer: 'twice', at: clock.now(), decision_id: 'elsewhere', slot: 'banner' }).execute();
    } finally {
      await other.destroy();
    }
    // Two uses in the window: capped, whatever this process remembered.
    expect((await decide()).offers.map((o) => o.offer)).toEqual(['always']);
  });

  it('a workspace whose decisions cannot be written fails only its own callers in a shared group commit', async () => {
    await identify('shared-commit', { plan: 'free' });
    const ws = await t.rt.workspaces.get(t.workspaceId);
    // A second workspace whose rows the database refuses (a NOT NULL workspace_id): its decisions
    // land in the same group commit as the healthy workspace's.
    const broken = { ...ws, id: null as unknown as string };
    const service = new DecisionService(t.rt.store, clock, t.rt.log, { commitDelayMs: 20 });
    try {
      const [good, bad] = await Promise.allSettled([
        service.decide(ws, { userId: 'shared-commit', placement: 'banner' }),
        service.decide(broken, { anonymousId: 'visitor-x', placement: 'banner' }),
      ]);
      expect(good.status).toBe('fulfilled');
      expect(bad.status).toBe('rejected');
      const id = good.status === 'fulfilled' ? good.value.decisionId : '';
      const logged = await t.rt.store.db.selectFrom('decisions').select('id').where('workspace_id', '=', ws.id).where('id', '=', id).execute();
      expect(logged).toHaveLength(1);
    } finally {
      await service.close();
    }
  });

  it('a group commit whose COMMIT failed after the writes is not decided again (its outcome is unknown)', async () => {
    await identify('lost-commit', { plan: 'free' });
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const other = { ...ws, id: 'ws-lost-commit' };
    // The database committed, but the answer to COMMIT never arrived (a connection lost meanwhile).
    let lost = false;
    const store = {
      ...t.rt.store,
      transaction: async <T,>(...a: Parameters<typeof t.rt.store.transaction<T>>): Promise<T> => {
        const r = await t.rt.store.transaction(...a);
        if (!lost) {
          lost = true;
          throw new Error('connection lost during COMMIT');
        }
        return r;
      },
    };
    const service = new DecisionService(store, clock, t.rt.log, { commitDelayMs: 20 });
    try {
      const settled = await Promise.allSettled([service.decide(ws, { userId: 'lost-commit', placement: 'banner' }), service.decide(other, { anonymousId: 'lost-visitor', placement: 'banner' })]);
      expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      // Written once, by the commit whose answer was lost; never a second time by a retry.
      const customer = await findCustomerId(t.rt.store.db, ws.id, { kind: 'user_id', value: 'lost-commit' });
      const count = async (workspaceId: string, customerId: string | null) =>
        (await t.rt.store.db.selectFrom('decisions').select('id').where('workspace_id', '=', workspaceId).where('customer_id', customerId === null ? 'is' : '=', customerId).execute()).length;
      expect(await count(ws.id, customer as string)).toBe(1);
      expect(await count(other.id, null)).toBe(1);
    } finally {
      await service.close();
    }
  });

  it('a decision retried after a shared group commit failed explains each step once', async () => {
    await identify('shared-explain', { plan: 'free' });
    const ws = await t.rt.workspaces.get(t.workspaceId);
    const broken = { ...ws, id: null as unknown as string };
    const service = new DecisionService(t.rt.store, clock, t.rt.log, { commitDelayMs: 20 });
    try {
      // Alone (nothing to retry): the reference explanation.
      const alone = await service.decide(ws, { userId: 'shared-explain', placement: 'banner', explain: true });
      // In a group commit with a failing workspace: arbitrated twice (the group, then its own retry).
      const [good] = await Promise.allSettled([
        service.decide(ws, { userId: 'shared-explain', placement: 'banner', explain: true }),
        service.decide(broken, { anonymousId: 'visitor-y', placement: 'banner' }),
      ]);
      expect(good.status).toBe('fulfilled');
      const steps = (r: typeof alone): string[][] => (r.explanation?.candidates ?? []).map((c) => c.steps.map((s) => s.step));
      const retried = good.status === 'fulfilled' ? good.value : alone;
      expect(steps(retried)).toEqual(steps(alone));
    } finally {
      await service.close();
    }
  });

  it('a per-profile cap holds over many group commits: each one sees the uses of those before', async () => {
    const users = ['waves-1', 'waves-2', 'waves-3', 'waves-4'];
    for (const u of users) await identify(u, { plan: 'free' });
    const decide = async (userId: string): Promise<string[]> => {
      const r = await t.app.inject({ method: 'POST', url: '/v1/decide', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify({ userId, placement: 'banner' }) });
      expect(r.statusCode, r.body).toBe(200);
      return (r.json() as { offers: { offer: string }[] }).offers.map((o) => o.offer);
    };
    const served = new Map<string, number>(users.map((u) => [u, 0]));
    // Waves of concurrent decisions: several group commits, most customers seen before.
    for (let wave = 0; wave < 5; wave++) {
      const got = await Promise.all(users.flatMap((u) => [u, u, u].map(async (x) => [x, await decide(x)] as const)));
      for (const [u, offers] of got) if (offers.includes('twice')) served.set(u, (served.get(u) ?? 0) + 1);
    }
    // Exactly the limit: never more (a use missed), never fewer (a use counted twice).
    for (const u of users) expect(served.get(u), u).toBe(2);
  });

  it('the fallback obeys its caps when it is not a candidate (placement + channel)', async () => {
    await identify('fb-1', { plan: 'free' });
    const decide = async (): Promise<string[]> => {
      const r = await t.app.inject({ method: 'POST', url: '/v1/decide', headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' }, payload: JSON.stringify({ userId: 'fb-1', placement: 'hero', channel: 'email' }) });
      expect(r.statusCode, r.body).toBe(200);
      return (r.json() as { offers: { offer: string }[] }).offers.map((o) => o.offer);
    };
    expect(await decide()).toEqual(['fb']);
    // Per profile, once: the second decision must not serve it again.
    expect(await decide()).toEqual([]);
  });
});
