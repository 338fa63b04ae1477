import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver } from 'kysely';
import type { DialectInfo } from '../types.js';

export interface SqliteOptions {
  /** Path of the database file, or ':memory:'. */
  path: string;
  synchronous: 'FULL' | 'NORMAL';
}

/**
 * SQLite through better-sqlite3 in WAL mode. Kysely's driver opens deferred transactions; we open
 * them IMMEDIATE so a second process (a `cairn import` beside a running server) waits on the busy
 * timeout instead of failing with SQLITE_BUSY on the read-to-write upgrade.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

export function createSqliteDialect(opts: SqliteOptions): { dialect: SqliteDialect; info: DialectInfo } {
  if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous}`);
  db.pragma('busy_timeout = 10000');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
  return {
    dialect: new ImmediateSqliteDialect({ database: db }),
    info: {
      name: 'sqlite',
      displayUrl: opts.path,
      // SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
      capabilities: { supportsSkipLocked: false, supportsAdvisoryLocks: false, maxParameters: 32_000 },
    },
  };
}
