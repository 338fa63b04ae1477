import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver, type SqliteDatabase } from 'kysely';
import { CairnError } from '../../../core/errors.js';
import type { DialectInfo } from '../types.js';

export interface SqliteOptions {
  /** Path of the database file, or ':memory:'. */
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  /** How long a writer waits for SQLite's write lock before giving up (the old busy_timeout). Default 10 s. */
  busyWaitMs?: number;
}

const isBusy = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT';
};

/**
 * SQLite through better-sqlite3 in WAL mode. Kysely's driver opens deferred transactions; we open
 * them IMMEDIATE so a second writer waits for the write lock up front instead of failing with
 * SQLITE_BUSY on the read-to-write upgrade.
 *
 * The wait does not block the thread: busy_timeout is 0 and a busy `begin immediate` (or a write
 * outside a transaction) is retried on a timer, with backoff up to 10 s. A process has two writers
 * on one file when ingest runs in its writer thread (src/ingest/writer.ts), and another process
 * (`cairn import` beside a server) can hold the lock too; with SQLite's own busy handler the
 * waiting thread would sleep and stop serving requests meanwhile.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    config: ConstructorParameters<typeof SqliteDialect>[0],
    private readonly busyWaitMs: number,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    const busyWaitMs = this.busyWaitMs;
    const driver = super.createDriver();
    const inTransaction = new WeakSet<DatabaseConnection>();
    const retrying = async <T>(run: () => Promise<T>): Promise<T> => {
      const start = Date.now();
      // Backoff up to 10 ms: writers of this process queue on the store's write gate, so a busy
      // lock here is another process (an import) whose commits take milliseconds; a longer sleep
      // mostly overshoots the moment the lock is free.
      for (let delay = 1; ; delay = Math.min(delay * 2, 10)) {
        try {
          return await run();
        } catch (e) {
          if (!isBusy(e)) throw e;
          // Still locked after the wait: another writer holds the file (a long import, a stuck
          // process). Say so with a retryable 503 rather than an internal error.
          if (Date.now() - start > busyWaitMs) throw new CairnError('CAIRN_ERR_STORAGE_BUSY', { waited: busyWaitMs });
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    };
    const acquire = driver.acquireConnection.bind(driver);
    driver.acquireConnection = async () => {
      const conn = await acquire();
      const execute = conn.executeQuery.bind(conn);
      if (!(conn as { cairnWrapped?: boolean }).cairnWrapped) {
        (conn as { cairnWrapped?: boolean }).cairnWrapped = true;
        conn.executeQuery = ((q: CompiledQuery) => (inTransaction.has(conn) ? execute(q) : retrying(() => execute(q)))) as typeof conn.executeQuery;
      }
      return conn;
    };
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
      inTransaction.add(connection);
    };
    const commit = driver.commitTransaction.bind(driver);
    driver.commitTransaction = async (connection: DatabaseConnection) => {
      try {
        await commit(connection);
      } finally {
        inTransaction.delete(connection);
      }
    };
    const rollback = driver.rollbackTransaction.bind(driver);
    driver.rollbackTransaction = async (connection: DatabaseConnection) => {
      try {
        await rollback(connection);
      } finally {
        inTransaction.delete(connection);
      }
    };
    return driver;
  }
}

/**
 * Kysely prepares every statement it runs; preparing a multi-row insert costs about as much as
 * running it. Statements are cached by SQL text (LRU) and reused: the ingest path issues the same
 * few shapes over and over. Safe because Kysely runs one statement at a time on this connection.
 * 1,024 entries: `IN (…)` lists of every length are distinct texts, and with segments, stages and
 * journeys a busy server cycled through more than 256 shapes (re-preparing ~1.7k times a minute).
 */
function cachingDatabase(db: Database.Database, max = 1024): SqliteDatabase {
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
  // Lock waits are retried without blocking the thread (ImmediateSqliteDialect).
  db.pragma('busy_timeout = 0');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
  // Checkpoint the WAL every ~40 MB instead of every ~4 MB: ingest commits write megabytes, and the
  // default made almost every commit pay for a checkpoint (measured: commit time -35%).
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('journal_size_limit = 67108864');
  return {
    dialect: new ImmediateSqliteDialect({ database: cachingDatabase(db) }, opts.busyWaitMs ?? 10_000),
    info: {
      name: 'sqlite',
      displayUrl: opts.path,
      // SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
      capabilities: { supportsSkipLocked: false, supportsAdvisoryLocks: false, maxParameters: 32_000 },
    },
  };
}
