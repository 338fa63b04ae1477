import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { PeriodicRunner, systemClock, type Clock, type Config } from './core/index.js';
import { analyzeGrownTables, openStore, type Store } from './store/index.js';
import { KeyResolver, WorkspaceRegistry, createKey, upsertWorkspace, listKeys, listWorkspaces } from './governance/index.js';
import { IngestPipeline, ThreadCommitter, writerThreadAvailable } from './ingest/index.js';
import { SegmentSweeper } from './profiles/index.js';
import { DeliveryService, createChannelServices, registerBuiltinAdapters, type ChannelServices } from './delivery/index.js';
import { JourneyEngine, JourneyWebhookSender, journeyWebhookSecret } from './journeys/index.js';

/**
 * The composition root: every long-lived part of a Cairn process, wired once. The HTTP server and
 * the CLI both start from here; nothing below reaches for globals.
 */
export interface Runtime {
  config: Config;
  clock: Clock;
  log: Logger;
  store: Store;
  workspaces: WorkspaceRegistry;
  keys: KeyResolver;
  pipeline: IngestPipeline;
  /** Re-evaluates segments and stages that change with time alone; runs every CAIRN_SWEEP_INTERVAL (started here unless 0). */
  sweeper: SegmentSweeper;
  /**
   * The contact policy gate, the outbox dispatcher (every CAIRN_DISPATCH_INTERVAL, started here
   * unless 0 or `dispatch: false`) and the channel adapter registry.
   */
  delivery: DeliveryService;
  /** What the channel adapters share in this process: link signer, in-app inbox hub (SSE), outbound policy and breaker. */
  channels: ChannelServices;
  /**
   * The journey engine: applies committed events (subscribed to `ingest:committed`), fires due
   * timers every CAIRN_JOURNEY_INTERVAL (started here unless 0 or `sweep: false`; `runDue()` still
   * works), and replays what a crash left on start.
   */
  journeys: JourneyEngine;
  /**
   * Calls what journey webhook steps recorded (signed, retried, through the outbound policy);
   * runs every CAIRN_DISPATCH_INTERVAL alongside the dispatcher; `runOnce()` still works.
   */
  webhooks: JourneyWebhookSender;
  close(): Promise<void>;
}

/**
 * `sweep: false` leaves the segment sweeper stopped (one-shot CLI commands; `cairn migrate`, which
 * runs before the schema exists); `rt.sweeper.runOnce()` still works.
 */
