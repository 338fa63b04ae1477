import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KyselyPlugin } from 'kysely';
import { VirtualClock } from '../core/index.js';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { createKey, KeyResolver } from './keys.js';
import { upsertWorkspace } from './workspaces.js';

/** KeyResolver's cache on both engines: hot keys are cached, strings of any size sent as a key are not. */
describe.each(ENGINES)('KeyResolver on $name', (engine) => {
  let ts: TestStore;
  const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
  let lookups = 0;
  const counting: KyselyPlugin = {
    transformQuery: (a) => {
      lookups++;
      return a.node;
    },
    transformResult: async (a) => a.result,
  };
  beforeAll(async () => {
    ts = await engine.open();
    await upsertWorkspace(ts.store.db, clock, 'ws_keys', 'version: 1\nworkspace:\n  name: Keys\n', 'keys.yaml');
  });
  afterAll(async () => {
    await ts?.cleanup();
  });

  it('caches a real key; never keeps an oversized string (unauthenticated memory growth)', async () => {
    const { key } = await createKey(ts.store.db, clock, 'ws_keys', 'write', 'web');
    const keys = new KeyResolver(ts.store.db.withPlugin(counting), clock);
    lookups = 0;
    expect((await keys.resolve(key))?.workspaceId).toBe('ws_keys');
    expect((await keys.resolve(key))?.workspaceId).toBe('ws_keys');
    expect(lookups).toBe(1);

    const huge = `cw_${'x'.repeat(100_000)}`;
    lookups = 0;
    expect(await keys.resolve(huge)).toBeNull();
    expect(await keys.resolve(huge)).toBeNull();
    // Looked up each time: nothing of it was kept.
    expect(lookups).toBe(2);
  });
});
