import pg from 'pg';
import { PostgresDialect } from 'kysely';
import type { DialectInfo } from '../types.js';

export interface PostgresOptions {
  url: string;
  maxConnections?: number;
}

const INT8_OID = 20;

/**
 * PostgreSQL through node-postgres. BIGINT columns hold epoch milliseconds, which fit a JS number
 * exactly, so int8 is parsed to number for this pool only (no global type-parser mutation).
 */
export function createPostgresDialect(opts: PostgresOptions): { dialect: PostgresDialect; info: DialectInfo; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client whose backend goes away (server restart, failover, pg_terminate_backend, DROP
  // DATABASE … FORCE) is emitted here; the pool has already discarded it and connects afresh on the
  // next query. Without a listener Node treats the event as an uncaught exception and the process dies.
  pool.on('error', () => undefined);
  return {
    dialect: new PostgresDialect({ pool }),
    pool,
    info: {
      name: 'postgres',
      displayUrl: opts.url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@'),
      capabilities: { supportsSkipLocked: true, supportsAdvisoryLocks: true, maxParameters: 60_000 },
    },
  };
}
