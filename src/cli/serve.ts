import type { Runtime } from '../runtime.js';
import { ensureDemoWorkspace, DEMO_WORKSPACE } from '../runtime.js';
import { buildApp } from '../server/index.js';
import { seedDemo } from '../planning/index.js';
import { countProfiles } from '../profiles/index.js';
import { listWorkspaces, type Workspace } from '../governance/index.js';

/**
 * Starts the HTTP server; with the demo enabled, makes sure the demo workspace, its keys and its
 * generated customers exist, and prints how to talk to it. SIGINT/SIGTERM drain in-flight
 * requests and the ingest queue before the process exits.
 */
export async function serve(rt: Runtime, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<{ close: () => Promise<void>; url: string }> {
  let demo: Awaited<ReturnType<typeof ensureDemoWorkspace>> | undefined;
  if (rt.config.demo) {
    demo = await ensureDemoWorkspace(rt);
    const ws = await rt.workspaces.get(DEMO_WORKSPACE);
    if ((await countProfiles(rt.store.db, DEMO_WORKSPACE)) === 0 && rt.config.demoCustomers > 0) {
      const r = await seedDemo(rt.pipeline, rt.clock, { id: ws.id, model: ws.model }, rt.config.demoCustomers);
      rt.log.info(r, 'demo customers generated');
    }
  }
  await checkChannels(rt);
  const app = await buildApp(rt);
  await app.listen({ host: rt.config.host, port: rt.config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : rt.config.port;
  const url = `http://${rt.config.host.includes(':') ? `[${rt.config.host}]` : rt.config.host}:${port}`;

  out('');
  out(`Cairn is running at ${url}  (storage: ${rt.store.dialect.name} ${rt.store.dialect.displayUrl})`);
  out(`  OpenAPI:   ${url}/openapi.json`);
  if (demo) {
    out(`  Workspace: ${demo.workspace} (blueprint ${rt.config.blueprintPath})`);
    out(`  Write key: ${demo.writeKey}   (public: send events)`);
    out(`  Secret key: ${demo.secretKey}   (server side: read profiles)`);
    out('');
    out('  Try:');
    out(`    curl -u ${demo.writeKey}: ${url}/v1/track -H 'content-type: application/json' \\`);
    out(`      -d '{"userId":"u1001","event":"Product Viewed","properties":{"category":"shoes"}}'`);
    out(`    curl -H 'authorization: Bearer ${demo.secretKey}' ${url}/v1/profiles/user_id:u1001`);
    // The decide example needs the demo shop's placement; a custom CAIRN_BLUEPRINT may not have it.
    const placement = [...(await rt.workspaces.get(demo.workspace)).model.placements.keys()][0];
    if (placement !== undefined) {
      out(`    curl -u ${demo.writeKey}: ${url}/v1/decide -H 'content-type: application/json' \\`);
      out(`      -d '{"userId":"u1001","placement":"${placement}"}'`);
    }
  }
  out('');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const timer = setTimeout(() => {
        rt.log.warn('shutdown timeout: closing remaining connections');
        app.server.closeAllConnections();
      }, rt.config.shutdownTimeoutMs);
      timer.unref();
      await app.close(); // stops accepting, waits for in-flight requests (new ones get 503)
      await rt.close(); // drains the ingest queue, then closes storage
      clearTimeout(timer);
    })();
    return closing;
  };
  return { close, url };
}

/**
 * Verifies every workspace's channel providers at start (rt.delivery.verifyChannels): each channel
 * whose adapter is missing or whose settings do not verify is logged as a warning and marked down,
 * so new messages pass it over (CHANNEL_UNAVAILABLE, with fallback to the next channel) instead of
 * failing one by one at the provider. Returns the problems found.
 */
export async function checkChannels(rt: Runtime): Promise<number> {
  let n = 0;
  for (const { id } of await listWorkspaces(rt.store.db)) {
    let ws: Workspace;
    try {
      ws = await rt.workspaces.get(id);
    } catch (err) {
      rt.log.warn({ err, workspaceId: id }, 'channels not checked: the workspace could not be loaded');
      continue;
    }
    for (const p of await rt.delivery.verifyChannels(ws)) {
      n++;
      rt.log.warn({ workspaceId: id, channel: p.channel, provider: p.provider, path: p.path, code: p.error.code, reason: p.reason }, `channel ${p.channel} is unavailable: ${p.error.message}`);
    }
  }
  return n;
}
