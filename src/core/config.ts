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
  /**
   * Where group commits run: `thread` (a writer thread with its own SQLite connection, so request
   * parsing and SQL overlap), `inline` (the request thread), or `auto` (thread for a SQLite file on a
   * machine with 4 or more cores; inline otherwise, and always for PostgreSQL and :memory:).
   */
  readonly ingestWriter: 'auto' | 'thread' | 'inline';
  /** How long (ms) a decide group commit waits for more decisions to join it; 0 = the next event-loop turn. */
  readonly decideCommitDelayMs: number;
  /** SQLite `synchronous` pragma: FULL survives power loss, NORMAL survives process crashes. */
  readonly sqliteSynchronous: 'FULL' | 'NORMAL';
  /** How long shutdown waits for in-flight requests (ms). */
  readonly shutdownTimeoutMs: number;
  /**
   * Period (ms) of the segment sweep, which re-evaluates customers whose segments or stages change
   * with time alone (profiles/sweep.ts); 0 disables it in this process.
   */
  readonly sweepIntervalMs: number;
  /**
   * The public base URL of this Cairn (no trailing slash), as customers and providers reach it:
   * unsubscribe links, tracked redirects and provider callback URLs are built from it.
   */
  readonly publicUrl: string;
  /**
   * Secret that signs unsubscribe and tracked links (HMAC-SHA256). Undefined (CAIRN_LINK_SECRET
   * unset or `database`): each workspace gets a random key kept in the database, shared by every
   * process on it (see delivery/links.ts).
   */
  readonly linkSecret: string | undefined;
  /** Lets outbound requests (webhooks, SMS and push providers) reach private and loopback addresses; development only. */
  readonly outboundAllowPrivate: boolean;
  /** Period (ms) at which the dispatcher delivers the outbox and re-gates deferred messages; 0 disables it in this process. */
  readonly dispatchIntervalMs: number;
  /**
   * How long (ms) a message that passed the contact policy is held before dispatch, so that a
   * higher-priority message for the same customer arriving meanwhile takes the last slot under a
   * cap instead of the first to arrive (docs/contact-policy.md). 0: only messages requested together compete.
   */
  readonly arbitrationWindowMs: number;
  /** Delivery attempts per message before a retryable provider failure becomes final. */
  readonly deliveryMaxAttempts: number;
  /**
   * Period (ms) of the journey timer worker, which fires due waits, enters segment and schedule
   * entries and runs their steps (journeys/engine.ts); 0 disables it in this process. Short, since a
   * timer fires at most this late plus the time its batch takes (lateness p99 ≤ 1 s is the target).
   */
  readonly journeyIntervalMs: number;
  /** Timers fired (and schedule customers entered) per journey transaction. */
  readonly journeyBatchSize: number;
  /** How far before its cursor the journey engine replays committed events after a crash, and scans segment entries (ms). */
  readonly journeyLookbackMs: number;
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
  CAIRN_INGEST_WRITER: 'where group commits run: auto (default), a writer thread for a SQLite file on a machine with 4 or more cores, else inline; thread (a writer thread for a SQLite file); or inline (the request thread)',
  CAIRN_DECIDE_COMMIT_DELAY: 'how long a decide group commit waits for concurrent decisions to join it, e.g. 1ms (default); 0 or off commits at the next turn of the event loop',
  CAIRN_SQLITE_SYNCHRONOUS: 'FULL (default, survives power loss) or NORMAL (survives process crashes)',
  CAIRN_SHUTDOWN_TIMEOUT: 'how long shutdown drains in-flight requests, e.g. 10s (default)',
  CAIRN_PUBLIC_URL: 'public base URL of this Cairn for links in messages and provider callbacks, e.g. https://cx.example.com; default http://127.0.0.1:8080 (built from HOST and PORT)',
  CAIRN_LINK_SECRET: 'a secret of at least 32 characters signing unsubscribe and tracked links (one key per workspace derived from it), or database (default): a random key per workspace kept in the database',
  CAIRN_OUTBOUND_ALLOW_PRIVATE: 'true|false: let webhooks and providers call private, loopback and link-local addresses (development only); default false',
  CAIRN_DISPATCH_INTERVAL: 'how often the dispatcher delivers queued messages and re-gates deferred ones, e.g. 1s (default); 0 or off disables it in this process',
  CAIRN_ARBITRATION_WINDOW: 'how long a message that passed the contact policy waits before dispatch so a higher-priority one for the same customer can take the last slot under a cap, e.g. 3s (default); 0 for none',
  CAIRN_DELIVERY_MAX_ATTEMPTS: 'delivery attempts per message before a retryable provider failure is final; default 5',
  CAIRN_JOURNEY_INTERVAL: 'how often the journey worker fires due timers and runs segment and schedule entries, e.g. 200ms (default); 0 or off disables it in this process',
  CAIRN_JOURNEY_BATCH: 'journey timers fired per transaction; default 500',
  CAIRN_JOURNEY_LOOKBACK: 'how far before its cursor the journey engine replays committed events after a crash and scans segment entries, e.g. 60s (default)',
  CAIRN_SWEEP_INTERVAL: 'how often the segment sweep re-evaluates customers whose segments or stages change with time alone (a window sliding, days_since, local hour), e.g. 10s (default); 0 or off disables it in this process',
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
    ingestWriter: oneOf('CAIRN_INGEST_WRITER', ['auto', 'thread', 'inline'] as const, 'auto'),
    decideCommitDelayMs: /^\s*(0|off)\s*$/i.test(env.CAIRN_DECIDE_COMMIT_DELAY ?? '') ? 0 : duration('CAIRN_DECIDE_COMMIT_DELAY', 1),
    sqliteSynchronous: oneOf('CAIRN_SQLITE_SYNCHRONOUS', ['FULL', 'NORMAL'] as const, 'FULL'),
    shutdownTimeoutMs: duration('CAIRN_SHUTDOWN_TIMEOUT', 10_000),
    sweepIntervalMs: /^\s*(0|off)\s*$/i.test(env.CAIRN_SWEEP_INTERVAL ?? '') ? 0 : duration('CAIRN_SWEEP_INTERVAL', 10_000),
    publicUrl: '',
    linkSecret: env.CAIRN_LINK_SECRET && env.CAIRN_LINK_SECRET !== '' && env.CAIRN_LINK_SECRET !== 'database' ? env.CAIRN_LINK_SECRET : undefined,
    outboundAllowPrivate: bool('CAIRN_OUTBOUND_ALLOW_PRIVATE', false),
    dispatchIntervalMs: /^\s*(0|off)\s*$/i.test(env.CAIRN_DISPATCH_INTERVAL ?? '') ? 0 : duration('CAIRN_DISPATCH_INTERVAL', 1000),
    arbitrationWindowMs: /^\s*(0|off)\s*$/i.test(env.CAIRN_ARBITRATION_WINDOW ?? '') ? 0 : duration('CAIRN_ARBITRATION_WINDOW', 3000),
    deliveryMaxAttempts: int('CAIRN_DELIVERY_MAX_ATTEMPTS', 5, 1, 100),
    journeyIntervalMs: /^\s*(0|off)\s*$/i.test(env.CAIRN_JOURNEY_INTERVAL ?? '') ? 0 : duration('CAIRN_JOURNEY_INTERVAL', 200),
    journeyBatchSize: int('CAIRN_JOURNEY_BATCH', 500, 1, 10_000),
    journeyLookbackMs: duration('CAIRN_JOURNEY_LOOKBACK', 60_000),
  };
  const publicUrl = env.CAIRN_PUBLIC_URL && env.CAIRN_PUBLIC_URL !== '' ? env.CAIRN_PUBLIC_URL : `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/i.test(publicUrl)) violations.push(`CAIRN_PUBLIC_URL=${publicUrl}: expected an http(s) URL without query, e.g. https://cx.example.com`);
  // Filled after the object is built: the default is derived from the validated HOST and PORT.
  Object.assign(config, { publicUrl: publicUrl.replace(/\/+$/, '') });
  if (config.linkSecret !== undefined && config.linkSecret.length < 32) violations.push(`CAIRN_LINK_SECRET=<${config.linkSecret.length} characters>: expected at least 32 characters (the value is not shown)`);
  if (violations.length > 0) {
    throw new CairnError('CAIRN_ERR_CONFIG', { violations: violations.map((v) => `  - ${v}`).join('\n') });
  }
  return Object.freeze(config);
}