export async function createRuntime(config: Config, opts: { clock?: Clock; log?: Logger; migrate?: boolean; sweep?: boolean; dispatch?: boolean } = {}): Promise<Runtime> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? pino({ level: config.logLevel, base: { service: 'cairn' } });
  const store = openStore(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  if (opts.migrate !== false) {
    const applied = await store.migrate();
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  }
  const workspaces = new WorkspaceRegistry(store.db, clock);
  const keys = new KeyResolver(store.db, clock);
  const pipeline = new IngestPipeline(store, workspaces, clock, log, {
    maxBatch: config.ingestMaxBatch,
    dedupeWindowMs: config.dedupeWindowMs,
    committer: ingestWriter(config, store, log),
  });
  pipeline.events.on('listener:error', ({ event, error }) => log.error({ err: error, event }, 'lifecycle listener failed'));
  // Refused merges are not errors for the sender, but an operator should see them: a limit hit
  // usually means a shared device or a bad identifier in a source.
  pipeline.events.on('ingest:committed', ({ workspaceId, unit }) => {
    for (const l of unit.log) {
      if (l.outcome === 'refused_limit') log.warn({ workspaceId, customerId: l.customerId, otherId: l.otherId, messageId: l.messageId, detail: l.detail }, 'identity limit reached');
      else if (l.outcome === 'refused_conflict') log.info({ workspaceId, customerId: l.customerId, otherId: l.otherId, messageId: l.messageId, detail: l.detail }, 'merge refused: unique identity conflict');
    }
  });
  // Time-driven segment changes: due customers are claimed under the same workspace lock as ingest.
  const sweeper = new SegmentSweeper(
    {
      store,
      clock,
      log,
      model: async (id) => {
        try {
          return (await workspaces.get(id)).model;
        } catch (err) {
          log.warn({ err, workspaceId: id }, 'segment sweep skipped a workspace');
          return undefined;
        }
      },
    },
    { intervalMs: config.sweepIntervalMs },
  );
  if (opts.sweep !== false) sweeper.start();
  // PostgreSQL: analyze the hot tables as they grow (planner-stats.ts); SQLite needs nothing.
  const plannerStats = new PeriodicRunner(() => analyzeGrownTables(store), {
    intervalMs: store.dialect.name === 'postgres' && opts.sweep !== false ? PLANNER_STATS_INTERVAL_MS : 0,
    onError: (err) => log.warn({ err }, 'analyzing grown tables failed; PostgreSQL autovacuum still does it'),
  });
  plannerStats.start();
  // Channels: links are signed per workspace (CAIRN_LINK_SECRET, else a key kept in the database,
  // so links survive restarts and verify on every process); one breaker per process.
  const channels = createChannelServices({ db: store.db, clock, linkSecret: config.linkSecret, outboundAllowPrivate: config.outboundAllowPrivate });
  // Delivery: the outbox is delivered and deferred messages re-gated by the dispatcher.
  const delivery = new DeliveryService(
    {
      store,
      clock,
      log,
      workspace: (id) => workspaces.get(id),
      publicUrl: config.publicUrl,
      signer: (workspaceId) => channels.links.signerFor(workspaceId),
    },
    { intervalMs: config.dispatchIntervalMs, arbitrationWindowMs: config.arbitrationWindowMs, maxAttempts: config.deliveryMaxAttempts },
  );
  registerBuiltinAdapters(delivery.registry, { db: store.db, services: channels });
  delivery.dispatcher.events.on('listener:error', ({ event, error }) => log.error({ err: error, event }, 'lifecycle listener failed'));
  if (opts.dispatch !== false && opts.sweep !== false) delivery.start();
  // Journeys: every unit of work takes the workspace's profile lock, as ingest does.
  const journeys = new JourneyEngine(
    {
      store,
      clock,
      log,
      workspace: async (id) => {
        try {
          return await workspaces.get(id);
        } catch (err) {
          log.warn({ err, workspaceId: id }, 'journeys skipped a workspace');
          return undefined;
        }
      },
      workspaceIds: async () => (await listWorkspaces(store.db)).map((w) => w.id),
      enqueue: (trx, _store, ws, customer, requests, now, content) => delivery.enqueue(trx, ws, customer, requests, now, content),
    },
    { intervalMs: config.journeyIntervalMs, batchSize: config.journeyBatchSize, lookbackMs: config.journeyLookbackMs },
  );
  journeys.events.on('listener:error', ({ event, error }) => log.error({ err: error, event }, 'lifecycle listener failed'));
  pipeline.events.on('ingest:committed', (c) => journeys.onCommitted(c));
  if (opts.sweep !== false) await journeys.start();
  // Journey webhook steps: signed with a secret derived from the workspace's link key (links.ts).
  const webhooks = new JourneyWebhookSender(
    { store, clock, log, outbound: channels.outbound, secret: async (id) => journeyWebhookSecret(await channels.links.keyFor(id)) },
    { intervalMs: config.dispatchIntervalMs, maxAttempts: config.deliveryMaxAttempts },
  );
  webhooks.events.on('listener:error', ({ event, error }) => log.error({ err: error, event }, 'lifecycle listener failed'));
  if (opts.dispatch !== false && opts.sweep !== false) webhooks.start();
  return {
    config,
    clock,
    log,
    store,
    workspaces,
    keys,
    pipeline,
    sweeper,
    delivery,
    channels,
    journeys,
    webhooks,
    async close() {
      await webhooks.close();
      await delivery.close();
      await sweeper.stop();
      await plannerStats.close();
      await pipeline.close();
      // After ingest drained: applies the events it committed last, then records a clean stop.
      await journeys.stop();
      await store.destroy();
    },
  };
}

