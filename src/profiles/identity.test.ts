import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel, type WorkspaceModel } from '../blueprint/index.js';
import { applyProfileEvents, extractIdentities, findCustomerId, getConsentLedger, getIdentityLog, getProfile, getTimeline, normalizeIdentity, parseIdentity, type ProfileEvent } from './index.js';

/**
 * Identity resolution through the repository, on both engines: merges keep every event and trait,
 * the survivor follows key precedence, and refusals (unauthenticated, unique conflict, limit) are
 * logged instead of merging.
 */

const T = Date.parse('2026-02-02T10:00:00.000Z');
const MIN = 60_000;

function model(identity = '', extra = ''): WorkspaceModel {
  const yaml = `version: 1
workspace:
  name: Identity
${identity}consent:
  purposes:
    - name: marketing
computed_traits:
  - name: views
    kind: count
    event: Product Viewed
  - name: pages
    kind: count
    types: [page]
${extra}`;
  return resolveModel(parseBlueprint(yaml, 'identity.yaml').blueprint);
}
const DEFAULT = model();

interface Msg {
  type: ProfileEvent['type'];
  userId?: string;
  anonymousId?: string;
  previousId?: string;
  email?: string;
  crmId?: string;
  event?: string;
  traits?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  consent?: ProfileEvent['consent'];
  at: number;
  id: string;
}

/** Builds the ProfileEvent ingest would hand over (identities in precedence order). */
function ev(m: WorkspaceModel, x: Msg): ProfileEvent {
  const message: Record<string, unknown> = { type: x.type, messageId: x.id };
  if (x.userId !== undefined) message.userId = x.userId;
  if (x.anonymousId !== undefined) message.anonymousId = x.anonymousId;
  const traits = { ...(x.traits ?? {}), ...(x.email !== undefined ? { email: x.email } : {}) };
  if (Object.keys(traits).length > 0) message.traits = traits;
  if (x.crmId !== undefined) message.context = { externalIds: [{ type: 'crm_id', id: x.crmId }] };
  if (x.properties) message.properties = x.properties;
  const e: ProfileEvent = {
    source: 'web',
    messageId: x.id,
    type: x.type,
    name: x.event ?? null,
    ts: x.at,
    receivedAt: x.at,
    identities: extractIdentities(m, message),
    payload: JSON.stringify(message),
  };
  if (x.previousId !== undefined) e.previousId = x.previousId;
  if (x.type === 'identify' && Object.keys(traits).length > 0) e.traits = traits;
  if (x.properties) e.properties = x.properties;
  if (x.consent) e.consent = x.consent;
  return e;
}

