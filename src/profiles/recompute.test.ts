import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { DAY, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { applyProfileEvents, extractIdentities, findCustomerId, getProfile, profileLockKey, recomputeComputedTraits, type ProfileEvent } from './index.js';
import { ORDER_TRAITS } from '../../test/helpers/runtime.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');
const BLUEPRINT = `version: 1
workspace:
  name: Recompute
computed_traits:
${ORDER_TRAITS}`;
const model = resolveModel(parseBlueprint(BLUEPRINT, 'recompute.yaml').blueprint);

function order(userId: string, id: string, ts: number, revenue: number): ProfileEvent {
  const message = { type: 'track', userId, event: 'Order Completed', messageId: id, properties: { revenue } };
  return { source: 'web', messageId: id, type: 'track', name: 'Order Completed', ts, receivedAt: ts, identities: extractIdentities(model, message), properties: message.properties, payload: JSON.stringify(message) };
}

describe.each(ENGINES)('recomputeComputedTraits on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('rebuilds from the timeline after a definition change, for one customer or the whole workspace', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [order('a', 'm1', NOW - DAY, 10), order('a', 'm2', NOW - 70 * DAY, 5), order('b', 'm3', NOW, 7.25)], NOW));
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;
    const b = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'b' })) as string;
    // A definition that did not exist when the events came in: only a recompute can fill it.
    const wider = resolveModel(parseBlueprint(BLUEPRINT.replaceAll('window: 60d', 'window: 90d'), 'recompute.yaml').blueprint);
    expect((await getProfile(t.store.db, ws, wider, a, NOW))?.computed).toEqual({ orders_60d: 1, revenue_60d: 10 });

    expect(await recomputeComputedTraits(t.store, ws, wider, NOW, { customerId: a })).toBe(1);
    expect((await getProfile(t.store.db, ws, wider, a, NOW))?.computed).toEqual({ orders_60d: 2, revenue_60d: 15 });
    const progress: number[] = [];
    expect(await recomputeComputedTraits(t.store, ws, wider, NOW, { onProgress: (n) => progress.push(n) })).toBe(2);
    expect(progress.at(-1)).toBe(2);
    expect((await getProfile(t.store.db, ws, wider, b, NOW))?.computed).toEqual({ orders_60d: 1, revenue_60d: 7.25 });
  });

  // SQLite has a single writer connection, so a recompute cannot overlap an ingest commit there by
  // construction; on PostgreSQL the two meet on the workspace's advisory lock, which this checks.
  it.skipIf(engine.name === 'sqlite')('waits for an ingest commit in flight instead of overwriting it', async () => {
    const ws = `ws_${uuidv7().slice(-12)}`;
    await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, [order('a', 'm1', NOW, 10)], NOW));
    const a = (await findCustomerId(t.store.db, ws, { kind: 'user_id', value: 'a' })) as string;

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const holding = new Promise<void>((r) => (locked = r));
    // An ingest commit that has taken the workspace lock and is writing a second order.
    const ingest = t.store.transaction(async (trx) => {
      await applyProfileEvents(trx, t.store, ws, model, [order('a', 'm2', NOW, 5)], NOW);
      locked();
      await gate;
    }, [profileLockKey(ws)]);
    await holding;

    let finished = false;
    const recompute = recomputeComputedTraits(t.store, ws, model, NOW).then((n) => {
      finished = true;
      return n;
    });
    // Until the recompute is seen waiting on a lock (or has finished).
    for (;;) {
      const waiting = await sql<{ n: number }>`select count(*)::int as n from pg_locks where not granted`.execute(t.store.db);
      if (finished || (waiting.rows[0]?.n ?? 0) > 0) break;
    }
    expect(finished).toBe(false);
    release();
    await ingest;
    expect(await recompute).toBe(1);
    expect((await getProfile(t.store.db, ws, model, a, NOW))?.computed).toEqual({ orders_60d: 2, revenue_60d: 15 });
  });
});
