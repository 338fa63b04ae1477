import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/index.js';

/**
 * The storage engines every storage test runs against. PostgreSQL is the local server
 * (CAIRN_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres); each opened
 * store gets a fresh database that is dropped afterwards. Set CAIRN_TEST_SKIP_POSTGRES=1 to run
 * the SQLite half alone on a machine without PostgreSQL; CI never sets it.
 */
export const POSTGRES_URL = process.env.CAIRN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const SKIP_POSTGRES = process.env.CAIRN_TEST_SKIP_POSTGRES === '1';

export interface TestStore {
  name: 'sqlite' | 'postgres';
  url: string;
  store: Store;
  cleanup(): Promise<void>;
}

export interface EngineFactory {
  name: 'sqlite' | 'postgres';
  /** A fresh, migrated, empty database. */
  open(): Promise<TestStore>;
  /** A fresh empty database URL, not opened (for tests that start a runtime or a process). */
  freshUrl(): Promise<{ url: string; cleanup(): Promise<void> }>;
}

async function freshSqlite(): Promise<{ url: string; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-test-'));
  return { url: join(dir, 'cairn.db'), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function freshPostgres(): Promise<{ url: string; cleanup(): Promise<void> }> {
  const name = `cairn_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    cleanup: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

function engine(name: 'sqlite' | 'postgres', fresh: () => Promise<{ url: string; cleanup(): Promise<void> }>): EngineFactory {
  return {
    name,
    freshUrl: fresh,
    async open() {
      const f = await fresh();
      const store = openStore(f.url, { sqliteSynchronous: 'NORMAL' });
      await store.migrate();
      return {
        name,
        url: f.url,
        store,
        async cleanup() {
          await store.destroy();
          await f.cleanup();
        },
      };
    },
  };
}

export const ENGINES: EngineFactory[] = [engine('sqlite', freshSqlite), ...(SKIP_POSTGRES ? [] : [engine('postgres', freshPostgres)])];
