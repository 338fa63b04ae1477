import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { basic, startTestApp, type TestApp } from '../../test/helpers/runtime.js';
import { DAY, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel, type WorkspaceModel } from '../blueprint/index.js';
import {
  applyProfileEvents,
  extractIdentities,
  findCustomerId,
  getCustomerStages,
  getSegmentMemberships,
  getStageHistory,
  recomputeComputedTraits,
  recomputeStages,
  stageSizes,
  type ProfileEvent,
} from './index.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');
// decision reads a segment (segments are evaluated first, in the same pass); the seller lifecycle
// runs alongside the default one.
const BLUEPRINT = `version: 1
workspace:
  name: Stages
segments:
  - name: cart_builders
    condition: count("Added To Cart", "7d") >= 1
stages:
  - name: need
    condition: count("Page Viewed") >= 1
  - name: research
    condition: count("Product Viewed") >= 2
  - name: decision
    condition: in_segment("cart_builders")
  - name: customer
    condition: count("Order Completed") >= 1
  - name: listing
    lifecycle: seller
    condition: count("Item Listed") >= 1
`;
const parsed = parseBlueprint(BLUEPRINT, 'stages.yaml');
const model = resolveModel(parsed.blueprint, undefined, parsed.conditions);

function track(m: WorkspaceModel, who: { userId?: string; anonymousId?: string }, event: string, id: string, ts: number): ProfileEvent {
  const message = { type: 'track', ...who, event, messageId: id, properties: {} };
  return { source: 'web', messageId: id, type: 'track', name: event, ts, receivedAt: ts, identities: extractIdentities(m, message), properties: {}, payload: JSON.stringify(message) };
}

function alias(m: WorkspaceModel, userId: string, anon: string, id: string, ts: number): ProfileEvent {
  const message = { type: 'alias', userId, previousId: anon, messageId: id };
  return { source: 'web', messageId: id, type: 'alias', name: null, ts, receivedAt: ts, identities: extractIdentities(m, message), previousId: anon, payload: JSON.stringify(message) };
}

describe('stage model', () => {
  it('keeps stages in declaration order with their lifecycle', () => {
    expect(model.stages.map((s) => [s.name, s.lifecycle])).toEqual([
      ['need', ''],
      ['research', ''],
      ['decision', ''],
      ['customer', ''],
      ['listing', 'seller'],
    ]);
  });
});

