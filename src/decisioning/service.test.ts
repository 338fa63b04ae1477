import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../core/index.js';
import { parseIdentity } from '../profiles/index.js';
import { ENGINES } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { planOf } from './plan.js';
import { SubjectCache } from './subject.js';

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
offers:
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