/**
 * The writer thread for a SQLite file when asked for (CAIRN_INGEST_WRITER=thread), or by default
 * (`auto`) when the machine has at least 4 cores; inline otherwise. The thread only pays off with a
 * spare core: on 2 cores shared with the load generator it measured the same events/s as inline at
 * ~25 µs more CPU per event (copying events between threads). It needs the compiled script, so runs
 * from the TypeScript sources (tests) stay inline.
 */
function ingestWriter(config: Config, store: Store, log: Logger): ThreadCommitter | undefined {
  if (config.ingestWriter === 'inline') return undefined;
  if (config.ingestWriter === 'auto' && availableParallelism() < 4) return undefined;
  const sqliteFile = store.dialect.name === 'sqlite' && !config.databaseUrl.includes(':memory:');
  if (!sqliteFile || !writerThreadAvailable()) {
    if (config.ingestWriter === 'thread') log.warn({ engine: store.dialect.name }, 'CAIRN_INGEST_WRITER=thread needs a SQLite file and the built dist/; ingest runs inline');
    return undefined;
  }
  log.debug('ingest commits run in the SQLite writer thread');
  return new ThreadCommitter({ databaseUrl: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous, dedupeWindowMs: config.dedupeWindowMs }, (fn) => store.exclusive(fn));
}

/** How often a PostgreSQL server looks for hot tables that doubled since the last ANALYZE. */
const PLANNER_STATS_INTERVAL_MS = 10_000;

export const DEMO_WORKSPACE = 'demo';

export interface DemoCredentials {
  workspace: string;
  writeKey: string;
  secretKey: string;
}

/**
 * Makes sure the demo workspace exists with the configured blueprint and returns its keys. The
 * secret key is shown once by design; for the demo it is kept beside the SQLite file (mode 0600)
 * so every start can print it. Returns `created` on the first start.
 */
export async function ensureDemoWorkspace(rt: Runtime): Promise<DemoCredentials & { created: boolean }> {
  const source = readFileSync(rt.config.blueprintPath, 'utf8');
  await upsertWorkspace(rt.store.db, rt.clock, DEMO_WORKSPACE, source, rt.config.blueprintPath);
  rt.workspaces.forget(DEMO_WORKSPACE);
  const credFile = demoCredentialsPath(rt.config);
  const existing = (await listKeys(rt.store.db, DEMO_WORKSPACE)).filter((k) => k.revokedAt === null);
  if (credFile && existsSync(credFile)) {
    const saved = JSON.parse(readFileSync(credFile, 'utf8')) as DemoCredentials;
    if (existing.some((k) => k.display === saved.writeKey)) return { ...saved, created: false };
  }
  const write = existing.find((k) => k.kind === 'write') ? undefined : await createKey(rt.store.db, rt.clock, DEMO_WORKSPACE, 'write', 'web');
  const secret = await createKey(rt.store.db, rt.clock, DEMO_WORKSPACE, 'secret', 'demo-admin');
  const creds: DemoCredentials = {
    workspace: DEMO_WORKSPACE,
    writeKey: write?.key ?? (existing.find((k) => k.kind === 'write')?.display as string),
    secretKey: secret.key,
  };
  if (credFile) {
    mkdirSync(dirname(credFile), { recursive: true });
    writeFileSync(credFile, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  }
  return { ...creds, created: existing.length === 0 };
}

/** data/demo-credentials.json beside a SQLite file; none for PostgreSQL (keys are printed once). */
function demoCredentialsPath(config: Config): string | undefined {
  if (/^postgres(ql)?:/i.test(config.databaseUrl) || config.databaseUrl.includes(':memory:')) return undefined;
  return resolve(dirname(resolve(config.databaseUrl.replace(/^sqlite:(\/\/)?/i, ''))), 'demo-credentials.json');
}