describe.each(ENGINES)('stages on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  async function stageRows(ws: string): Promise<string[]> {
    const rows = await t.store.db.selectFrom('customer_stage').select(['customer_id', 'lifecycle', 'stage']).where('workspace_id', '=', ws).orderBy('customer_id').orderBy('lifecycle').execute();
    return rows.map((r) => `${r.customer_id}:${r.lifecycle}:${r.stage}`);
  }

  it('moves a customer need → research → decision → customer as events arrive, with exact history', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    let now = NOW;
    const apply = (events: ProfileEvent[]): Promise<unknown> => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, (now += 1000)));
    const at = (k: number) => new Date(NOW + k * 1000).toISOString();
    const u = { userId: 'a' };
    await apply([track(model, u, 'Page Viewed', 'm1', NOW)]);
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    expect(await getCustomerStages(t.store.db, ws, a)).toEqual([{ lifecycle: '', stage: 'need', enteredAt: at(1) }]);
    // One product view: still need (nothing written); two: research.
    await apply([track(model, u, 'Product Viewed', 'm2', NOW)]);
    await apply([track(model, u, 'Product Viewed', 'm3', NOW)]);
    expect((await getCustomerStages(t.store.db, ws, a)).map((s) => s.stage)).toEqual(['research']);
    // decision holds through the segment decided in the same transaction.
    await apply([track(model, u, 'Added To Cart', 'm4', NOW)]);
    expect((await getSegmentMemberships(t.store.db, ws, a)).map((m) => m.segment)).toEqual(['cart_builders']);
    expect((await getCustomerStages(t.store.db, ws, a)).map((s) => s.stage)).toEqual(['decision']);
    // The order and a listing in one batch: customer, and a stage in the seller lifecycle too.
    await apply([track(model, u, 'Order Completed', 'm5', NOW), track(model, u, 'Item Listed', 'm6', NOW)]);
    expect(await getCustomerStages(t.store.db, ws, a)).toEqual([
      { lifecycle: '', stage: 'customer', enteredAt: at(5) },
      { lifecycle: 'seller', stage: 'listing', enteredAt: at(5) },
    ]);
    const history = await getStageHistory(t.store.db, ws, a);
    expect(history.filter((h) => h.lifecycle === '')).toEqual([
      { lifecycle: '', from: null, to: 'need', at: at(1) },
      { lifecycle: '', from: 'need', to: 'research', at: at(3) },
      { lifecycle: '', from: 'research', to: 'decision', at: at(4) },
      { lifecycle: '', from: 'decision', to: 'customer', at: at(5) },
    ]);
    expect(history.filter((h) => h.lifecycle === 'seller')).toEqual([{ lifecycle: 'seller', from: null, to: 'listing', at: at(5) }]);
    expect(await stageSizes(t.store.db, ws)).toEqual({ customer: 1, listing: 1 });

    // An event that changes nothing writes no history.
    await apply([track(model, u, 'Page Viewed', 'm7', NOW)]);
    expect((await getStageHistory(t.store.db, ws, a)).length).toBe(5);
  });

  it('the last listed stage whose condition holds wins; when none holds the customer leaves the stage', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    // Only the cart: decision without need or research.
    await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [track(model, { userId: 'b' }, 'Added To Cart', 'b1', NOW)], NOW));
    const b = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'b' })) as string;
    expect((await getCustomerStages(t.store.db, ws, b)).map((s) => s.stage)).toEqual(['decision']);
    // Ten days later the 7-day cart window is empty: only a recompute sees it, and no stage holds.
    const later = NOW + 10 * DAY;
    expect(await recomputeStages(t.store, ws, model, later)).toBe(1);
    expect(await getCustomerStages(t.store.db, ws, b)).toEqual([]);
    expect(await getStageHistory(t.store.db, ws, b)).toEqual([
      { lifecycle: '', from: null, to: 'decision', at: new Date(NOW).toISOString() },
      { lifecycle: '', from: 'decision', to: null, at: new Date(later).toISOString() },
    ]);
  });

  it('a profile merged away leaves its stages; the survivor is staged on the union', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    let now = NOW;
    const apply = (events: ProfileEvent[]): Promise<unknown> => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, (now += 1000)));
    const anon = { anonymousId: 'x1' };
    await apply([track(model, anon, 'Page Viewed', 'm1', NOW), track(model, anon, 'Product Viewed', 'm2', NOW), track(model, anon, 'Product Viewed', 'm3', NOW)]);
    const x = (await findCustomerId(t.store.db, ws, { kind: 'anonymous_id', value: 'x1' })) as string;
    await apply([track(model, { userId: 'u' }, 'Item Listed', 'm4', NOW)]);
    const u = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })) as string;
    expect(await stageRows(ws)).toEqual([`${x}::research`, `${u}:seller:listing`].sort());
    await apply([alias(model, 'u', 'x1', 'm5', NOW)]);
    const survivor = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'u' })) as string;
    const gone = survivor === u ? x : u;
    expect(await findCustomerId(t.store.db, ws, { kind: 'anonymous_id', value: 'x1' })).toBe(survivor);
    expect(await stageRows(ws)).toEqual([`${survivor}::research`, `${survivor}:seller:listing`]);
    const goneHistory = await getStageHistory(t.store.db, ws, gone);
    expect(goneHistory.at(-1)?.to).toBeNull();
    expect(goneHistory.filter((h) => h.to === null).length).toBe(1);
    expect((await getStageHistory(t.store.db, ws, survivor)).filter((h) => h.at === new Date(NOW + 3000).toISOString()).map((h) => [h.lifecycle, h.from, h.to])).toEqual(
      survivor === u ? [['', null, 'research']] : [['seller', null, 'listing']],
    );
    // The recompute agrees and changes nothing.
    const before = (await t.store.db.selectFrom('stage_history').select('id').where('workspace_id', '=', ws).execute()).length;
    await recomputeStages(t.store, ws, model, now);
    expect(await stageRows(ws)).toEqual([`${survivor}::research`, `${survivor}:seller:listing`]);
    expect((await t.store.db.selectFrom('stage_history').select('id').where('workspace_id', '=', ws).execute()).length).toBe(before);
  });

  it('stage() in a segment reads the stored stage from before the batch', async () => {
    const yaml = `version: 1
workspace:
  name: StageReaders
segments:
  - name: deciding
    condition: stage() == "decision"
stages:
  - name: need
    condition: count("Page Viewed") >= 1
  - name: decision
    condition: count("Added To Cart") >= 1
`;
    const bp = parseBlueprint(yaml, 'stage-readers.yaml');
    const m = resolveModel(bp.blueprint, undefined, bp.conditions);
    const ws = `ws_${uuidv7().slice(-12)}`;
    const apply = (events: ProfileEvent[]): Promise<unknown> => t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, m, events, NOW));
    await apply([track(m, { userId: 'c' }, 'Added To Cart', 'c1', NOW)]);
    const c = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'c' })) as string;
    expect((await getCustomerStages(t.store.db, ws, c)).map((s) => s.stage)).toEqual(['decision']);
    expect(await getSegmentMemberships(t.store.db, ws, c)).toEqual([]);
    await apply([track(m, { userId: 'c' }, 'Page Viewed', 'c2', NOW)]);
    expect((await getSegmentMemberships(t.store.db, ws, c)).map((s) => s.segment)).toEqual(['deciding']);
  });

  it('incremental stages equal a bulk recompute after random batches', async () => {
    const eventArb = fc.record({
      user: fc.constantFrom('a', 'b', 'c'),
      anon: fc.option(fc.constantFrom('x1', 'x2'), { nil: undefined }),
      event: fc.constantFrom('Page Viewed', 'Product Viewed', 'Added To Cart', 'Order Completed', 'Item Listed'),
      ageDays: fc.integer({ min: 0, max: 12 }),
      alias: fc.boolean(),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(eventArb, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }), async (batches) => {
        const ws = `ws_${uuidv7().slice(-12)}`;
        for (const batch of batches) {
          const events = batch.map((e) => {
            const id = `m${n++}`;
            const ts = NOW - e.ageDays * DAY;
            if (e.anon !== undefined && e.alias) return alias(model, e.user, e.anon, id, ts);
            return track(model, e.anon !== undefined ? { anonymousId: e.anon } : { userId: e.user }, e.event, id, ts);
          });
          await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, NOW));
        }
        const incremental = await stageRows(ws);
        const historyBefore = (await t.store.db.selectFrom('stage_history').select('id').where('workspace_id', '=', ws).execute()).length;
        await recomputeComputedTraits(t.store, ws, model, NOW);
        await recomputeStages(t.store, ws, model, NOW);
        expect(await stageRows(ws)).toEqual(incremental);
        expect((await t.store.db.selectFrom('stage_history').select('id').where('workspace_id', '=', ws).execute()).length).toBe(historyBefore);
      }),
      { numRuns: 12 },
    );
  }, 60_000);
});

