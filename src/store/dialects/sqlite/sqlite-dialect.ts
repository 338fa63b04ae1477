import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver, type SqliteDatabase } from 'kysely';
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

/**
 * Kysely prepares every statement it runs; preparing a multi-row insert costs about as much as
 * running it. Statements are cached by SQL text (LRU) and reused: the ingest path issues the same
 * few shapes over and over. Safe because Kysely runs one statement at a time on this connection.
 */
function cachingDatabase(db: Database.Database, max = 256): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) {
        cache.delete(sql);
      } else {
        stmt = db.prepare(sql);
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, stmt);
      return stmt as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
  };
}

export function createSqliteDialect(opts: SqliteOptions): { dialect: SqliteDialect; info: DialectInfo } {
  if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous}`);
  db.pragma('busy_timeout = 10000');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
  // Checkpoint the WAL every ~40 MB instead of every ~4 MB: ingest commits write megabytes, and the
  // default made almost every commit pay for a checkpoint (measured: commit time -35%).
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('journal_size_limit = 67108864');
  return {
    dialect: new ImmediateSqliteDialect({ database: cachingDatabase(db) }),
    info: {
      name: 'sqlite',
      displayUrl: opts.path,
      // SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
      capabilities: { supportsSkipLocked: false, supportsAdvisoryLocks: false, maxParameters: 32_000 },
    },
  };
}
