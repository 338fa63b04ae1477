import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { sql } from 'kysely';
import { pino } from 'pino';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { openStore, chunkRows, inChunks, insertRows, type Store } from './index.js';
import { migrations } from './migrations/index.js';
import { VirtualClock, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { upsertWorkspace, WorkspaceRegistry } from '../governance/index.js';
import { IngestPipeline, normalizeMessage } from '../ingest/index.js';
import { applyProfileEvents, extractIdentities, findCustomerId, getConsentLedger, getProfile, getTimeline, type ProfileEvent } from '../profiles/index.js';

/**
 * The storage contract: what every engine behind `openStore` must do. One suite, run against
 * SQLite and PostgreSQL; a skip would be listed here with its reason (there is none).
 */

const BLUEPRINT = `version: 1
workspace:
  name: Contract
consent:
  purposes:
    - name: marketing
computed_traits:
  - name: orders_60d
    kind: count
    event: Order Completed
    window: 60d
`;
const model = resolveModel(parseBlueprint(BLUEPRINT, 'contract.yaml').blueprint);
const T0 = Date.parse('2026-03-02T12:00:00.000Z');

/** Tables that are not tenant data: the workspace list itself and the migrator's bookkeeping. */
const NOT_TENANT_DATA = new Set(['workspaces', 'cairn_migrations', 'cairn_migrations_lock']);

const newWs = (): string => `ws_${uuidv7().slice(-12)}`;

function event(message: Record<string, unknown>, source = 'web', receivedAt = T0): ProfileEvent {
  const r = normalizeMessage(message, { model, source, receivedAt });
  if (!r.ok) throw new Error(`test message rejected: ${JSON.stringify(r.error)}`);
  return r.event;
}

/** Every row of every tenant table that belongs to one workspace, in a stable order. */
async function snapshot(store: Store, ws: string): Promise<Record<string, unknown[]>> {
  const db = store.db;
  return {
    customers: await db.selectFrom('customers').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
    identities: await db.selectFrom('identities').selectAll().where('workspace_id', '=', ws).orderBy('kind').orderBy('value').execute(),
    events: await db.selectFrom('events').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
    consent: await db.selectFrom('consent').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
    identity_log: await db.selectFrom('identity_log').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
  };
}

/** Seeds two customers with fixed ids (c1: user u1, anonymous a1; c2: anonymous a2), an event each, and a consent entry. */
async function seedFixed(store: Store, ws: string, label: string): Promise<void> {
  const customer = (id: string) => ({ workspace_id: ws, id, created_at: T0, updated_at: T0, merged_into: null, traits: JSON.stringify({ plan: { v: `${label}-${id}`, ts: T0, src: 'crm' } }), computed: '{}', first_seen: T0, last_seen: T0 });
  await store.db.insertInto('customers').values([customer('c1'), customer('c2')]).execute();
  await store.db
    .insertInto('identities')
    .values([
      { workspace_id: ws, kind: 'user_id', value: 'u1', customer_id: 'c1', created_at: T0 },
      { workspace_id: ws, kind: 'anonymous_id', value: 'a1', customer_id: 'c1', created_at: T0 },
      { workspace_id: ws, kind: 'anonymous_id', value: 'a2', customer_id: 'c2', created_at: T0 },
    ])
    .execute();
  const ev = (customer_id: string, id: string, message_id: string) => ({ workspace_id: ws, customer_id, id, source: 'web', message_id, type: 'track', name: `${label} viewed`, ts: T0, received_at: T0, payload: JSON.stringify({ label }) });
  await store.db.insertInto('events').values([ev('c1', 'e1', 'm1'), ev('c2', 'e2', 'm2')]).execute();
  await store.db
    .insertInto('consent')
    .values({ workspace_id: ws, customer_id: 'c1', id: 'k1', purpose: 'marketing', channel: 'email', status: label === 'A' ? 'granted' : 'denied', source: 'web', occurred_at: T0, wording_version: 'v1', recorded_at: T0, message_id: 'm1' })
    .execute();
}

describe('chunkRows', () => {
  it('keeps every row, in order, and never exceeds the parameter budget', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 300 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 200 }), (rows, columns, maxParameters) => {
        const chunks = chunkRows(rows, columns, maxParameters);
        expect(chunks.flat()).toEqual(rows);
        for (const c of chunks) {
          expect(c.length).toBeGreaterThan(0);
          // A single row wider than the budget still goes alone (the engine will say no, loudly).
          expect(c.length === 1 || c.length * columns <= maxParameters).toBe(true);
        }
        // Chunks are as full as allowed: all but the last hold the maximum.
        const per = Math.max(1, Math.floor(maxParameters / columns));
        chunks.slice(0, -1).forEach((c) => expect(c.length).toBe(per));
      }),
      { numRuns: 200 },
    );
  });
});

