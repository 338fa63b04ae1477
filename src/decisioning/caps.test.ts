import { describe, expect, it } from 'vitest';
import { ProfileUseCache, type ProfileUse } from './caps.js';

const use = (at: number): ProfileUse => ({ offer: 'o', placement: 'p', kind: 'decision', at });
const K = ProfileUseCache.key('ws', 'c1');

describe('ProfileUseCache', () => {
  it('serves what a committed transaction stored and added, from its since on', () => {
    const c = new ProfileUseCache();
    const t1 = c.begin(7);
    c.set(K, 100, [use(150)]);
    c.add(K, use(200));
    c.end(t1);
    const t2 = c.begin(7);
    expect(c.get(K, 100)).toEqual([use(150), use(200)]);
    expect(c.get(K, 120)).toHaveLength(2);
    // Older than what was read: not known, so not served.
    expect(c.get(K, 99)).toBeUndefined();
    c.end(t2);
  });

  it('forgets everything when another connection committed (the stamp moved)', () => {
    const c = new ProfileUseCache();
    const t1 = c.begin(7);
    c.set(K, 0, [use(1)]);
    c.end(t1);
    c.begin(8);
    expect(c.get(K, 0)).toBeUndefined();
  });

  it('forgets everything after a transaction that did not commit', () => {
    const c = new ProfileUseCache();
    const t1 = c.begin(7);
    c.set(K, 0, [use(1)]);
    c.end(t1);
    c.begin(7);
    c.add(K, use(2)); // rolled back: end() never called
    c.begin(7);
    expect(c.get(K, 0)).toBeUndefined();
  });

  it('a transaction that began after another does not let the older one mark the cache clean', () => {
    const c = new ProfileUseCache();
    const a = c.begin(7);
    const b = c.begin(7);
    c.set(K, 0, [use(1)]);
    c.end(a); // late: b is the current one
    c.begin(7);
    expect(c.get(K, 0)).toBeUndefined();
    void b;
  });

  it('is off without a stamp (PostgreSQL)', () => {
    const c = new ProfileUseCache();
    expect(c.begin(undefined)).toBeUndefined();
    c.set(K, 0, [use(1)]);
    c.end(undefined);
    c.begin(undefined);
    expect(c.get(K, 0)).toBeUndefined();
  });

  it('is shared by everything deciding on one store', () => {
    const store = {};
    expect(ProfileUseCache.of(store)).toBe(ProfileUseCache.of(store));
    expect(ProfileUseCache.of({})).not.toBe(ProfileUseCache.of(store));
  });
});