describe.each(ENGINES)('stages over HTTP on $name', (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(engine, { blueprint: BLUEPRINT });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the profile shows its current stages; GET /v1/stages lists sizes in journey order', async () => {
    const post = (body: unknown) => t.app.inject({ method: 'POST', url: '/v1/track', headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const get = (url: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.secretKey}` } });
    expect((await post({ userId: 'h1', event: 'Page Viewed', messageId: 'h1-0' })).statusCode).toBe(200);
    expect((await post({ userId: 'h1', event: 'Order Completed', messageId: 'h1-1' })).statusCode).toBe(200);
    expect((await post({ userId: 'h2', event: 'Page Viewed', messageId: 'h2-0' })).statusCode).toBe(200);
    const profile = (await get('/v1/profiles/user_id:h1')).json() as { stages: unknown };
    expect(profile.stages).toEqual([{ lifecycle: '', stage: 'customer', enteredAt: new Date(t.clock.now()).toISOString() }]);
    const sizes = await get('/v1/stages');
    expect(sizes.statusCode).toBe(200);
    expect(sizes.json()).toEqual({
      items: [
        { name: 'need', lifecycle: '', size: 1 },
        { name: 'research', lifecycle: '', size: 0 },
        { name: 'decision', lifecycle: '', size: 0 },
        { name: 'customer', lifecycle: '', size: 1 },
        { name: 'listing', lifecycle: 'seller', size: 0 },
      ],
    });
  });
});
