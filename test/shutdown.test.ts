import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { basicAuth, ensureBuilt, freePort, ROOT } from './helpers/process.js';

/**
 * `cairn serve` as `npm start` runs it, stopped with SIGTERM while requests are in flight: every
 * request answered 200 is stored, requests after the signal are refused (connection refused or
 * 503, never accepted), and the process exits 0.
 */

interface Outcome {
  status: number | undefined;
  error: string | undefined;
  /** When the answer (or the failure) arrived, from performance.now(). */
  at: number;
  messageIds: string[];
}

function post(port: number, agent: Agent | false, path: string, key: string, body: unknown, messageIds: string[]): Promise<Outcome> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length, authorization: basicAuth(key) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, error: undefined, at: performance.now(), messageIds }));
        res.on('error', (e) => resolve({ status: undefined, error: e.message, at: performance.now(), messageIds }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: undefined, error: e.code ?? e.message, at: performance.now(), messageIds }));
    req.end(payload);
  });
}

describe('graceful shutdown of cairn serve', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let port: number;
  let stdout = '';
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  const waitFor = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(stdout);
      if (m) return m;
      if (child?.exitCode !== null || Date.now() > deadline) throw new Error(`never saw ${re} (exit ${child?.exitCode}):\n${stdout}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'cairn-shutdown-'));
    port = await freePort();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_') && k !== 'PORT' && k !== 'HOST') env[k] = v;
    Object.assign(env, {
      CAIRN_DATABASE_URL: join(dir, 'cairn.db'),
      CAIRN_DEMO: 'true',
      CAIRN_DEMO_CUSTOMERS: '0',
      CAIRN_LOG_LEVEL: 'info',
      CAIRN_SQLITE_SYNCHRONOUS: 'NORMAL',
      HOST: '127.0.0.1',
      PORT: String(port),
    });
    child = spawn(process.execPath, [join(ROOT, 'bin', 'cairn.js'), 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stdout += d.toString()));
    const c = child;
    exit = new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints the write key and the OpenAPI URL on start, then drains in-flight requests on SIGTERM', async () => {
    // What `npm start` promises in the README: the demo write key and where the OpenAPI document is.
    const writeKey = (await waitFor(/Write key:\s+(\S+)/, 45_000))[1] as string;
    const openapi = (await waitFor(/OpenAPI:\s+(\S+)/, 1_000))[1] as string;
    expect(openapi).toBe(`http://127.0.0.1:${port}/openapi.json`);
    const doc = (await (await fetch(openapi)).json()) as { openapi?: string; paths?: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths ?? {})).toContain('/v1/track');

    // In flight: one large batch and many single track calls over 48 keep-alive connections.
    const agent = new Agent({ keepAlive: true, maxSockets: 48 });
    const batchIds = Array.from({ length: 1200 }, (_, i) => `batch-${i}`);
    const batch = {
      batch: batchIds.map((messageId, i) => ({ type: 'track', messageId, userId: `u${i % 97}`, event: 'Product Viewed', properties: { category: 'shoes', sku: `sku-${i}`, note: 'x'.repeat(120) } })),
    };
    const inflight: Promise<Outcome>[] = [post(port, agent, '/v1/batch', writeKey, batch, batchIds)];
    for (let i = 0; i < 400; i++) {
      const messageId = `track-${i}`;
      inflight.push(post(port, agent, '/v1/track', writeKey, { messageId, userId: `u${i % 53}`, event: 'Order Completed', properties: { revenue: i } }, [messageId]));
    }

    // Signal as soon as the server has answered anything: the rest are queued or being processed.
    await Promise.race(inflight);
    const signalledAt = performance.now();
    child?.kill('SIGTERM');

    // Once the server says it is draining, a new connection must not be accepted.
    await waitFor(/shutting down/, 15_000);
    const late = await Promise.all(Array.from({ length: 5 }, (_, i) => post(port, false, '/v1/track', writeKey, { messageId: `late-${i}`, userId: 'late', event: 'Too Late' }, [`late-${i}`])));

    const outcomes = await Promise.all(inflight);
    agent.destroy();
    const exited = await exit;
    expect(exited, stdout).toEqual({ code: 0, signal: null });

    for (const o of late) {
      expect(o.status === 503 || (o.status === undefined && o.error !== undefined), JSON.stringify(o)).toBe(true);
    }

    const ok = outcomes.filter((o) => o.status === 200);
    const other = outcomes.filter((o) => o.status !== 200);
    // Anything that was not accepted was refused cleanly, never failed with a server error.
    for (const o of other) expect(o.status === 503 || o.status === undefined, JSON.stringify(o)).toBe(true);
    expect(ok.length).toBeGreaterThan(0);
    // The drain is real: some requests were still being worked on when the signal went out.
    expect(ok.filter((o) => o.at > signalledAt).length, `no 200 arrived after SIGTERM; outcomes: ${outcomes.length}, ok: ${ok.length}`).toBeGreaterThan(0);

    // Every acknowledged message is stored, once.
    const acked = ok.flatMap((o) => o.messageIds);
    const store = openStore(join(dir, 'cairn.db'), { sqliteSynchronous: 'NORMAL' });
    try {
      const rows = await store.db.selectFrom('events').select(['message_id']).where('workspace_id', '=', 'demo').execute();
      const stored = rows.map((r) => r.message_id);
      const storedSet = new Set(stored);
      expect(acked.filter((id) => !storedSet.has(id))).toEqual([]);
      expect(stored.length).toBe(storedSet.size);
      expect(stored.filter((id) => id.startsWith('late-'))).toEqual([]);
    } finally {
      await store.destroy();
    }
  });
});
