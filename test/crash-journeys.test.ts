import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { upsertWorkspace, createKey } from '../src/governance/index.js';
import { systemClock } from '../src/core/index.js';
import { ENGINES } from './helpers/stores.js';
import { basicAuth, ensureBuilt, freePort, ROOT } from './helpers/process.js';

/**
 * Issue 5: "kill -9 between the provider call and the ledger write, repeatedly → no duplicate send
 * reaches the provider, no timer is lost."
 *
 * A real server process (the runtime and app from dist/, with one provider adapter registered the
 * way a third party would: test/fixtures/journeys/crash-server.mjs) runs a journey of two sends
 * with waits between them for N customers entered by API. A fake SMS provider answers after a
 * delay (so kills land while calls are in flight, i.e. between the provider call and the ledger
 * write) and, like real providers with idempotency keys, answers a repeated Idempotency-Key with
 * the first result without counting a new send. The server is SIGKILLed several times and
 * restarted on the same database. Afterwards: every instance reached its exit step, every wait
 * fired exactly once, the provider saw exactly one new send per message key, and the ledger holds
 * one sent row per key.
 */

const N = 40;
const KILLS = 4;
const WORKSPACE = 'crash';
const SERVER = join(ROOT, 'test', 'fixtures', 'journeys', 'crash-server.mjs');

const BLUEPRINT = `version: 1
workspace:
  name: Journey crash
channels:
  - name: sms
    type: sms
    provider:
      name: crashprov
journeys:
  - name: crash
    entry:
      type: api
    steps:
      - id: first
        type: send
        channel: sms
        message:
          message_class: transactional
          content:
            sms:
              body: "first {{ profile.id }}"
      - id: pause
        type: wait
        duration: 1s
      - id: second
        type: send
        channel: sms
        message:
          message_class: transactional
          content:
            sms:
              body: "second {{ profile.id }}"
      - id: rest
        type: wait
        duration: 1s
      - id: done
        type: exit
        reason: done
`;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The fake provider: counts new sends per Idempotency-Key; a repeated key gets the first answer. */
class FakeProvider {
  readonly byId = new Map<string, { sid: string; key: string; count: number }>();
  readonly newSendsByKey = new Map<string, number>();
  requests = 0;
  server: Server | undefined;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        this.requests++;
        const id = String(req.headers['idempotency-key'] ?? '');
        const key = String(req.headers['x-message-key'] ?? '');
        let hit = this.byId.get(id);
        if (hit) hit.count++;
        else {
          hit = { sid: `SM${this.byId.size + 1}`, key, count: 1 };
          this.byId.set(id, hit);
          this.newSendsByKey.set(key, (this.newSendsByKey.get(key) ?? 0) + 1);
        }
        const answer = hit;
        // A slow provider: the kill often lands while this call is in flight.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ sid: answer.sid }));
        }, 20 + Math.random() * 60);
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/messages`;
  }
  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

class Proc {
  child: ChildProcess | undefined;
  out: string[] = [];
  constructor(
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}
  async start(): Promise<void> {
    const child = spawn(process.execPath, [SERVER], { cwd: ROOT, env: { ...process.env, ...this.env, PORT: String(this.port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => this.out.push(d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready:\n${this.out.join('')}`)), 60_000);
      child.stdout?.on('data', (d: Buffer) => {
        this.out.push(d.toString());
        if (d.toString().includes('READY')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = undefined;
        reject(new Error(`server exited (${code ?? signal}) before ready:\n${this.out.join('')}`));
      });
    });
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
    this.child = undefined;
  }
}

beforeAll(ensureBuilt, 120_000);

