import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCairnError } from '../core/index.js';
import { ENGINES } from '../../test/helpers/stores.js';
import { openStore, type Store } from './index.js';

/**
 * SQLite has one writer per file. A second writer waits for the lock on a timer (the event loop
 * keeps running) and, after the configured wait, gets a coded, retryable 503 — not a 500.
 */
const sqlite = ENGINES.find((e) => e.name === 'sqlite');

describe.runIf(sqlite !== undefined)('SQLite write lock', () => {
  let url: string;
  let cleanup: () => Promise<void>;
  let holder: Store;
  let waiter: Store;

  beforeAll(async () => {
    const fresh = await (sqlite as NonNullable<typeof sqlite>).freshUrl();
    url = fresh.url;
    cleanup = fresh.cleanup;
    holder = openStore(url, { sqliteSynchronous: 'NORMAL' });
    await holder.migrate();
    waiter = openStore(url, { sqliteSynchronous: 'NORMAL', sqliteBusyWaitMs: 150 });
  });
  afterAll(async () => {
    await waiter?.destroy();
    await holder?.destroy();
    await cleanup?.();
  });

  it('waits without blocking, then answers CAIRN_ERR_STORAGE_BUSY (503); works again once the lock is free', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const locked = new Promise<void>((r) => (inside = r));
    const holding = holder.transaction(async (trx) => {
      await trx.insertInto('identity_log').values({ workspace_id: 'w', id: 'l1', outcome: 'merged', customer_id: 'c', other_id: null, detail: '{}', message_id: null, at: 1 }).execute();
      inside();
      await held;
    });
    await locked;

    // The event loop keeps turning while the second writer waits.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    const err = await waiter.transaction(async (trx) => trx.insertInto('identity_log').values({ workspace_id: 'w', id: 'l2', outcome: 'merged', customer_id: 'c', other_id: null, detail: '{}', message_id: null, at: 2 }).execute()).then(
      () => undefined,
      (e: unknown) => e,
    );
    clearInterval(timer);
    expect(isCairnError(err) && err.code).toBe('CAIRN_ERR_STORAGE_BUSY');
    expect(isCairnError(err) && err.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(ticks).toBeGreaterThanOrEqual(5);

    release();
    await holding;
    await waiter.transaction(async (trx) => trx.insertInto('identity_log').values({ workspace_id: 'w', id: 'l2', outcome: 'merged', customer_id: 'c', other_id: null, detail: '{}', message_id: null, at: 2 }).execute());
    const ids = (await waiter.db.selectFrom('identity_log').select('id').where('workspace_id', '=', 'w').orderBy('id').execute()).map((r) => r.id);
    expect(ids).toEqual(['l1', 'l2']);
  });
});

describe.each(ENGINES)('write gate on $name', (engine) => {
  it('queues the process\'s write transactions behind exclusive() work, first come first served (SQLite); PostgreSQL does not wait', async () => {
    const fresh = await engine.freshUrl();
    const store = openStore(fresh.url, { sqliteSynchronous: 'NORMAL' });
    try {
      await store.migrate();
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const outside = store.exclusive(async () => {
        order.push('exclusive:start');
        await held;
        order.push('exclusive:end');
      });
      const write = (id: string, durability: 'full' | 'relaxed') =>
        store.transaction(async (trx) => {
          order.push(id);
          await trx.insertInto('identity_log').values({ workspace_id: 'g', id, outcome: 'merged', customer_id: 'c', other_id: null, detail: '{}', message_id: null, at: 1 }).execute();
        }, [], { durability });
      const a = write('t1', 'full');
      const b = write('t2', 'relaxed');
      await new Promise((r) => setTimeout(r, 50));
      if (store.dialect.name === 'sqlite') expect(order).toEqual(['exclusive:start']);
      else expect(order.slice().sort()).toEqual(['exclusive:start', 't1', 't2']);
      release();
      await Promise.all([outside, a, b]);
      if (store.dialect.name === 'sqlite') expect(order).toEqual(['exclusive:start', 'exclusive:end', 't1', 't2']);
      // A failing transaction releases the gate for the next one.
      await expect(store.transaction(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      await write('t3', 'full');
      expect(order).toContain('t3');
    } finally {
      await store.destroy();
      await fresh.cleanup();
    }
  });
});