describe.each(ENGINES)('identity resolution on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  /** A fresh workspace with a helper that applies one batch in one transaction. */
  function workspace(m: WorkspaceModel = DEFAULT) {
    const ws = `ws_${uuidv7().slice(-12)}`;
    // Each batch is processed a second after the previous one, so log entries sort by batch.
    let now = T + 60 * MIN;
    const apply = (...xs: Msg[]) => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, m, xs.map((x) => ev(m, x)), (now += 1000)));
    const who = (kind: string, value: string) => findCustomerId(t.store.db, ws, { kind, value });
    const profile = async (id: string | undefined) => {
      expect(id).toBeDefined();
      const p = await getProfile(t.store.db, ws, m, id as string, T + 60 * MIN);
      expect(p).toBeDefined();
      return p as NonNullable<typeof p>;
    };
    const timeline = async (id: string) => (await getTimeline(t.store.db, ws, id, { limit: 1000 })).items.map((i) => i.messageId).sort();
    const log = (id: string) => getIdentityLog(t.store.db, ws, id);
    const live = async () => (await t.store.db.selectFrom('customers').select('id').where('workspace_id', '=', ws).where('merged_into', 'is', null).execute()).map((r) => r.id);
    return { ws, apply, who, profile, timeline, log, live };
  }

  describe('merges keep all history', () => {
    it('alias merges an anonymous visitor into the known user without losing an event, a trait or consent', async () => {
      const w = workspace();
      await w.apply(
        { type: 'page', anonymousId: 'anon-1', id: 'm1', at: T },
        { type: 'track', anonymousId: 'anon-1', event: 'Product Viewed', id: 'm2', at: T + MIN },
        { type: 'identify', anonymousId: 'anon-1', traits: { plan: 'free', city: 'Lyon' }, consent: [{ purpose: 'marketing', channel: 'email', status: 'granted', wordingVersion: 'v1' }], id: 'm3', at: T + 2 * MIN },
      );
      await w.apply({ type: 'identify', userId: 'u-1', email: 'Ana@Example.com', traits: { name: 'Ana', city: 'Paris' }, id: 'm4', at: T + 3 * MIN });
      const anon = (await w.who('anonymous_id', 'anon-1')) as string;
      const user = (await w.who('user_id', 'u-1')) as string;
      expect(anon).not.toBe(user);
      const loserBefore = await w.profile(anon);

      await w.apply({ type: 'alias', userId: 'u-1', previousId: 'anon-1', id: 'm5', at: T + 4 * MIN });

      // The known user's profile survives (user_id outranks anonymous_id) and the loser resolves to it.
      expect(await w.who('anonymous_id', 'anon-1')).toBe(user);
      expect(await findCustomerId(t.store.db, w.ws, { id: anon })).toBe(user);
      expect(await w.live()).toEqual([user]);
      const p = await w.profile(user);
      expect(p.mergedFrom).toEqual([anon]);
      expect(p.traits).toEqual({ plan: 'free', city: 'Paris', name: 'Ana', email: 'Ana@Example.com' });
      expect(p.identities).toEqual([
        { kind: 'user_id', value: 'u-1' },
        { kind: 'email', value: 'ana@example.com' },
        { kind: 'anonymous_id', value: 'anon-1' },
      ]);
      expect(p.computed).toMatchObject({ views: 1, pages: 1 });
      expect(p.firstSeen).toBe(new Date(T).toISOString());
      expect(p.lastSeen).toBe(new Date(T + 4 * MIN).toISOString());
      expect(p.consent).toMatchObject([{ purpose: 'marketing', channel: 'email', status: 'granted', wordingVersion: 'v1' }]);
      expect(await w.timeline(user)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      expect(await w.timeline(anon)).toEqual([]);
      expect(await getConsentLedger(t.store.db, w.ws, anon)).toEqual([]);

      // The merge is recorded with a snapshot of what the loser held.
      const merged = (await w.log(user)).filter((l) => l.outcome === 'merged');
      expect(merged).toHaveLength(1);
      expect(merged[0]).toMatchObject({ customerId: user, otherId: anon, messageId: 'm5' });
      const snap = JSON.parse(merged[0]?.detail as string) as { traits: Record<string, { v: unknown }>; identities: string[] };
      expect(Object.fromEntries(Object.entries(snap.traits).map(([k, v]) => [k, v.v]))).toEqual(loserBefore.traits);
      expect(snap.identities).toEqual(['anonymous_id:anon-1']);
      // The loser's own log view shows the same record.
      expect((await w.log(anon)).map((l) => l.id)).toEqual(merged.map((l) => l.id));
    });

    it('gives the same profile when everything arrives in one batch', async () => {
      const w = workspace();
      await w.apply(
        { type: 'page', anonymousId: 'anon-1', id: 'm1', at: T },
        { type: 'track', anonymousId: 'anon-1', event: 'Product Viewed', id: 'm2', at: T + MIN },
        { type: 'identify', anonymousId: 'anon-1', traits: { plan: 'free', city: 'Lyon' }, id: 'm3', at: T + 2 * MIN },
        { type: 'identify', userId: 'u-1', email: 'Ana@Example.com', traits: { name: 'Ana', city: 'Paris' }, id: 'm4', at: T + 3 * MIN },
        { type: 'alias', userId: 'u-1', previousId: 'anon-1', id: 'm5', at: T + 4 * MIN },
      );
      const user = (await w.who('user_id', 'u-1')) as string;
      expect(await w.who('anonymous_id', 'anon-1')).toBe(user);
      expect(await w.live()).toEqual([user]);
      const p = await w.profile(user);
      expect(p.traits).toEqual({ plan: 'free', city: 'Paris', name: 'Ana', email: 'Ana@Example.com' });
      expect(p.computed).toMatchObject({ views: 1, pages: 1 });
      expect(p.mergedFrom).toHaveLength(1);
      expect(await w.timeline(user)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      // The profile created and merged inside the batch still exists as a pointer to the survivor.
      expect(await findCustomerId(t.store.db, w.ws, { id: p.mergedFrom[0] as string })).toBe(user);
    });

    it('identify with userId and anonymousId merges the anonymous history; an event for the loser id lands on the survivor', async () => {
      const w = workspace();
      await w.apply({ type: 'track', anonymousId: 'a', event: 'Product Viewed', id: 'm1', at: T });
      await w.apply({ type: 'track', userId: 'u', event: 'Product Viewed', id: 'm2', at: T + MIN });
      const anon = (await w.who('anonymous_id', 'a')) as string;
      await w.apply({ type: 'identify', userId: 'u', anonymousId: 'a', id: 'm3', at: T + 2 * MIN });
      const user = (await w.who('user_id', 'u')) as string;
      expect(await w.who('anonymous_id', 'a')).toBe(user);
      // A direct write addressed to the merged-away id follows the pointer.
      await t.store.transaction((trx) =>
        applyProfileEvents(trx, t.store, w.ws, DEFAULT, [{ ...ev(DEFAULT, { type: 'track', event: 'Product Viewed', id: 'm4', at: T + 3 * MIN }), identities: [], customerId: anon }], T + 60 * MIN),
      );
      expect(await w.timeline(user)).toEqual(['m1', 'm2', 'm3', 'm4']);
      expect((await w.profile(user)).computed).toMatchObject({ views: 3 });
    });

    it('a chain of merges leaves every old id pointing at the final survivor', async () => {
      const m = model(`identity:
  keys:
    - name: crm_id
      authenticated: true
    - name: user_id
    - name: email
    - name: anonymous_id
`);
      const w = workspace(m);
      await w.apply(
        { type: 'track', anonymousId: 'a', event: 'Product Viewed', id: 'm1', at: T },
        { type: 'identify', userId: 'u', traits: { tier: 'gold' }, id: 'm2', at: T },
        { type: 'identify', crmId: 'CRM-9', traits: { owner: 'sales' }, id: 'm3', at: T },
      );
      const pa = (await w.who('anonymous_id', 'a')) as string;
      const pu = (await w.who('user_id', 'u')) as string;
      const pc = (await w.who('crm_id', 'CRM-9')) as string;
      expect(new Set([pa, pu, pc]).size).toBe(3);
      await w.apply({ type: 'identify', userId: 'u', anonymousId: 'a', id: 'm4', at: T + MIN });
      expect(await w.who('anonymous_id', 'a')).toBe(pu);
      await w.apply({ type: 'identify', userId: 'u', crmId: 'CRM-9', id: 'm5', at: T + 2 * MIN });
      // crm_id has the highest precedence here, so its profile survives the second merge.
      for (const id of [pa, pu, pc]) expect(await findCustomerId(t.store.db, w.ws, { id })).toBe(pc);
      expect(await w.live()).toEqual([pc]);
      const p = await w.profile(pc);
      expect(p.mergedFrom.sort()).toEqual([pa, pu].sort());
      expect(p.traits).toEqual({ tier: 'gold', owner: 'sales' });
      expect(p.computed).toMatchObject({ views: 1 });
      expect(await w.timeline(pc)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      const pointers = await t.store.db.selectFrom('customers').select(['id', 'merged_into']).where('workspace_id', '=', w.ws).where('merged_into', 'is not', null).execute();
      expect(pointers.every((r) => r.merged_into === pc)).toBe(true);
    });
  });

  describe('precedence', () => {
    it('the survivor is the profile of the highest-precedence key, not the oldest one', async () => {
      const w = workspace();
      await w.apply({ type: 'identify', anonymousId: 'a', email: 'x@example.com', traits: { first: true }, id: 'm1', at: T });
      await w.apply({ type: 'identify', userId: 'u', traits: { second: true }, id: 'm2', at: T + MIN });
      const byEmail = (await w.who('email', 'x@example.com')) as string;
      const byUser = (await w.who('user_id', 'u')) as string;
      await w.apply({ type: 'identify', userId: 'u', email: 'x@example.com', id: 'm3', at: T + 2 * MIN });
      expect(await w.live()).toEqual([byUser]);
      expect(await findCustomerId(t.store.db, w.ws, { id: byEmail })).toBe(byUser);
      expect((await w.profile(byUser)).traits).toMatchObject({ first: true, second: true });
    });

    it('follows the order the blueprint declares', async () => {
      const m = model(`identity:
  keys:
    - name: email
      authenticated: true
    - name: user_id
    - name: anonymous_id
`);
      const w = workspace(m);
      await w.apply({ type: 'identify', anonymousId: 'a', email: 'x@example.com', id: 'm1', at: T });
      await w.apply({ type: 'identify', userId: 'u', id: 'm2', at: T + MIN });
      const byEmail = (await w.who('email', 'x@example.com')) as string;
      await w.apply({ type: 'identify', userId: 'u', email: 'x@example.com', id: 'm3', at: T + 2 * MIN });
      expect(await w.live()).toEqual([byEmail]);
      expect(await w.who('user_id', 'u')).toBe(byEmail);
    });
  });

  describe('refusals', () => {
    it('an unauthenticated signal linking two profiles does not merge them and is logged', async () => {
      const w = workspace();
      await w.apply({ type: 'track', anonymousId: 'a1', event: 'Product Viewed', id: 'm1', at: T });
      await w.apply({ type: 'identify', anonymousId: 'a2', email: 'x@example.com', id: 'm2', at: T });
      const p1 = (await w.who('anonymous_id', 'a1')) as string;
      const p2 = (await w.who('email', 'x@example.com')) as string;
      // anonymousId a1 + email of p2, no user_id: email and anonymous ids are not authenticated.
      await w.apply({ type: 'identify', anonymousId: 'a1', email: 'X@example.com', traits: { city: 'Rome' }, id: 'm3', at: T + MIN });
      expect((await w.live()).sort()).toEqual([p1, p2].sort());
      expect(await w.who('anonymous_id', 'a1')).toBe(p1);
      expect(await w.who('email', 'x@example.com')).toBe(p2);
      const refused = (await w.log(p2)).filter((l) => l.outcome === 'refused_unauthenticated');
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ customerId: p2, otherId: p1, messageId: 'm3' });
      expect((await w.log(p1)).some((l) => l.outcome === 'merged')).toBe(false);
      expect(await w.timeline(p1)).toEqual(['m1']);
    });

    it('merges on the same signal when the blueprint sets merge_on_unauthenticated', async () => {
      const m = model(`identity:
  keys:
    - name: user_id
    - name: email
    - name: anonymous_id
  merge_on_unauthenticated: true
`);
      const w = workspace(m);
      await w.apply({ type: 'track', anonymousId: 'a1', event: 'Product Viewed', id: 'm1', at: T });
      await w.apply({ type: 'identify', anonymousId: 'a2', email: 'x@example.com', id: 'm2', at: T });
      const p2 = (await w.who('email', 'x@example.com')) as string;
      await w.apply({ type: 'identify', anonymousId: 'a1', email: 'x@example.com', id: 'm3', at: T + MIN });
      expect(await w.live()).toEqual([p2]);
      expect(await w.who('anonymous_id', 'a1')).toBe(p2);
      expect(await w.timeline(p2)).toEqual(['m1', 'm2', 'm3']);
      expect((await w.log(p2)).map((l) => l.outcome)).toEqual(['merged']);
    });

    it('two different user_ids never merge (unique key): refused_conflict', async () => {
      const w = workspace();
      await w.apply({ type: 'identify', userId: 'u1', anonymousId: 'a1', traits: { name: 'One' }, id: 'm1', at: T });
      await w.apply({ type: 'identify', userId: 'u2', traits: { name: 'Two' }, id: 'm2', at: T });
      const p1 = (await w.who('user_id', 'u1')) as string;
      const p2 = (await w.who('user_id', 'u2')) as string;
      await w.apply({ type: 'identify', userId: 'u2', anonymousId: 'a1', id: 'm3', at: T + MIN });
      await w.apply({ type: 'alias', userId: 'u2', previousId: 'u1', id: 'm4', at: T + 2 * MIN });
      expect((await w.live()).sort()).toEqual([p1, p2].sort());
      expect(await w.who('anonymous_id', 'a1')).toBe(p1);
      const conflicts = (await w.log(p2)).filter((l) => l.outcome === 'refused_conflict');
      expect(conflicts.map((c) => c.messageId)).toEqual(['m3', 'm4']);
      expect(conflicts.every((c) => c.otherId === p1)).toBe(true);
      expect((await w.profile(p1)).traits).toEqual({ name: 'One' });
      expect((await w.profile(p2)).traits).toEqual({ name: 'Two' });
    });

    it('a second user on a shared device does not write into the first user\'s profile', async () => {
      const w = workspace();
      await w.apply({ type: 'identify', userId: 'u1', anonymousId: 'device', email: 'one@example.com', traits: { name: 'One' }, id: 'm1', at: T });
      const p1 = (await w.who('user_id', 'u1')) as string;
      // Another person logs in on the same browser: same anonymousId, a different user_id.
      await w.apply({ type: 'identify', userId: 'u2', anonymousId: 'device', email: 'two@example.com', traits: { name: 'Two' }, id: 'm2', at: T + MIN });
      const p2 = await w.who('user_id', 'u2');
      expect(p2).toBeDefined();
      expect(p2).not.toBe(p1);
      const one = await w.profile(p1);
      expect(one.traits).toEqual({ name: 'One', email: 'one@example.com' });
      expect(one.identities.map((i) => `${i.kind}:${i.value}`)).toEqual(['user_id:u1', 'email:one@example.com', 'anonymous_id:device']);
      expect(await w.timeline(p1)).toEqual(['m1']);
      const two = await w.profile(p2);
      expect(two.traits).toEqual({ name: 'Two', email: 'two@example.com' });
      expect(await w.timeline(p2 as string)).toEqual(['m2']);
      expect((await w.log(p1)).map((l) => l.outcome)).toEqual(['refused_conflict']);
    });

    it('the identities-per-profile limit refuses new keys and merges with refused_limit', async () => {
      const m = model(`identity:
  keys:
    - name: user_id
    - name: email
    - name: anonymous_id
  max_identities_per_profile: 3
`);
      const w = workspace(m);
      await w.apply({ type: 'identify', userId: 'u1', anonymousId: 'a1', email: 'one@example.com', id: 'm1', at: T });
      const p1 = (await w.who('user_id', 'u1')) as string;
      await w.apply({ type: 'track', userId: 'u1', anonymousId: 'a2', event: 'Product Viewed', id: 'm2', at: T + MIN });
      expect(await w.who('anonymous_id', 'a2')).toBeUndefined();
      expect(await w.timeline(p1)).toEqual(['m1', 'm2']);
      expect((await w.profile(p1)).identities).toHaveLength(3);

      await w.apply({ type: 'identify', anonymousId: 'a3', email: 'three@example.com', id: 'm3', at: T + 2 * MIN });
      const p3 = (await w.who('anonymous_id', 'a3')) as string;
      await w.apply({ type: 'identify', userId: 'u1', anonymousId: 'a3', id: 'm4', at: T + 3 * MIN });
      expect((await w.live()).sort()).toEqual([p1, p3].sort());
      const limits = (await w.log(p1)).filter((l) => l.outcome === 'refused_limit');
      expect(limits.map((l) => [l.messageId, l.otherId])).toEqual([
        ['m2', null],
        ['m4', p3],
      ]);
      expect((await w.profile(p3)).identities).toHaveLength(2);
    });
  });

  describe('identity values', () => {
    it('normalizes emails and phones so different spellings are one identity', () => {
      const email = DEFAULT.identity.byName.get('email');
      const phone = DEFAULT.identity.byName.get('phone');
      expect(email && normalizeIdentity(email, '  Ana@Example.COM ')).toBe('ana@example.com');
      expect(phone && normalizeIdentity(phone, '+49 (151) 123-45')).toBe('+4915112345');
      expect(email && normalizeIdentity(email, '   ')).toBeUndefined();
      expect(parseIdentity(DEFAULT, 'email:Ana@Example.com')).toEqual({ kind: 'email', value: 'ana@example.com' });
      expect(parseIdentity(DEFAULT, 'nope:1')).toBeUndefined();
      expect(parseIdentity(DEFAULT, 'user_id:42')).toEqual({ kind: 'user_id', value: '42' });
    });
  });
});
