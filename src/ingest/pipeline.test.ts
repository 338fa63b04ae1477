import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pino } from 'pino';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { DAY, VirtualClock, uuidv7 } from '../core/index.js';
import { parseBlueprint, resolveModel } from '../blueprint/index.js';
import { upsertWorkspace, WorkspaceRegistry } from '../governance/index.js';
import { openStore } from '../store/index.js';
import type { ProfileEvent } from '../profiles/index.js';
import { IngestPipeline, type IngestEvents } from './pipeline.js';
import { normalizeMessage } from './segment.js';

const BLUEPRINT = `version: 1
workspace:
  name: Pipeline
`;
const model = resolveModel(parseBlueprint(BLUEPRINT, 'pipeline.yaml').blueprint);
const WINDOW = 7 * DAY;
const T0 = Date.parse('2026-05-04T08:00:00.000Z');

function track(userId: string, messageId: string, source = 'web', receivedAt = T0): ProfileEvent {
  const r = normalizeMessage({ type: 'track', userId, event: 'Product Viewed', messageId }, { model, source, receivedAt });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.event;
}

describe.each(ENGINES)('IngestPipeline on $name', (engine) => {
  let t: TestStore;
  let clock: VirtualClock;
  const open: IngestPipeline[] = [];

  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });
  afterEach(async () => {
    // A pipeline left with queued work would be a leak; close() also proves it drains.
    for (const p of open.splice(0)) {
      await p.close();
      expect(p.depth).toBe(0);
    }
  });

  /** A fresh workspace and a pipeline on it; commits and failures are recorded as they happen. */
  async function setup(opts: { maxBatch?: number; store?: TestStore } = {}) {
    clock = new VirtualClock(T0);
    const ws = `ws_${uuidv7().slice(-12)}`;
    const store = opts.store ?? t;
    await upsertWorkspace(store.store.db, clock, ws, BLUEPRINT, null);
    const pipeline = new IngestPipeline(store.store, new WorkspaceRegistry(store.store.db, clock), clock, pino({ level: 'silent' }), { maxBatch: opts.maxBatch ?? 1000, dedupeWindowMs: WINDOW });
    open.push(pipeline);
    const commits: IngestEvents['ingest:committed'][] = [];
    const failures: IngestEvents['ingest:failed'][] = [];
    const committedIds = new Set<string>();
    pipeline.events.on('ingest:committed', (c) => {
      commits.push(c);
      for (const p of c.unit.events) committedIds.add(`${c.workspaceId}/${p.event.messageId}`);
    });
    pipeline.events.on('ingest:failed', (f) => failures.push(f));
    return { ws, pipeline, commits, failures, committedIds };
  }

  async function stored(ws: string): Promise<string[]> {
    const rows = await t.store.db.selectFrom('events').select('message_id').where('workspace_id', '=', ws).execute();
    return rows.map((r) => r.message_id).sort();
  }
  async function count(ws: string, table: 'events' | 'customers'): Promise<number> {
    const r = await t.store.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).where('workspace_id', '=', ws).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  describe('group commit', () => {
    it('200 concurrent submits all land and share far fewer transactions than calls', async () => {
      const { ws, pipeline, commits } = await setup();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => pipeline.submit(ws, [track(`u${i % 37}`, `m${i}`)])));
      expect(results.every((r) => r.length === 1 && r[0] === 'accepted')).toBe(true);
      expect(await count(ws, 'events')).toBe(200);
      expect(await count(ws, 'customers')).toBe(37);
      expect(commits.length).toBeGreaterThan(0);
      expect(commits.length).toBeLessThanOrEqual(10);
      expect(commits.reduce((a, c) => a + c.accepted, 0)).toBe(200);
    });

    it('never puts more than maxBatch events in one transaction, yet keeps a large request whole', async () => {
      const { ws, pipeline, commits } = await setup({ maxBatch: 50 });
      const small = Array.from({ length: 200 }, (_, i) => pipeline.submit(ws, [track(`u${i}`, `m${i}`)]));
      const big = pipeline.submit(ws, Array.from({ length: 120 }, (_, i) => track(`b${i}`, `big${i}`)));
      await Promise.all([...small, big]);
      expect(await count(ws, 'events')).toBe(320);
      // 200 singles in commits of at most 50, then the oversize request alone.
      expect(commits.slice(0, -1).every((c) => c.accepted <= 50)).toBe(true);
      expect(commits.length).toBeGreaterThanOrEqual(5);
      expect(commits.length).toBeLessThan(40);
      expect(commits.at(-1)?.accepted).toBe(120);
    });

    it('acknowledges only what is committed, and commits only what it acknowledges', async () => {
      const { ws, pipeline, committedIds } = await setup({ maxBatch: 25 });
      const acked: string[] = [];
      const checks = Array.from({ length: 120 }, (_, i) => {
        const ids = [`a${i}`, `b${i}`];
        return pipeline.submit(ws, ids.map((id) => track(`u${i % 11}`, id))).then((outcomes) => {
          expect(outcomes).toEqual(['accepted', 'accepted']);
          // At the moment of the acknowledgement the commit has already happened.
          for (const id of ids) expect(committedIds.has(`${ws}/${id}`)).toBe(true);
          acked.push(...ids);
        });
      });
      await Promise.all(checks);
      expect(await stored(ws)).toEqual(acked.sort());
      // And it is really in the database, readable from a fresh query.
      expect(await count(ws, 'events')).toBe(240);
    });

    it('resolves an empty submit at once with no outcomes', async () => {
      const { ws, pipeline, commits } = await setup();
      expect(await pipeline.submit(ws, [])).toEqual([]);
      expect(commits).toHaveLength(0);
    });
  });

  describe('deduplication by messageId', () => {
    it('reports duplicates within one request, across concurrent requests and across batches, and stores each once', async () => {
      const { ws, pipeline } = await setup();
      expect(await pipeline.submit(ws, [track('u1', 'd1'), track('u1', 'd1'), track('u2', 'd2'), track('u1', 'd1')])).toEqual(['accepted', 'duplicate', 'accepted', 'duplicate']);
      // Two requests in the same group commit carrying the same messageId: the first one wins.
      const [x, y] = await Promise.all([pipeline.submit(ws, [track('u3', 'd3')]), pipeline.submit(ws, [track('u3', 'd3'), track('u4', 'd4')])]);
      expect(x).toEqual(['accepted']);
      expect(y).toEqual(['duplicate', 'accepted']);
      // Later retries are duplicates; a messageId is deduplicated per source.
      clock.advance(DAY);
      expect(await pipeline.submit(ws, [track('u1', 'd1'), track('u1', 'd1', 'ios')])).toEqual(['duplicate', 'accepted']);
      expect(await stored(ws)).toEqual(['d1', 'd1', 'd2', 'd3', 'd4']);
      const sources = await t.store.db.selectFrom('events').select(['source']).where('workspace_id', '=', ws).where('message_id', '=', 'd1').orderBy('source').execute();
      expect(sources.map((s) => s.source)).toEqual(['ios', 'web']);
    });

    it('reclaims a messageId once the window has passed since the stored event was received', async () => {
      const { ws, pipeline } = await setup();
      expect(await pipeline.submit(ws, [track('u1', 'w1', 'web', clock.now())])).toEqual(['accepted']);
      clock.advance(WINDOW - 1);
      // A retry inside the window is a duplicate and does not extend the window.
      expect(await pipeline.submit(ws, [track('u1', 'w1', 'web', clock.now())])).toEqual(['duplicate']);
      clock.advance(1);
      expect(await pipeline.submit(ws, [track('u1', 'w1', 'web', clock.now())])).toEqual(['duplicate']);
      clock.advance(1);
      expect(await pipeline.submit(ws, [track('u1', 'w1', 'web', clock.now())])).toEqual(['accepted']);
      // The event stored again starts a new window.
      clock.advance(WINDOW);
      expect(await pipeline.submit(ws, [track('u1', 'w1', 'web', clock.now())])).toEqual(['duplicate']);
      expect(await stored(ws)).toEqual(['w1', 'w1']);
    });
  });

  describe('several processes', () => {
    it('two pipelines on one database accept each messageId once and make one profile per person', async () => {
      const { ws, pipeline } = await setup();
      // A second process: its own connection(s), registry and pipeline on the same database.
      const other = openStore(t.url, { sqliteSynchronous: 'NORMAL' });
      try {
        const second = new IngestPipeline(other, new WorkspaceRegistry(other.db, clock), clock, pino({ level: 'silent' }), { maxBatch: 7, dedupeWindowMs: WINDOW });
        open.push(second);
        // Both receive the same retried requests for the same new customers, interleaved.
        const requests = Array.from({ length: 30 }, (_, i) => [track(`new-${i % 6}`, `x${i}`), track(`new-${(i + 1) % 6}`, `y${i}`)]);
        const results = await Promise.all(requests.flatMap((events) => [pipeline.submit(ws, events), second.submit(ws, events)]));
        const outcomes = results.flat();
        expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(60);
        expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(60);
        expect(await stored(ws)).toEqual(requests.flat().map((e) => e.messageId).sort());
        expect(await count(ws, 'customers')).toBe(6);
      } finally {
        for (const p of open.splice(0)) await p.close();
        await other.destroy();
      }
    });
  });

  describe('shutdown and failure', () => {
    it('close() drains everything queued, then refuses new work with a code', async () => {
      const { ws, pipeline, commits } = await setup({ maxBatch: 7 });
      let settled = 0;
      const pending = Array.from({ length: 60 }, (_, i) =>
        pipeline.submit(ws, [track(`u${i}`, `c${i}`)]).then((r) => {
          settled++;
          return r;
        }),
      );
      expect(pipeline.depth).toBe(60);
      await pipeline.close();
      expect(settled).toBe(60);
      expect(pipeline.depth).toBe(0);
      expect(commits.length).toBeGreaterThanOrEqual(9);
      expect((await Promise.all(pending)).flat().every((o) => o === 'accepted')).toBe(true);
      expect(await count(ws, 'events')).toBe(60);
      await expect(pipeline.submit(ws, [track('u1', 'late')])).rejects.toMatchObject({ code: 'CAIRN_ERR_SHUTTING_DOWN' });
      expect(await stored(ws)).not.toContain('late');
    });

    it('a poison request fails only itself; the others in its group commit succeed', async () => {
      const { ws, pipeline, commits, failures } = await setup();
      const good1 = pipeline.submit(ws, [track('u1', 'g1'), track('u2', 'g2')]);
      const poison = pipeline.submit('ws_does_not_exist', [track('u1', 'g1'), track('u9', 'x1')]);
      const good2 = pipeline.submit(ws, [track('u3', 'g3'), track('u1', 'g1')]);
      const [r1, rp, r2] = await Promise.allSettled([good1, poison, good2]);
      expect(r1).toEqual({ status: 'fulfilled', value: ['accepted', 'accepted'] });
      expect(r2).toEqual({ status: 'fulfilled', value: ['accepted', 'duplicate'] });
      expect(rp.status).toBe('rejected');
      expect((rp as PromiseRejectedResult).reason).toMatchObject({ code: 'CAIRN_ERR_WORKSPACE_NOT_FOUND' });
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ requests: 1, events: 2 });
      expect(await stored(ws)).toEqual(['g1', 'g2', 'g3']);
      expect(await count('ws_does_not_exist', 'events')).toBe(0);
      expect(commits.every((c) => c.workspaceId === ws)).toBe(true);
      // The pipeline keeps working afterwards.
      expect(await pipeline.submit(ws, [track('u4', 'g4')])).toEqual(['accepted']);
    });

    it('a request that fails inside the transaction rolls back its group and fails only itself', async () => {
      const { ws, pipeline, commits, failures } = await setup();
      // Corrupt data for one customer only: an identity pointing at a profile row that is gone.
      // Writing to it violates the identities unique key inside the transaction.
      await t.store.db.insertInto('identities').values({ workspace_id: ws, kind: 'user_id', value: 'dangling', customer_id: 'gone', created_at: T0 }).execute();
      const good1 = pipeline.submit(ws, [track('u1', 'q1')]);
      const poison = pipeline.submit(ws, [track('u5', 'q5'), track('dangling', 'q6')]);
      const good2 = pipeline.submit(ws, [track('u2', 'q2'), track('u1', 'q3')]);
      const [r1, rp, r2] = await Promise.allSettled([good1, poison, good2]);
      expect(r1).toEqual({ status: 'fulfilled', value: ['accepted'] });
      expect(r2).toEqual({ status: 'fulfilled', value: ['accepted', 'accepted'] });
      expect(rp.status).toBe('rejected');
      expect(failures).toMatchObject([{ requests: 1, events: 2 }]);
      // Nothing of the failed request is kept — not even its innocent first event or its claims,
      // so a retry with the same messageIds is not mistaken for a duplicate.
      expect(await stored(ws)).toEqual(['q1', 'q2', 'q3']);
      expect(commits.reduce((a, c) => a + c.accepted, 0)).toBe(3);
      // Once the data is repaired, the retry goes through.
      await t.store.db.deleteFrom('identities').where('workspace_id', '=', ws).where('value', '=', 'dangling').execute();
      expect(await pipeline.submit(ws, [track('u5', 'q5'), track('dangling', 'q6')])).toEqual(['accepted', 'accepted']);
    });
  });
});