describe('inChunks', () => {
  it('keeps every value in order, pads each chunk to a power of two (or the budget) with its last value', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 300 }), fc.integer({ min: 1, max: 200 }), (values, maxParameters) => {
        const chunks = inChunks(values, maxParameters);
        const per = Math.max(1, Math.floor(maxParameters));
        const kept: number[] = [];
        values.forEach((_, i) => i % per === 0 && kept.push(i));
        expect(chunks).toHaveLength(kept.length);
        chunks.forEach((c, k) => {
          const own = values.slice(k * per, (k + 1) * per);
          expect(c.slice(0, own.length)).toEqual(own);
          expect(new Set(c.slice(own.length))).toEqual(new Set(own.length < c.length ? [own[own.length - 1]] : []));
          expect(c.length <= per).toBe(true);
          expect(c.length === per || (c.length & (c.length - 1)) === 0).toBe(true);
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe.each(ENGINES)('storage contract on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  describe('migrations', () => {
    it('apply every numbered migration on an empty database, then nothing on a second run', async () => {
      const fresh = await engine.freshUrl();
      const a = openStore(fresh.url, { sqliteSynchronous: 'NORMAL' });
      try {
        expect(await a.migrate()).toEqual(Object.keys(migrations).sort());
        expect(await a.migrate()).toEqual([]);
        // A second process opening the same database applies nothing either and sees the schema.
        const b = openStore(fresh.url, { sqliteSynchronous: 'NORMAL' });
        try {
          expect(await b.migrate()).toEqual([]);
          expect(await b.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).toEqual({ n: 0 });
        } finally {
          await b.destroy();
        }
      } finally {
        await a.destroy();
        await fresh.cleanup();
      }
    });

    it('every migration file is registered (an unregistered one is silently never applied)', async () => {
      const files = readdirSync(new URL('./migrations/', import.meta.url))
        .filter((f) => /^\d{4}_.*\.ts$/.test(f) && !f.endsWith('.test.ts'))
        .map((f) => f.replace(/\.ts$/, ''))
        .sort();
      expect(Object.keys(migrations).sort()).toEqual(files);
      // The arrival index of 0011 (journey replay, journeys/engine.ts catchUp) exists after migrate.
      const indexes =
        t.store.dialect.name === 'sqlite'
          ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and name = 'events_received'`.execute(t.store.db)
          : await sql<{ name: string }>`select indexname as name from pg_indexes where schemaname = current_schema() and indexname = 'events_received'`.execute(t.store.db);
      expect(indexes.rows.map((r) => r.name)).toEqual(['events_received']);
    });

    it('every table of tenant data carries workspace_id', async () => {
      const tables = await t.store.db.introspection.getTables();
      const names = tables.map((x) => x.name).filter((n) => !NOT_TENANT_DATA.has(n));
      // The schema is what we think it is (a new table is checked here automatically).
      expect(names).toEqual(expect.arrayContaining(['customers', 'identities', 'events', 'identity_log', 'consent', 'api_keys', 'import_checkpoints']));
      for (const table of tables) {
        if (NOT_TENANT_DATA.has(table.name)) continue;
        const col = table.columns.find((c) => c.name === 'workspace_id');
        expect(col, `${table.name}.workspace_id`).toBeDefined();
        expect(col?.isNullable, `${table.name}.workspace_id is NOT NULL`).toBe(false);
      }
    });
  });

  describe('workspace isolation', () => {
    it('rows with identical ids in two workspaces are read and written separately', async () => {
      const A = newWs();
      const B = newWs();
      await seedFixed(t.store, A, 'A');
      await seedFixed(t.store, B, 'B');

      const pa = await getProfile(t.store.db, A, model, 'c1', T0);
      const pb = await getProfile(t.store.db, B, model, 'c1', T0);
      expect(pa?.traits).toEqual({ plan: 'A-c1' });
      expect(pb?.traits).toEqual({ plan: 'B-c1' });
      expect(pa?.identities).toEqual([{ kind: 'user_id', value: 'u1' }, { kind: 'anonymous_id', value: 'a1' }]);
      expect(pa?.consent.map((c) => c.status)).toEqual(['granted']);
      expect(pb?.consent.map((c) => c.status)).toEqual(['denied']);
      expect((await getTimeline(t.store.db, A, 'c1', { limit: 10 })).items.map((e) => e.name)).toEqual(['A viewed']);
      expect((await getTimeline(t.store.db, B, 'c1', { limit: 10 })).items.map((e) => e.name)).toEqual(['B viewed']);
      expect((await getConsentLedger(t.store.db, B, 'c1')).map((c) => c.status)).toEqual(['denied']);

      // A merge in A (u1's profile absorbs a2's) moves rows in A only.
      const before = await snapshot(t.store, B);
      await t.store.transaction((trx) => applyProfileEvents(trx, t.store, A, model, [event({ type: 'identify', userId: 'u1', anonymousId: 'a2', messageId: 'm3', traits: { plan: 'merged' } })], T0 + 1000));
      expect(await findCustomerId(t.store.db, A, { id: 'c2' })).toBe('c1');
      expect(await findCustomerId(t.store.db, B, { id: 'c2' })).toBe('c2');
      expect((await getTimeline(t.store.db, A, 'c1', { limit: 10 })).items).toHaveLength(3);
      expect(await snapshot(t.store, B)).toEqual(before);
    });

    it('the same identities and messageIds sent to two workspaces make two separate customers, timelines, consent and dedupe scopes', async () => {
      const clock = new VirtualClock(T0);
      const A = newWs();
      const B = newWs();
      await upsertWorkspace(t.store.db, clock, A, BLUEPRINT, null);
      await upsertWorkspace(t.store.db, clock, B, BLUEPRINT, null);
      const pipeline = new IngestPipeline(t.store, new WorkspaceRegistry(t.store.db, clock), clock, pino({ level: 'silent' }), { maxBatch: 1000, dedupeWindowMs: 86_400_000 });
      try {
        const batch = (grant: string) => [
          event({ type: 'identify', userId: 'same-user', anonymousId: 'same-anon', messageId: 'same-1', traits: { email: 'Same@Example.com', $consent: { marketing: grant } } }),
          event({ type: 'track', userId: 'same-user', event: 'Order Completed', messageId: 'same-2' }),
        ];
        // Both submitted concurrently, so they share one group commit.
        const [ra, rb] = await Promise.all([pipeline.submit(A, batch('granted')), pipeline.submit(B, batch('denied'))]);
        expect(ra).toEqual(['accepted', 'accepted']);
        expect(rb).toEqual(['accepted', 'accepted']);
        // A messageId claimed in A is still a duplicate only within A.
        expect(await pipeline.submit(A, [event({ type: 'track', userId: 'same-user', event: 'Order Completed', messageId: 'same-2' })])).toEqual(['duplicate']);
        const C = newWs();
        await upsertWorkspace(t.store.db, clock, C, BLUEPRINT, null);
        expect(await pipeline.submit(C, [event({ type: 'track', userId: 'same-user', event: 'Order Completed', messageId: 'same-2' })])).toEqual(['accepted']);

        const ca = await findCustomerId(t.store.db, A, { kind: 'email', value: 'same@example.com' });
        const cb = await findCustomerId(t.store.db, B, { kind: 'email', value: 'same@example.com' });
        expect(ca).toBeDefined();
        expect(cb).toBeDefined();
        expect(ca).not.toBe(cb);
        // Ids from one workspace mean nothing in another.
        expect(await getProfile(t.store.db, B, model, ca as string, T0)).toBeUndefined();
        const pa = await getProfile(t.store.db, A, model, ca as string, T0);
        const pb = await getProfile(t.store.db, B, model, cb as string, T0);
        expect(pa?.consent.map((c) => c.status)).toEqual(['granted']);
        expect(pb?.consent.map((c) => c.status)).toEqual(['denied']);
        expect(pa?.computed.orders_60d).toBe(1);
        expect(pb?.computed.orders_60d).toBe(1);
        expect((await getTimeline(t.store.db, A, ca as string, { limit: 10 })).items.map((e) => e.messageId).sort()).toEqual(['same-1', 'same-2']);
        expect((await getTimeline(t.store.db, B, cb as string, { limit: 10 })).items.map((e) => e.messageId).sort()).toEqual(['same-1', 'same-2']);
        for (const ws of [A, B]) {
          const s = await snapshot(t.store, ws);
          expect(s.customers).toHaveLength(1);
          expect(s.identities).toHaveLength(3);
          expect(s.events).toHaveLength(2);
          expect(s.consent).toHaveLength(1);
        }
      } finally {
        await pipeline.close();
      }
    });
  });

  describe('transactions', () => {
    it('a transaction that throws leaves nothing behind, on every table it wrote', async () => {
      const ws = newWs();
      const boom = new Error('boom');
      await expect(
        t.store.transaction(async (trx) => {
          await trx.insertInto('customers').values({ workspace_id: ws, id: 'c1', created_at: T0, updated_at: T0, merged_into: null, traits: '{}', computed: '{}', first_seen: T0, last_seen: T0 }).execute();
          await trx.insertInto('identities').values({ workspace_id: ws, kind: 'user_id', value: 'u1', customer_id: 'c1', created_at: T0 }).execute();
          await trx.insertInto('identity_log').values({ workspace_id: ws, id: 'l1', outcome: 'merged', customer_id: 'c1', other_id: null, detail: '{}', message_id: 'm1', at: T0 }).execute();
          // Visible inside the transaction…
          expect(await trx.selectFrom('customers').select('id').where('workspace_id', '=', ws).execute()).toHaveLength(1);
          throw boom;
        }, [`ingest:${ws}`]),
      ).rejects.toBe(boom);
      // …and gone after the rollback.
      const s = await snapshot(t.store, ws);
      expect(Object.values(s).every((rows) => rows.length === 0)).toBe(true);
    });

    it('a failing statement rolls back the statements before it', async () => {
      const ws = newWs();
      const identity = { workspace_id: ws, kind: 'user_id', value: 'u1', customer_id: 'c1', created_at: T0 };
      await expect(
        t.store.transaction(async (trx) => {
          await trx.insertInto('identities').values(identity).execute();
          await trx.insertInto('identities').values(identity).execute();
        }),
      ).rejects.toThrow();
      expect(await t.store.db.selectFrom('identities').selectAll().where('workspace_id', '=', ws).execute()).toEqual([]);
      // The store is still usable afterwards (the connection went back clean).
      expect(await t.store.transaction(async (trx) => (await trx.insertInto('identities').values(identity).execute()).length)).toBe(1);
    });
  });

  describe('parameter limits', () => {
    it('one statement with the declared maximum of parameters is accepted', async () => {
      const ws = newWs();
      const per = Math.floor(t.store.dialect.capabilities.maxParameters / 5);
      const rows = Array.from({ length: per }, (_, i) => ({ workspace_id: ws, kind: 'user_id', value: `u${i}`, customer_id: 'c1', created_at: T0 + i }));
      await t.store.db.insertInto('identities').values(rows).execute();
      const n = await t.store.db.selectFrom('identities').select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', ws).executeTakeFirstOrThrow();
      expect(n.n).toBe(per);
    });

    it('a multi-row insert beyond the limit lands every row when chunked', async () => {
      const ws = newWs();
      const maxP = t.store.dialect.capabilities.maxParameters;
      const per = Math.floor(maxP / 10);
      const total = per * 2 + 7;
      const rows = Array.from({ length: total }, (_, i) => ({ workspace_id: ws, customer_id: `c${i % 13}`, id: `e${String(i).padStart(6, '0')}`, source: 'web', message_id: `m${i}`, type: 'track', name: `n${i}`, ts: T0 + i, received_at: T0, payload: '{}' }));
      const chunks = chunkRows(rows, 10, maxP);
      expect(chunks).toHaveLength(3);
      await t.store.transaction(async (trx) => {
        for (const c of chunks) await trx.insertInto('events').values(c).execute();
      });
      const back = await t.store.db.selectFrom('events').select(['id', 'name', 'ts']).where('workspace_id', '=', ws).orderBy('id').execute();
      expect(back).toHaveLength(total);
      expect(back.map((r) => r.name)).toEqual(rows.map((r) => r.name));
      expect(back.map((r) => r.ts)).toEqual(rows.map((r) => r.ts));
    });

    it('insertRows lands every row for any count (remainders go in power-of-two statements on SQLite)', async () => {
      for (const total of [0, 1, 3, 7, 199, 200, 201, 455]) {
        const ws = newWs();
        const rows = Array.from({ length: total }, (_, i) => [ws, 'user_id', `v${String(i).padStart(4, '0')}`, `c${i % 5}`, T0 + i]);
        await t.store.transaction((trx) => insertRows(trx, t.store.dialect, 'identities', ['workspace_id', 'kind', 'value', 'customer_id', 'created_at'], rows).then(() => undefined));
        const back = await t.store.db.selectFrom('identities').select(['value', 'created_at']).where('workspace_id', '=', ws).orderBy('value').execute();
        expect(back.map((r) => [r.value, Number(r.created_at)])).toEqual(rows.map((r) => [r[2], r[4]]));
      }
    });

    it('IN lists padded by inChunks find exactly the rows of the unpadded list', async () => {
      const ws = newWs();
      const rows = Array.from({ length: 40 }, (_, i) => ({ workspace_id: ws, kind: 'user_id', value: `p${i}`, customer_id: `c${i}`, created_at: T0 }));
      await t.store.db.insertInto('identities').values(rows).execute();
      const ask = ['p3', 'p17', 'p5', 'nobody', 'p39'];
      const found: string[] = [];
      for (const chunk of inChunks(ask, 4)) {
        for (const r of await t.store.db.selectFrom('identities').select('value').where('workspace_id', '=', ws).where('value', 'in', chunk).execute()) found.push(r.value);
      }
      expect(found.sort()).toEqual(['p17', 'p3', 'p39', 'p5']);
    });

    it('a profile batch larger than one statement can carry is written completely', async () => {
      const ws = newWs();
      const n = Math.floor(t.store.dialect.capabilities.maxParameters / 10) + 50;
      const events = Array.from({ length: n }, (_, i) => event({ type: 'identify', userId: `bulk-${i}`, messageId: `bulk-${i}`, traits: { n: i } }));
      await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, events, T0));
      const count = async (table: 'customers' | 'identities' | 'events') =>
        (await t.store.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', ws).executeTakeFirstOrThrow()).n;
      expect(await count('customers')).toBe(n);
      expect(await count('identities')).toBe(n);
      expect(await count('events')).toBe(n);
      // A second batch naming all of them again finds every existing profile (chunked lookups).
      const again = Array.from({ length: n }, (_, i) => event({ type: 'track', userId: `bulk-${i}`, event: 'Order Completed', messageId: `again-${i}` }));
      await t.store.transaction((trx) => applyProfileEvents(trx, t.store, ws, model, again, T0));
      expect(await count('customers')).toBe(n);
      expect(await count('events')).toBe(2 * n);
      const last = await findCustomerId(t.store.db, ws, { kind: 'user_id', value: `bulk-${n - 1}` });
      expect((await getProfile(t.store.db, ws, model, last as string, T0))?.computed.orders_60d).toBe(1);
    });
  });

  describe('types and constraints', () => {
    it('bigint times and counts come back as exact JavaScript numbers', async () => {
      const ws = newWs();
      const far = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
      const max = Number.MAX_SAFE_INTEGER;
      await t.store.db.insertInto('customers').values({ workspace_id: ws, id: 'c1', created_at: far, updated_at: max, merged_into: null, traits: '{}', computed: '{}', first_seen: 2 ** 40 + 1, last_seen: 0 }).execute();
      await t.store.db.insertInto('events').values({ workspace_id: ws, customer_id: 'c1', id: 'e1', source: 'web', message_id: 'm1', type: 'track', name: null, ts: far - 1, received_at: 2 ** 32, payload: '{}' }).execute();
      const c = await t.store.db.selectFrom('customers').select(['created_at', 'updated_at', 'first_seen', 'last_seen']).where('workspace_id', '=', ws).executeTakeFirstOrThrow();
      expect(c).toStrictEqual({ created_at: far, updated_at: max, first_seen: 2 ** 40 + 1, last_seen: 0 });
      const e = await t.store.db.selectFrom('events').select(['ts', 'received_at']).where('workspace_id', '=', ws).executeTakeFirstOrThrow();
      expect(e).toStrictEqual({ ts: far - 1, received_at: 2 ** 32 });
      const n = await t.store.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', ws).executeTakeFirstOrThrow();
      expect(n.n).toStrictEqual(1);
      // Comparisons happen in the database on the numeric value, not on text.
      const later = await t.store.db.selectFrom('events').select('id').where('workspace_id', '=', ws).where('ts', '>', 10 ** 13).execute();
      expect(later).toHaveLength(1);
    });

    it('an identity (workspace, kind, value) belongs to one customer only', async () => {
      const ws = newWs();
      const other = newWs();
      const row = (workspace_id: string, kind: string, customer_id: string) => ({ workspace_id, kind, value: 'ana@example.com', customer_id, created_at: T0 });
      await t.store.db.insertInto('identities').values(row(ws, 'email', 'c1')).execute();
      await expect(t.store.db.insertInto('identities').values(row(ws, 'email', 'c2')).execute()).rejects.toThrow();
      // Same value under another kind, or in another workspace, is a different identity.
      await t.store.db.insertInto('identities').values(row(ws, 'user_id', 'c2')).execute();
      await t.store.db.insertInto('identities').values(row(other, 'email', 'c2')).execute();
      const owners = await t.store.db.selectFrom('identities').select(['workspace_id', 'kind', 'customer_id']).where('value', '=', 'ana@example.com').where('workspace_id', 'in', [ws, other]).execute();
      expect(owners.map((o) => `${o.workspace_id === ws ? 'ws' : 'other'}/${o.kind}/${o.customer_id}`).sort()).toEqual(['other/email/c2', 'ws/email/c1', 'ws/user_id/c2']);
    });
  });
});
