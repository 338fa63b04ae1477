import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig, type Config } from './config.js';
import { CairnError } from './errors.js';
import { DAY, HOUR } from './clock.js';
import { defaultFromDescription } from '../cli/docs-gen.js';

/** Loads, expecting CAIRN_ERR_CONFIG; returns the violation lines. */
function violations(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(CairnError);
    const err = e as CairnError;
    expect(err.code).toBe('CAIRN_ERR_CONFIG');
    return String(err.params.violations)
      .split('\n')
      .filter((l) => l.trim() !== '');
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

/** The variable each violation line names (lines read "  - NAME=value: …"). */
const named = (lines: string[]): string[] => lines.map((l) => /^\s*-\s*([A-Z_]+)=/.exec(l)?.[1] ?? `unparsed: ${l}`).sort();

describe('loadConfig defaults', () => {
  const DEFAULTS: Config = {
    databaseUrl: './data/cairn.db',
    host: '127.0.0.1',
    port: 8080,
    logLevel: 'info',
    dedupeWindowMs: 7 * DAY,
    demo: true,
    blueprintPath: 'examples/demo/blueprint.yaml',
    demoCustomers: 200,
    ingestMaxBatch: 5000,
    ingestWriter: 'auto',
    decideCommitDelayMs: 1,
    sqliteSynchronous: 'FULL',
    shutdownTimeoutMs: 10_000,
    sweepIntervalMs: 10_000,
    publicUrl: 'http://127.0.0.1:8080',
    linkSecret: undefined,
    outboundAllowPrivate: false,
    dispatchIntervalMs: 1000,
    arbitrationWindowMs: 3000,
    deliveryMaxAttempts: 5,
    journeyIntervalMs: 200,
    journeyBatchSize: 500,
    journeyLookbackMs: 60_000,
  };

  it('applies every default on an empty environment', () => {
    expect(loadConfig({})).toEqual(DEFAULTS);
  });

  it('treats empty variables as unset', () => {
    const empty = Object.fromEntries(Object.keys(CONFIG_VARIABLES).map((k) => [k, '']));
    expect(loadConfig(empty)).toEqual(DEFAULTS);
  });

  it('ignores variables it does not know', () => {
    expect(loadConfig({ PATH: '/usr/bin', CAIRN_SOMETHING_ELSE: 'x' })).toEqual(DEFAULTS);
  });

  it('documents exactly the variables it reads', () => {
    const read = new Set<string>();
    const env = new Proxy({} as Record<string, string | undefined>, {
      get(_t, key) {
        if (typeof key === 'string') read.add(key);
        return undefined;
      },
      has(_t, key) {
        if (typeof key === 'string') read.add(key);
        return false;
      },
    });
    loadConfig(env);
    expect([...read].sort()).toEqual(Object.keys(CONFIG_VARIABLES).sort());
  });

  it('has the defaults its documentation states', () => {
    const baseline = loadConfig({});
    for (const [name, description] of Object.entries(CONFIG_VARIABLES)) {
      const stated = defaultFromDescription(description);
      expect(stated, `${name}: the description states no default`).toBeDefined();
      const value = /^`([^`]+)`/.exec(stated ?? '')?.[1] as string;
      // Setting a variable to its documented default changes nothing.
      expect(loadConfig({ [name]: value }), `${name}=${value}`).toEqual(baseline);
    }
  });
});

describe('loadConfig normalization', () => {
  it('reads valid values into their normalized form', () => {
    const c = loadConfig({
      CAIRN_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/cairn',
      HOST: '0.0.0.0',
      PORT: '0',
      CAIRN_LOG_LEVEL: 'DEBUG',
      CAIRN_DEDUPE_WINDOW: '48h',
      CAIRN_DEMO: 'off',
      CAIRN_BLUEPRINT: 'examples/other.yaml',
      CAIRN_DEMO_CUSTOMERS: '0',
      CAIRN_INGEST_MAX_BATCH: '100000',
      CAIRN_SQLITE_SYNCHRONOUS: 'normal',
      CAIRN_SHUTDOWN_TIMEOUT: '1.5s',
      CAIRN_SWEEP_INTERVAL: '2m',
      CAIRN_INGEST_WRITER: 'inline',
      CAIRN_DECIDE_COMMIT_DELAY: 'off',
    });
    expect(c).toEqual({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/cairn',
      host: '0.0.0.0',
      port: 0,
      logLevel: 'debug',
      dedupeWindowMs: 48 * HOUR,
      demo: false,
      blueprintPath: 'examples/other.yaml',
      demoCustomers: 0,
      ingestMaxBatch: 100_000,
      ingestWriter: 'inline',
      decideCommitDelayMs: 0,
      sqliteSynchronous: 'NORMAL',
      shutdownTimeoutMs: 1500,
      sweepIntervalMs: 2 * 60_000,
      publicUrl: 'http://0.0.0.0:0',
      linkSecret: undefined,
      outboundAllowPrivate: false,
      dispatchIntervalMs: 1000,
      arbitrationWindowMs: 3000,
      deliveryMaxAttempts: 5,
      journeyIntervalMs: 200,
      journeyBatchSize: 500,
      journeyLookbackMs: 60_000,
    } satisfies Config);
  });

  it('reads the delivery settings: dispatch interval and arbitration window (0 or off disable), attempts', () => {
    const c = loadConfig({ CAIRN_DISPATCH_INTERVAL: 'off', CAIRN_ARBITRATION_WINDOW: '0', CAIRN_DELIVERY_MAX_ATTEMPTS: '3' });
    expect([c.dispatchIntervalMs, c.arbitrationWindowMs, c.deliveryMaxAttempts]).toEqual([0, 0, 3]);
    expect(loadConfig({ CAIRN_DISPATCH_INTERVAL: '250ms', CAIRN_ARBITRATION_WINDOW: '10s' })).toMatchObject({ dispatchIntervalMs: 250, arbitrationWindowMs: 10_000 });
    expect(() => loadConfig({ CAIRN_DELIVERY_MAX_ATTEMPTS: '0' })).toThrow(/CAIRN_DELIVERY_MAX_ATTEMPTS/);
  });

  it('reads the channel settings: public URL (trailing slash dropped), link secret, outbound policy', () => {
    const c = loadConfig({ CAIRN_PUBLIC_URL: 'https://cx.example.com/', CAIRN_LINK_SECRET: 'x'.repeat(32), CAIRN_OUTBOUND_ALLOW_PRIVATE: 'true' });
    expect([c.publicUrl, c.linkSecret, c.outboundAllowPrivate]).toEqual(['https://cx.example.com', 'x'.repeat(32), true]);
    expect(loadConfig({ HOST: '::1', PORT: '9000' }).publicUrl).toBe('http://[::1]:9000');
  });

  it('refuses a relative public URL, a short link secret (without echoing it) and a non-boolean outbound policy', () => {
    expect(() => loadConfig({ CAIRN_PUBLIC_URL: 'cx.example.com' })).toThrow(/CAIRN_PUBLIC_URL/);
    let message = '';
    try {
      loadConfig({ CAIRN_LINK_SECRET: 'short-secret', CAIRN_OUTBOUND_ALLOW_PRIVATE: 'maybe' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('CAIRN_LINK_SECRET');
    expect(message).toContain('CAIRN_OUTBOUND_ALLOW_PRIVATE');
    expect(message).not.toContain('short-secret');
  });

  it('reads the journey settings: worker interval (0 or off disable it), batch, lookback', () => {
    expect(loadConfig({ CAIRN_JOURNEY_INTERVAL: 'off' }).journeyIntervalMs).toBe(0);
    expect(loadConfig({ CAIRN_JOURNEY_INTERVAL: '50ms', CAIRN_JOURNEY_BATCH: '100', CAIRN_JOURNEY_LOOKBACK: '5m' })).toMatchObject({ journeyIntervalMs: 50, journeyBatchSize: 100, journeyLookbackMs: 300_000 });
    expect(() => loadConfig({ CAIRN_JOURNEY_BATCH: '0' })).toThrow(/CAIRN_JOURNEY_BATCH=0/);
  });

  it.each(['0', 'off', 'OFF'])('reads CAIRN_SWEEP_INTERVAL=%s as a disabled sweep', (v) => expect(loadConfig({ CAIRN_SWEEP_INTERVAL: v }).sweepIntervalMs).toBe(0));

  it.each(['1', 'true', 'YES', 'on'])('reads %s as true', (v) => expect(loadConfig({ CAIRN_DEMO: v }).demo).toBe(true));
  it.each(['0', 'false', 'No', 'OFF'])('reads %s as false', (v) => expect(loadConfig({ CAIRN_DEMO: v }).demo).toBe(false));

  it.each(['./data/x.db', '/tmp/cairn.db', 'sqlite:/tmp/cairn.db', 'sqlite::memory:', 'postgresql://u@h/db', 'POSTGRES://u@h/db'])('accepts the database URL %s', (url) => {
    expect(loadConfig({ CAIRN_DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  it('accepts the port range bounds', () => {
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
  });
});

describe('loadConfig violations', () => {
  const BAD: [name: string, value: string][] = [
    ['PORT', 'http'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['CAIRN_DEDUPE_WINDOW', 'a week'],
    ['CAIRN_DEDUPE_WINDOW', '0s'],
    ['CAIRN_DEDUPE_WINDOW', '7'],
    ['CAIRN_SHUTDOWN_TIMEOUT', '10 seconds'],
    ['CAIRN_SWEEP_INTERVAL', 'often'],
    ['CAIRN_DEMO', 'maybe'],
    ['CAIRN_LOG_LEVEL', 'loud'],
    ['CAIRN_SQLITE_SYNCHRONOUS', 'OFF'],
    ['CAIRN_DEMO_CUSTOMERS', '-5'],
    ['CAIRN_INGEST_MAX_BATCH', '0'],
    ['CAIRN_DATABASE_URL', 'mysql://root@localhost/cairn'],
    ['CAIRN_DATABASE_URL', 'https://example.com/db'],
  ];

  it.each(BAD)('rejects %s=%s, naming it', (name, value) => {
    expect(named(violations({ [name]: value }))).toEqual([name]);
  });

  it('lists every violation at once', () => {
    const env = {
      PORT: 'http',
      CAIRN_DEDUPE_WINDOW: 'a week',
      CAIRN_DEMO: 'maybe',
      CAIRN_LOG_LEVEL: 'loud',
      CAIRN_DATABASE_URL: 'mysql://root@localhost/cairn',
      CAIRN_SQLITE_SYNCHRONOUS: 'OFF',
      CAIRN_SHUTDOWN_TIMEOUT: 'soon',
      // valid ones in between are not reported
      HOST: '::1',
      CAIRN_DEMO_CUSTOMERS: '10',
    };
    const lines = violations(env);
    expect(named(lines)).toEqual(['CAIRN_DATABASE_URL', 'CAIRN_DEDUPE_WINDOW', 'CAIRN_DEMO', 'CAIRN_LOG_LEVEL', 'CAIRN_SHUTDOWN_TIMEOUT', 'CAIRN_SQLITE_SYNCHRONOUS', 'PORT']);
    // Each line carries the offending value, so the operator sees what was read.
    for (const [name, value] of Object.entries(env).filter(([k]) => k !== 'HOST' && k !== 'CAIRN_DEMO_CUSTOMERS')) {
      expect(lines.some((l) => l.includes(`${name}=${value}`)), name).toBe(true);
    }
  });
});

describe('the loaded config', () => {
  it('is frozen', () => {
    const c = loadConfig({ PORT: '9000' });
    expect(Object.isFrozen(c)).toBe(true);
    // ES modules run in strict mode: writing to a frozen object throws.
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (c as unknown as Record<string, unknown>).extra = true;
    }).toThrow(TypeError);
    expect(c.port).toBe(9000);
  });

  it('is a new object per call, independent of later changes to the environment', () => {
    const env: Record<string, string> = { PORT: '9001' };
    const c = loadConfig(env);
    env.PORT = '9002';
    expect(c.port).toBe(9001);
    expect(loadConfig(env).port).toBe(9002);
  });
});
