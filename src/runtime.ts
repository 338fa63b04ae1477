import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock, type Config } from './core/index.js';
import { openStore, type Store } from './store/index.js';
import { KeyResolver, WorkspaceRegistry, createKey, upsertWorkspace, listKeys } from './governance/index.js';
import { IngestPipeline } from './ingest/index.js';

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
  close(): Promise<void>;
}

export async function createRuntime(config: Config, opts: { clock?: Clock; log?: Logger; migrate?: boolean } = {}): Promise<Runtime> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? pino({ level: config.logLevel, base: { service: 'cairn' } });
  const store = openStore(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  if (opts.migrate !== false) {
    const applied = await store.migrate();
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  }
  const workspaces = new WorkspaceRegistry(store.db, clock);
  const keys = new KeyResolver(store.db, clock);
  const pipeline = new IngestPipeline(store, workspaces, clock, log, { maxBatch: config.ingestMaxBatch, dedupeWindowMs: config.dedupeWindowMs });
  pipeline.events.on('listener:error', ({ event, error }) => log.error({ err: error, event }, 'lifecycle listener failed'));
  // Refused merges are not errors for the sender, but an operator should see them: a limit hit
  // usually means a shared device or a bad identifier in a source.
  pipeline.events.on('ingest:committed', ({ workspaceId, unit }) => {
    for (const l of unit.log) {
      if (l.outcome === 'refused_limit') log.warn({ workspaceId, customerId: l.customerId, otherId: l.otherId, messageId: l.messageId, detail: l.detail }, 'identity limit reached');
      else if (l.outcome === 'refused_conflict') log.info({ workspaceId, customerId: l.customerId, otherId: l.otherId, messageId: l.messageId, detail: l.detail }, 'merge refused: unique identity conflict');
    }
  });
  return {
    config,
    clock,
    log,
    store,
    workspaces,
    keys,
    pipeline,
    async close() {
      await pipeline.close();
      await store.destroy();
    },
  };
}

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