describe.each(ENGINES)('kill -9 during journey sends ($name)', (engine) => {
  const provider = new FakeProvider();
  let proc: Proc | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await proc?.kill();
    await provider.stop();
    await cleanup?.();
  });

  it(
    `sends every message once and fires every wait across ${KILLS} SIGKILLs`,
    async () => {
      const fresh = await engine.freshUrl();
      cleanup = fresh.cleanup;
      const store = openStore(fresh.url, { sqliteSynchronous: 'NORMAL' });
      await store.migrate();
      await upsertWorkspace(store.db, systemClock, WORKSPACE, BLUEPRINT, 'crash.yaml');
      const write = (await createKey(store.db, systemClock, WORKSPACE, 'write', 'web')).key;
      const secret = (await createKey(store.db, systemClock, WORKSPACE, 'secret', 'e2e')).key;
      await provider.start();
      proc = new Proc(await freePort(), {
        CAIRN_DATABASE_URL: fresh.url,
        CAIRN_DEMO: 'false',
        CAIRN_LOG_LEVEL: 'error',
        CAIRN_SWEEP_INTERVAL: 'off',
        CAIRN_ARBITRATION_WINDOW: '0',
        CAIRN_DISPATCH_INTERVAL: '50ms',
        CAIRN_JOURNEY_INTERVAL: '50ms',
        PROVIDER_URL: provider.url,
      });
      const srv = proc;
      await srv.start();
      const base = `http://127.0.0.1:${srv.port}`;
      /** POSTs until a 2xx, retrying through kills (the body, and so its idempotency key, never changes). */
      const post = async (path: string, auth: string, body: unknown): Promise<unknown> => {
        for (let attempt = 0; attempt < 2000; attempt++) {
          try {
            const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
            const text = await res.text();
            if (res.status < 300) return JSON.parse(text) as unknown;
            if (res.status < 500) throw new Error(`${path} answered ${res.status}: ${text}`);
          } catch (e) {
            if (e instanceof Error && e.message.includes('answered')) throw e;
          }
          await pause(50);
        }
        throw new Error(`${path}: no answer`);
      };
      const users = Array.from({ length: N }, (_, i) => `c${i}`);
      await post('/v1/batch', basicAuth(write), { batch: users.map((u) => ({ type: 'identify', userId: u, messageId: `id-${u}`, traits: { phone: `+4915100000${String(users.indexOf(u)).padStart(3, '0')}` } })) });

      // Entries (idempotent by key) and kills run at the same time.
      const entries = (async () => {
        for (const u of users) {
          const r = (await post(`/v1/journeys/crash/enter`, `Bearer ${secret}`, { userId: u, key: `enter-${u}` })) as { entered: boolean; reason?: string };
          expect(r.entered || r.reason === 'DUPLICATE').toBe(true);
        }
      })();
      for (let k = 0; k < KILLS; k++) {
        await pause(300 + Math.random() * 700);
        await srv.kill();
        await srv.start();
      }
      await entries;
      // A message a kill cut off mid-send stays `sending` until the dispatcher's lease (5 minutes)
      // runs out. Fast-forward those leases instead of waiting them out, then start once more: the
      // dispatcher claims them again and re-sends with the same outbox id (Idempotency-Key).
      await srv.kill();
      await store.db.updateTable('messages').set({ due_at: 0 }).where('workspace_id', '=', WORKSPACE).where('status', '=', 'sending').execute();
      await srv.start();

      // Then let it finish: every instance ends, every message is sent.
      const db = store.db;
      const deadline = Date.now() + 40_000;
      let ended = 0;
      let sent = 0;
      while (Date.now() < deadline) {
        ended = (await db.selectFrom('journey_instances').select('id').where('workspace_id', '=', WORKSPACE).where('status', '!=', 'active').execute()).length;
        sent = (await db.selectFrom('messages').select('id').where('workspace_id', '=', WORKSPACE).where('status', '=', 'sent').execute()).length;
        if (ended === N && sent === 2 * N) break;
        await pause(100);
      }
      await srv.kill();

      const instances = await db.selectFrom('journey_instances').select(['id', 'status', 'exit_reason', 'step', 'wait_kind', 'due_at']).where('workspace_id', '=', WORKSPACE).execute();
      const stuck = instances.filter((i) => i.status !== 'exited' || i.exit_reason !== 'done');
      const notSent = (await db.selectFrom('messages').selectAll().where('workspace_id', '=', WORKSPACE).where('status', '!=', 'sent').execute()).slice(0, 3);
      expect({ stuck: stuck.slice(0, 3), notSent, out: stuck.length ? srv.out.join('').slice(-2000) : '' }).toEqual({ stuck: [], notSent: [], out: '' });
      expect(instances).toHaveLength(N);
      expect(instances.every((i) => i.status === 'exited' && i.exit_reason === 'done')).toBe(true);
      // No timer lost: each instance resumed from both waits exactly once.
      const resumes = await db.selectFrom('journey_history').select(['instance_id', 'step']).where('workspace_id', '=', WORKSPACE).where('kind', '=', 'resume').execute();
      expect(resumes).toHaveLength(2 * N);
      expect(new Set(resumes.map((r) => `${r.instance_id}/${r.step}`)).size).toBe(2 * N);
      // One ledger row per key, all sent; the provider saw each key as a new send exactly once.
      const messages = await db.selectFrom('messages').select(['id', 'key', 'status']).where('workspace_id', '=', WORKSPACE).execute();
      expect(messages).toHaveLength(2 * N);
      expect(new Set(messages.map((m) => m.key)).size).toBe(2 * N);
      expect(messages.every((m) => m.status === 'sent')).toBe(true);
      expect(provider.newSendsByKey.size).toBe(2 * N);
      expect([...provider.newSendsByKey.values()].every((n) => n === 1)).toBe(true);
      for (const m of messages) expect(provider.byId.has(m.id)).toBe(true);
      // Report how often a kill cut a call off after the provider took it (a repeated key).
      const repeats = [...provider.byId.values()].filter((v) => v.count > 1).length;
      console.log(`[${engine.name}] ${KILLS} kills; ${provider.requests} provider requests for ${2 * N} messages; ${repeats} keys repeated after a kill (answered with the first result)`);
      await store.destroy();
    },
    120_000,
  );
});
