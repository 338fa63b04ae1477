import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ENGINES, type TestStore } from '../../test/helpers/stores.js';
import { MERGE_RULES, moveMergedRows, type CustomerTable } from './merge.js';

/**
 * What a merge does with each per-customer table (MERGE_RULES), on the migrated schema of both
 * engines: every table with a customer_id column has a rule, rows of `all` tables move, rows of
 * `none` tables stay, and the rules of messages and journey instances hold row by row.
 */

interface Column {
  name: string;
  type: string;
  notNull: boolean;
}

async function columnsOf(t: TestStore, table: string): Promise<Column[]> {
  if (t.name === 'sqlite') {
    const rows = await sql<{ name: string; type: string; notnull: number }>`select name, type, "notnull" from pragma_table_info(${table})`.execute(t.store.db);
    return rows.rows.map((r) => ({ name: r.name, type: r.type.toLowerCase(), notNull: r.notnull === 1 }));
  }
  const rows = await sql<{ name: string; type: string; nullable: string }>`select column_name as name, data_type as type, is_nullable as nullable from information_schema.columns where table_schema = current_schema() and table_name = ${table}`.execute(t.store.db);
  return rows.rows.map((r) => ({ name: r.name, type: r.type.toLowerCase(), notNull: r.nullable === 'NO' }));
}

async function tablesWithCustomerId(t: TestStore): Promise<string[]> {
  const names =
    t.name === 'sqlite'
      ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(t.store.db)).rows.map((r) => r.name)
      : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(t.store.db)).rows.map((r) => r.name);
  const out: string[] = [];
  for (const n of names) if ((await columnsOf(t, n)).some((c) => c.name === 'customer_id')) out.push(n);
  return out.sort();
}

let unique = 0;
/** Inserts one row for `customer` with made-up values for every other NOT NULL column; `values` override. */
async function insertRow(t: TestStore, table: string, customer: string, values: Record<string, unknown> = {}): Promise<void> {
  const row: Record<string, unknown> = { workspace_id: 'ws', customer_id: customer };
  for (const c of await columnsOf(t, table)) {
    if (c.name in row || !c.notNull) continue;
    row[c.name] = /int|numeric|real|double/.test(c.type) ? ++unique : `${c.name}-${++unique}`;
  }
  Object.assign(row, values);
  await t.store.db.insertInto(table as never).values(row as never).execute();
}

async function ownersOf(t: TestStore, table: string): Promise<string[]> {
  const rows = await sql<{ customer_id: string }>`select customer_id from ${sql.table(table)} where workspace_id = 'ws' order by customer_id`.execute(t.store.db);
  return rows.rows.map((r) => r.customer_id);
}

describe.each(ENGINES)('profile merges move per-customer rows ($name)', (engine) => {
  let t: TestStore | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it('has a rule for every table with a customer_id column', async () => {
    t = await engine.open();
    expect(await tablesWithCustomerId(t)).toEqual(Object.keys(MERGE_RULES).sort());
  });

  it('moves the rows of `all` tables and leaves those of `none` tables', async () => {
    t = await engine.open();
    const tables = Object.keys(MERGE_RULES) as CustomerTable[];
    for (const table of tables) if (MERGE_RULES[table].move !== 'some') await insertRow(t, table, 'loser');
    await t.store.transaction((trx) => moveMergedRows(trx, 'ws', 'loser', 'winner'));
    for (const table of tables) {
      const rule = MERGE_RULES[table];
      if (rule.move === 'all') expect([table, await ownersOf(t, table)]).toEqual([table, ['winner']]);
      if (rule.move === 'none') expect([table, await ownersOf(t, table)]).toEqual([table, ['loser']]);
    }
  });

  it('moves dispatched messages and leaves queued and deferred ones to the dispatcher', async () => {
    t = await engine.open();
    for (const status of ['queued', 'deferred', 'sending', 'sent', 'failed', 'not_sent']) await insertRow(t, 'messages', 'loser', { status, key: `k-${status}` });
    await t.store.transaction((trx) => moveMergedRows(trx, 'ws', 'loser', 'winner'));
    const rows = await t.store.db.selectFrom('messages').select(['status', 'customer_id']).where('workspace_id', '=', 'ws').orderBy('status').execute();
    expect(rows.map((r) => [r.status, r.customer_id])).toEqual([
      ['deferred', 'loser'],
      ['failed', 'winner'],
      ['not_sent', 'winner'],
      ['queued', 'loser'],
      ['sending', 'winner'],
      ['sent', 'winner'],
    ]);
  });

  it('moves journey instances with their history and calls, unless the survivor holds the same trigger or is active in the same journey', async () => {
    t = await engine.open();
    const instance = async (customer: string, id: string, journey: string, status: string, entryKey: string) => {
      await insertRow(t as TestStore, 'journey_instances', customer, { id, journey, status, entry_key: entryKey });
      await insertRow(t as TestStore, 'journey_history', customer, { instance_id: id, journey });
      await insertRow(t as TestStore, 'journey_webhooks', customer, { instance_id: id, key: `call-${id}` });
    };
    await instance('winner', 'w-welcome', 'welcome', 'active', 'e:1');
    await instance('winner', 'w-daily', 'daily', 'completed', 's:600');
    await instance('loser', 'l-welcome', 'welcome', 'active', 'e:2'); // both active in welcome: stays
    await instance('loser', 'l-daily', 'daily', 'completed', 's:600'); // same trigger: stays
    await instance('loser', 'l-trial', 'trial', 'active', 'e:3'); // goes on for the survivor
    await instance('loser', 'l-promo', 'welcome', 'exited', 'e:4'); // ended: its entry counts for re-entry
    await t.store.transaction((trx) => moveMergedRows(trx, 'ws', 'loser', 'winner'));
    const owner = async (table: 'journey_instances' | 'journey_history' | 'journey_webhooks') => {
      const col = table === 'journey_instances' ? 'id' : 'instance_id';
      const rows = await sql<{ id: string; customer_id: string }>`select ${sql.ref(col)} as id, customer_id from ${sql.table(table)} where workspace_id = 'ws' order by 1`.execute((t as TestStore).store.db);
      return Object.fromEntries(rows.rows.map((r) => [r.id, r.customer_id]));
    };
    const expected = { 'l-daily': 'loser', 'l-promo': 'winner', 'l-trial': 'winner', 'l-welcome': 'loser', 'w-daily': 'winner', 'w-welcome': 'winner' };
    expect(await owner('journey_instances')).toEqual(expected);
    expect(await owner('journey_history')).toEqual(expected);
    expect(await owner('journey_webhooks')).toEqual(expected);
  });
});
