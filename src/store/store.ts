import { Kysely, Migrator, sql, type Transaction } from 'kysely';
import { resolve } from 'node:path';
import { CairnError } from '../core/index.js';
import type { Database } from './schema.js';
import type { DialectInfo } from './dialects/types.js';
import { createSqliteDialect } from './dialects/sqlite/sqlite-dialect.js';
import { createPostgresDialect } from './dialects/postgres/postgres-dialect.js';
import { migrationProvider } from './migrations/index.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;

export interface Store {
  readonly db: Db;
  readonly dialect: DialectInfo;
  /**
   * Runs `fn` in one transaction. `lockKeys` serialize work across processes on engines with
   * advisory locks (taken in sorted order, so two units never deadlock on them); on SQLite the
   * single writer already serializes.
   */
  transaction<T>(fn: (trx: Trx) => Promise<T>, lockKeys?: readonly string[], opts?: TransactionOptions): Promise<T>;
  /**
   * Runs `fn` holding this process's write gate: on SQLite, the FIFO queue every write transaction
   * of the process (`transaction`) joins before it asks the engine for the write lock. Work that
   * writes through another connection of the same file (the ingest writer thread) runs under it,
   * so writers of one process queue here instead of colliding on SQLite's lock and sleeping on a
   * retry timer. On PostgreSQL it just runs `fn`.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Inside a write transaction: a number that differs from the one the previous call returned
   * exactly when some other connection (another thread or process) committed in between — SQLite's
   * `PRAGMA data_version`; this store's own commits never change it. For caches of rows only this
   * process writes. Undefined where the engine cannot tell (PostgreSQL: processes share the data).
   */
  foreignWriteStamp(trx: Trx): Promise<number | undefined>;
  migrate(): Promise<string[]>;
  destroy(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * `relaxed`: COMMIT returns before the write is flushed to disk (SQLite synchronous=NORMAL for
   * this transaction, PostgreSQL synchronous_commit=off). A process crash loses nothing; a power
   * cut or OS crash can lose the last moment of such commits, never corrupt anything. For derived
   * records that must not make a request wait for fsync (the decision log). Default `full`.
   */
  durability?: 'full' | 'relaxed';
}

export interface OpenStoreOptions {
  /** SQLite: how long a writer waits for the write lock before CAIRN_ERR_STORAGE_BUSY. Default 10 s. */
  sqliteBusyWaitMs?: number;
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  maxConnections?: number;
}

/** Opens storage from a URL: a file path, `sqlite:PATH`, `:memory:`, or `postgres://…`. */
export function openStore(url: string, opts: OpenStoreOptions = {}): Store {
  const sqliteSynchronous = opts.sqliteSynchronous ?? 'FULL';
  let made: { dialect: ConstructorParameters<typeof Kysely<Database>>[0]['dialect']; info: DialectInfo };
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const pg = createPostgresDialect({ url, ...(opts.maxConnections ? { maxConnections: opts.maxConnections } : {}) });
    made = { dialect: pg.dialect, info: pg.info };
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new CairnError('CAIRN_ERR_DATABASE_URL', { url });
  } else {
    const path = url.replace(/^sqlite:(\/\/)?/i, '');
    made = createSqliteDialect({ path: path === ':memory:' ? path : resolve(path), synchronous: sqliteSynchronous, ...(opts.sqliteBusyWaitMs !== undefined ? { busyWaitMs: opts.sqliteBusyWaitMs } : {}) });
  }
  const db = new Kysely<Database>({ dialect: made.dialect });
  const info = made.info;
  const gate = info.name === 'sqlite' ? writeGate() : <T>(fn: () => Promise<T>) => fn();

  return {
    db,
    dialect: info,
    async transaction<T>(fn: (trx: Trx) => Promise<T>, lockKeys: readonly string[] = [], opts: TransactionOptions = {}): Promise<T> {
      const relaxed = opts.durability === 'relaxed';
      const body = async (trx: Trx): Promise<T> => {
        if (relaxed && info.name === 'postgres') await sql`set local synchronous_commit = off`.execute(trx);
        if (info.capabilities.supportsAdvisoryLocks && lockKeys.length > 0) {
          for (const key of [...new Set(lockKeys)].sort()) {
            await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
          }
        }
        return fn(trx);
      };
      if (info.name !== 'sqlite') return db.transaction().execute(body);
      if (!relaxed) return gate(() => db.transaction().execute(body));
      // SQLite sets the level per connection and refuses to change it inside a transaction.
      return gate(() => db.connection().execute(async (conn) => {
        await sql.raw('pragma synchronous = NORMAL').execute(conn);
        try {
          return await conn.transaction().execute(body);
        } finally {
          await sql.raw(`pragma synchronous = ${sqliteSynchronous}`).execute(conn);
        }
      }));
    },
    exclusive: gate,
    async foreignWriteStamp(trx: Trx): Promise<number | undefined> {
      if (info.name !== 'sqlite') return undefined;
      const r = await sql<{ data_version: number | bigint }>`pragma data_version`.execute(trx);
      const v = r.rows[0]?.data_version;
      return v === undefined ? undefined : Number(v);
    },
    async migrate(): Promise<string[]> {
      const migrator = new Migrator({ db, provider: migrationProvider, migrationTableName: 'cairn_migrations', migrationLockTableName: 'cairn_migrations_lock' });
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    async destroy(): Promise<void> {
      await db.destroy();
    },
  };
}

/**
 * A FIFO mutex for async work. A transaction waits its turn here, then takes the connection and
 * `begin immediate`; nested use would deadlock, and none exists (SQLite has one connection per
 * process side, so a nested transaction would deadlock on it already).
 */
function writeGate(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<void> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const prev = tail;
    let release!: () => void;
    tail = new Promise<void>((r) => (release = r));
    return prev.then(fn).finally(release);
  };
}

/** Splits rows so that one multi-row statement stays under the engine's bind-parameter limit. */
export function chunkRows<T>(rows: readonly T[], columns: number, maxParameters: number): T[][] {
  const per = Math.max(1, Math.floor(maxParameters / Math.max(1, columns)));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += per) out.push(rows.slice(i, i + per));
  return out;
}

/**
 * Splits the values of an `IN (…)` list like chunkRows, and pads each chunk to a power of two by
 * repeating its last value (an IN list means the same with duplicates). Every list length is a
 * distinct SQL text, and SQLite prepares each text anew: with lists of any length the statement
 * cache missed on most ingest commits (measured: about 7 µs per event re-preparing). Padded, a
 * query has at most ~15 shapes, all cached after warm-up.
 */
export function inChunks<T>(values: readonly T[], maxParameters: number): T[][] {
  const per = Math.max(1, Math.floor(maxParameters));
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += per) {
    const chunk = values.slice(i, i + per);
    let size = 1;
    while (size < chunk.length) size *= 2;
    if (size > per) size = per;
    const last = chunk[chunk.length - 1] as T;
    while (chunk.length < size) chunk.push(last);
    out.push(chunk);
  }
  return out;
}
