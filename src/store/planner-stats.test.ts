import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { analyzeGrownTables } from './index.js';

/**
 * Planner statistics on PostgreSQL: a hot table that doubled since the planner last counted it is
 * analyzed (its reltuples catch up); one that did not is left alone. SQLite has nothing to do.
 */
describe.each(ENGINES)('analyzeGrownTables on $name', (engine) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await engine.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const known = async (table: string): Promise<number> =>
    Number((await sql<{ n: number }>`select reltuples::float8 as n from pg_class where relname = ${table} and relnamespace = current_schema()::regnamespace`.execute(t.store.db)).rows[0]?.n);

  it('analyzes the hot tables that doubled, once', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({ workspace_id: 'w', kind: 'user_id', value: `u${i}`, customer_id: `c${i}`, created_at: 1 }));
    for (let i = 0; i < rows.length; i += 1000) await t.store.db.insertInto('identities').values(rows.slice(i, i + 1000)).execute();
    if (t.store.dialect.name !== 'postgres') {
      expect(await analyzeGrownTables(t.store)).toEqual([]);
      return;
    }
    expect(await known('identities')).toBeLessThan(1);
    // The cumulative statistics reach pg_stat_user_tables within about a second of the commit.
    let analyzed: string[] = [];
    for (let i = 0; i < 50 && !analyzed.includes('identities'); i++) {
      analyzed = await analyzeGrownTables(t.store);
      if (!analyzed.includes('identities')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(analyzed).toContain('identities');
    expect(await known('identities')).toBe(3000);
    // Not doubled since: left alone.
    expect(await analyzeGrownTables(t.store)).not.toContain('identities');
  });
});
