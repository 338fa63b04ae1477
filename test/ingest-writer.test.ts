import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/process.js';
import { MINIMAL_BLUEPRINT } from './helpers/runtime.js';

/**
 * The SQLite writer thread (src/ingest/writer.ts) runs compiled code, so this test loads dist/:
 * the same groups give the same outcomes and rows as the inline writer, errors come back with
 * their codes, and transactions of the request thread's own connection interleave with the
 * thread's commits without SQLITE_BUSY.
 */
type Dist = {
  ingest: typeof import('../src/ingest/index.js');
  store: typeof import('../src/store/index.js');
  governance: typeof import('../src/governance/index.js');
  blueprint: typeof import('../src/blueprint/index.js');
  core: typeof import('../src/core/index.js');
};

const load = async (): Promise<Dist> => {
  const d = (p: string) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
  return { ingest: await d('ingest/index.js'), store: await d('store/index.js'), governance: await d('governance/index.js'), blueprint: await d('blueprint/index.js'), core: await d('core/index.js') };
};

describe('ingest writer thread', () => {
  let dist: Dist;
  let dir: string;
  const T0 = Date.parse('2026-11-23T10:00:00.000Z');

  beforeAll(async () => {
    await ensureBuilt();
    dist = await load();
    dir = mkdtempSync(join(tmpdir(), 'cairn-writer-'));
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function setup(name: string) {
    const url = join(dir, `${name}.db`);
    const store = dist.store.openStore(url, { sqliteSynchronous: 'NORMAL' });
    await store.migrate();
    const clock = new dist.core.VirtualClock(T0);
    await dist.governance.upsertWorkspace(store.db, clock, 'ws', MINIMAL_BLUEPRINT, null);
    const model = dist.blueprint.resolveModel(dist.blueprint.parseBlueprint(MINIMAL_BLUEPRINT, 't.yaml').blueprint);
    const track = (userId: string, messageId: string, n = 1) => {
      const r = dist.ingest.normalizeMessage({ type: 'track', userId, event: 'Order Completed', messageId, properties: { revenue: n } }, { model, source: 'web', receivedAt: T0 });
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      return r.event;
    };
    return { url, store, track };
  }

  it('commits like the inline writer: outcomes, duplicates, rows and the committed summary', async () => {
    const a = await setup('a');
    const b = await setup('b');
    const thread = new dist.ingest.ThreadCommitter({ databaseUrl: b.url, sqliteSynchronous: 'NORMAL', dedupeWindowMs: 7 * 86_400_000 });
    const inline = dist.ingest.inlineCommitter(a.store, new dist.governance.WorkspaceRegistry(a.store.db, new dist.core.VirtualClock(T0)), 7 * 86_400_000);
    try {
      const groups = [
        [{ workspaceId: 'ws', events: [a.track('u1', 'm1'), a.track('u1', 'm1'), a.track('u2', 'm2')] }, { workspaceId: 'ws', events: [a.track('u2', 'm2', 5)] }],
        [{ workspaceId: 'ws', events: [a.track('u1', 'm1'), a.track('u3', 'm3', 7)] }],
      ];
      for (const take of groups) {
        const x = await inline.commit(take, T0);
        const y = await thread.commit(take, T0);
        expect(y.outcomes).toEqual(x.outcomes);
        expect(y.committed.map((c) => [c.accepted, c.duplicates, c.unit.events.map((e) => e.event.messageId)])).toEqual(x.committed.map((c) => [c.accepted, c.duplicates, c.unit.events.map((e) => e.event.messageId)]));
      }
      const rows = async (s: typeof a.store) => (await s.db.selectFrom('events').select(['message_id']).orderBy('message_id').execute()).map((r) => r.message_id);
      expect(await rows(b.store)).toEqual(['m1', 'm2', 'm3']);
      expect(await rows(b.store)).toEqual(await rows(a.store));
      const computed = async (s: typeof a.store) => (await s.db.selectFrom('customers').select(['computed']).execute()).map((r) => JSON.parse(r.computed)).length;
      expect(await computed(b.store)).toBe(3);
    } finally {
      await thread.close();
      await a.store.destroy();
      await b.store.destroy();
    }
  });

  it('returns errors with their catalogue code and keeps working', async () => {
    const s = await setup('errors');
    const thread = new dist.ingest.ThreadCommitter({ databaseUrl: s.url, sqliteSynchronous: 'NORMAL', dedupeWindowMs: 86_400_000 });
    try {
      await expect(thread.commit([{ workspaceId: 'nope', events: [s.track('u1', 'x1')] }], T0)).rejects.toMatchObject({ code: 'CAIRN_ERR_WORKSPACE_NOT_FOUND' });
      expect((await thread.commit([{ workspaceId: 'ws', events: [s.track('u1', 'x1')] }], T0)).outcomes).toEqual([['accepted']]);
    } finally {
      await thread.close();
      await s.store.destroy();
    }
  });

  it('interleaves with transactions on the request thread connection without SQLITE_BUSY', async () => {
    const s = await setup('busy');
    const thread = new dist.ingest.ThreadCommitter({ databaseUrl: s.url, sqliteSynchronous: 'NORMAL', dedupeWindowMs: 86_400_000 });
    try {
      const commits = Array.from({ length: 20 }, (_, i) => thread.commit([{ workspaceId: 'ws', events: Array.from({ length: 200 }, (_, j) => s.track(`u${j % 37}`, `b${i}-${j}`)) }], T0));
      const local = Array.from({ length: 20 }, (_, i) =>
        s.store.transaction(async (trx) => {
          await trx.insertInto('identity_log').values({ workspace_id: 'ws', id: `l${i}`, outcome: 'merged', customer_id: 'c', other_id: null, detail: '{}', message_id: null, at: T0 }).execute();
        }),
      );
      const results = await Promise.allSettled([...commits, ...local]);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const n = await s.store.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expect(Number(n.n)).toBe(4000);
      const logs = await s.store.db.selectFrom('identity_log').select('id').execute();
      expect(logs).toHaveLength(20);
    } finally {
      await thread.close();
      await s.store.destroy();
    }
  });
});
