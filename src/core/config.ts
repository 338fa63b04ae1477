import { CairnError } from './errors.js';
import { parseDuration, DAY } from './clock.js';

/**
 * Process configuration, read from the environment once at start, validated (every violation is
 * listed in one error), normalized and frozen. Defaults live here and nowhere else.
 */
export interface Config {
  readonly databaseUrl: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Messages with a messageId seen within this window (ms) are acknowledged but not stored again. */
  readonly dedupeWindowMs: number;
  /** Blueprint for the demo workspace; undefined disables the demo. */
  readonly demo: boolean;
  readonly blueprintPath: string;
  readonly demoCustomers: number;
  /** Events applied per group commit at most. */
  readonly ingestMaxBatch: number;
  /** SQLite `synchronous` pragma: FULL survives power loss, NORMAL survives process crashes. */
  readonly sqliteSynchronous: 'FULL' | 'NORMAL';
  /** How long shutdown waits for in-flight requests (ms). */
  readonly shutdownTimeoutMs: number;
}

export const CONFIG_VARIABLES: Record<string, string> = {
  CAIRN_DATABASE_URL: 'SQLite file path (or sqlite:PATH) or postgres:// URL; default ./data/cairn.db',
  HOST: 'address to listen on; default 127.0.0.1',
  PORT: 'HTTP port; default 8080',
  CAIRN_LOG_LEVEL: 'fatal|error|warn|info|debug|trace|silent; default info',
  CAIRN_DEDUPE_WINDOW: 'messageId deduplication window, e.g. 7d (default), 48h',
  CAIRN_DEMO: 'true|false: create the demo workspace with generated customers; default true',
  CAIRN_BLUEPRINT: 'blueprint of the demo workspace; default examples/demo/blueprint.yaml',
  CAIRN_DEMO_CUSTOMERS: 'how many demo customers to generate on first start; default 200',
  CAIRN_INGEST_MAX_BATCH: 'most events applied in one group commit; default 5000',
  CAIRN_SQLITE_SYNCHRONOUS: 'FULL (default, survives power loss) or NORMAL (survives process crashes)',
  CAIRN_SHUTDOWN_TIMEOUT: 'how long shutdown drains in-flight requests, e.g. 10s (default)',
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const violations: string[] = [];
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      violations.push(`${name}=${raw}: expected an integer from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const duration = (name: string, def: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) {
      violations.push(`${name}=${raw}: expected a duration such as 30s, 15m, 12h or 7d`);
      return def;
    }
    return ms;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    violations.push(`${name}=${raw}: expected true or false`);
    return def;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const v = (allowed as readonly string[]).find((a) => a.toLowerCase() === raw.toLowerCase());
    if (v === undefined) {
      violations.push(`${name}=${raw}: expected one of ${allowed.join(', ')}`);
      return def;
    }
    return v as T;
  };

  const databaseUrl = env.CAIRN_DATABASE_URL && env.CAIRN_DATABASE_URL !== '' ? env.CAIRN_DATABASE_URL : './data/cairn.db';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(databaseUrl) && !/^postgres(ql)?:\/\//i.test(databaseUrl) && !/^sqlite:/i.test(databaseUrl)) {
    violations.push(`CAIRN_DATABASE_URL=${databaseUrl}: expected a file path, sqlite:PATH or postgres://…`);
  }

  const config: Config = {
    databaseUrl,
    host: env.HOST && env.HOST !== '' ? env.HOST : '127.0.0.1',
    port: int('PORT', 8080, 0, 65535),
    logLevel: oneOf('CAIRN_LOG_LEVEL', LOG_LEVELS, 'info'),
    dedupeWindowMs: duration('CAIRN_DEDUPE_WINDOW', 7 * DAY),
    demo: bool('CAIRN_DEMO', true),
    blueprintPath: env.CAIRN_BLUEPRINT && env.CAIRN_BLUEPRINT !== '' ? env.CAIRN_BLUEPRINT : 'examples/demo/blueprint.yaml',
    demoCustomers: int('CAIRN_DEMO_CUSTOMERS', 200, 0, 1_000_000),
    ingestMaxBatch: int('CAIRN_INGEST_MAX_BATCH', 5000, 1, 100_000),
    sqliteSynchronous: oneOf('CAIRN_SQLITE_SYNCHRONOUS', ['FULL', 'NORMAL'] as const, 'FULL'),
    shutdownTimeoutMs: duration('CAIRN_SHUTDOWN_TIMEOUT', 10_000),
  };
  if (violations.length > 0) {
    throw new CairnError('CAIRN_ERR_CONFIG', { violations: violations.map((v) => `  - ${v}`).join('\n') });
  }
  return Object.freeze(config);
}
