import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from './helpers/stores.js';
import { basicAuth, CairnServer, ensureBuilt, provisionWorkspace } from './helpers/process.js';

/**
 * PRODUCT §6: "A crash at any moment loses no acknowledged event and causes no duplicate."
 *
 * A real `cairn serve` process takes sustained traffic from concurrent clients (single track calls
 * and small batches, every message with its own messageId). Each client retries the very same
 * request body on any failure (connection refused or reset, 5xx) until it gets a 200. Meanwhile
 * the server is killed with SIGKILL several times, at moments tied to the traffic's progress plus
 * a random jitter, and restarted on the same database. Afterwards the database must hold every
 * acknowledged messageId exactly once.
 */

const CLIENTS = 8;
const PER_CLIENT = 400;
const USERS_PER_CLIENT = 10;
const KILLS = 5;
const TOTAL = CLIENTS * PER_CLIENT;
const WORKSPACE = 'demo';
/** The write key is named `web` in both setups, so that is the source of every event. */
const SOURCE = 'web';
/**
 * Bounds a run that cannot make progress (the server never comes back): clients give up after
 * this. An idle 2-core box needs ~12 s per engine; the margin is for a box shared with other
 * test runs and benchmarks, where each restart alone can take several seconds.
 */
const CLIENT_DEADLINE_MS = 150_000;

class Fatal extends Error {}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  accepted: number;
  duplicates: number;
}

interface Stats {
  requests: number;
  attempts: number;
  networkErrors: number;
  serverErrors: number;
  resends: number;
  /** Messages whose first acknowledgement said "duplicate": committed by an attempt whose answer a kill cut off. */
  committedBeforeKill: number;
}

beforeAll(ensureBuilt, 120_000);

describe.each(ENGINES)('kill -9 during sustained ingest ($name)', (engine) => {
  let server: CairnServer | undefined;
  let cleanup: (() => Promise<void>) | undefined;

  afterAll(async () => {
    await server?.kill('SIGKILL');
    await cleanup?.();
  });

  it(
    `keeps every acknowledged event exactly once across ${KILLS} SIGKILLs`,
    async () => {
      const fresh = await engine.freshUrl();
      cleanup = fresh.cleanup;
      const started = Date.now();

      // SQLite: the product default (`npm start`): demo workspace, keys in demo-credentials.json,
      // CAIRN_SQLITE_SYNCHRONOUS left at its default (FULL), group commits in the writer thread (the
      // default on 4+ cores; forced here so a kill can land between its commit and the reply).
      // PostgreSQL: workspace and keys via the CLI.
      let writeKey: string;
      let secretKey: string;
      if (engine.name === 'sqlite') {
        server = await CairnServer.start({ databaseUrl: fresh.url, env: { CAIRN_DEMO: 'true', CAIRN_DEMO_CUSTOMERS: '0', CAIRN_INGEST_WRITER: 'thread' } });
        const creds = JSON.parse(readFileSync(join(dirname(fresh.url), 'demo-credentials.json'), 'utf8')) as { workspace: string; writeKey: string; secretKey: string };
        expect(creds.workspace).toBe(WORKSPACE);
        writeKey = creds.writeKey;
        secretKey = creds.secretKey;
      } else {
        ({ writeKey, secretKey } = await provisionWorkspace(fresh.url, { workspace: WORKSPACE, source: SOURCE }));
        server = await CairnServer.start({ databaseUrl: fresh.url });
      }
      const srv = server;
      const auth = basicAuth(writeKey);

      const acked = new Set<string>();
      const sent = new Set<string>();
      const perUser = new Map<string, number>();
      const stats: Stats = { requests: 0, attempts: 0, networkErrors: 0, serverErrors: 0, resends: 0, committedBeforeKill: 0 };
      let inflight = 0;
      let failure: unknown;
      let waiters: { n: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
      const notify = (): void => {
        waiters = waiters.filter((w) => {
          if (failure !== undefined) w.reject(failure);
          else if (acked.size >= w.n) w.resolve();
          else return true;
          return false;
        });
      };
      const acksReach = (n: number): Promise<void> =>
        new Promise((resolve, reject) => {
          waiters.push({ n, resolve, reject });
          notify();
        });

      /** POSTs one body until a 200 comes back; the body (and so every messageId in it) never changes. */
      const deliver = async (path: string, body: string, count: number): Promise<Outcome> => {
        for (let attempt = 0; ; attempt++) {
          stats.attempts++;
          inflight++;
          try {
            const res = await fetch(`${srv.url}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(20_000) });
            const text = await res.text();
            if (res.status === 200) {
              const r = JSON.parse(text) as { success: boolean; duplicate?: boolean; accepted?: number; duplicates?: number; rejected?: number };
              if (path === '/v1/track') return r.duplicate ? { accepted: 0, duplicates: 1 } : { accepted: 1, duplicates: 0 };
              if (r.rejected !== 0 || (r.accepted ?? 0) + (r.duplicates ?? 0) !== count) throw new Fatal(`batch of ${count} answered ${text}`);
              return { accepted: r.accepted ?? 0, duplicates: r.duplicates ?? 0 };
            }
            if (res.status < 500) throw new Fatal(`${path} answered ${res.status}: ${text}`);
            stats.serverErrors++;
          } catch (e) {
            if (e instanceof Fatal) throw e;
            stats.networkErrors++; // refused while down, reset by the kill, or the body cut off
          } finally {
            inflight--;
          }
          if (Date.now() - started > CLIENT_DEADLINE_MS) throw new Fatal(`no acknowledgement for ${path} within ${CLIENT_DEADLINE_MS} ms; server output:\n${srv.output()}`);
          // Capped exponential backoff with jitter, as a real client retries (not a timing assertion).
          await pause(Math.min(250, 10 * 2 ** attempt) * (0.5 + Math.random() / 2));
        }
      };

      const client = async (c: number): Promise<void> => {
        let seq = 0;
        let request = 0;
        while (seq < PER_CLIENT) {
          // 40% single track calls, 60% batches of 2–12 messages.
          const size = Math.random() < 0.4 ? 1 : Math.min(PER_CLIENT - seq, 2 + Math.floor(Math.random() * 11));
          const messages = Array.from({ length: size }, () => {
            const i = seq++;
            const userId = `crash-c${c}-u${i % USERS_PER_CLIENT}`;
            return { type: 'track', userId, event: 'Crash Probe', messageId: `crash-c${c}-m${i}`, properties: { client: c, seq: i } };
          });
          for (const m of messages) sent.add(m.messageId);
          const single = size === 1;
          const path = single ? '/v1/track' : '/v1/batch';
          const body = JSON.stringify(single ? messages[0] : { batch: messages });
          stats.requests++;
          stats.committedBeforeKill += (await deliver(path, body, size)).duplicates;
          for (const m of messages) {
            if (acked.has(m.messageId)) throw new Fatal(`${m.messageId} acknowledged twice`);
            acked.add(m.messageId);
            perUser.set(m.userId, (perUser.get(m.userId) ?? 0) + 1);
          }
          notify();
          // Every 15th request is sent once more, as a client that lost the acknowledgement would:
          // whatever crashed in between, the server must answer "all duplicates".
          if (++request % 15 === 0) {
            stats.resends++;
            const again = await deliver(path, body, size);
            expect(again, `resend of ${messages[0]?.messageId}…`).toEqual({ accepted: 0, duplicates: size });
          }
        }
      };

      const kills: { afterAcks: number; inflight: number; restartMs: number }[] = [];
      const killer = async (): Promise<void> => {
        for (let k = 1; k <= KILLS; k++) {
          await acksReach(Math.floor((TOTAL * k) / (KILLS + 1)));
          await pause(Math.random() * 250); // a random moment, not a timing assertion
          const at = { afterAcks: acked.size, inflight };
          const t0 = Date.now();
          await srv.kill('SIGKILL');
          await srv.restart();
          kills.push({ ...at, restartMs: Date.now() - t0 });
        }
      };

      const clients = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c))).catch((e: unknown) => {
        failure = e;
        notify();
        throw e;
      });
      await Promise.all([clients, killer()]);
      const trafficMs = Date.now() - started;

      // One more SIGKILL right after the last acknowledgement, then a restart on the same database.
      await srv.kill('SIGKILL');
      await srv.restart();

      expect(kills).toHaveLength(KILLS);
      expect(sent.size).toBe(TOTAL);
      expect(acked.size).toBe(TOTAL);
      // The kills hit live traffic: some requests failed and were retried.
      expect(stats.networkErrors + stats.serverErrors).toBeGreaterThan(0);

      // The server came back with the data: each customer's timeline (through the API) holds
      // exactly the events acknowledged for them.
      const timeline = async (userId: string): Promise<string[]> => {
        const ids: string[] = [];
        let cursor: string | null = null;
        do {
          const res = await fetch(`${srv.url}/v1/profiles/user_id:${userId}/events?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${secretKey}` } });
          expect(res.status).toBe(200);
          const page = (await res.json()) as { items: { messageId: string; name: string; source: string }[]; nextCursor: string | null };
          for (const e of page.items) {
            expect(e.name).toBe('Crash Probe');
            expect(e.source).toBe(SOURCE);
            ids.push(e.messageId);
          }
          cursor = page.nextCursor;
        } while (cursor);
        return ids;
      };
      for (const c of [0, CLIENTS - 1]) {
        const user = `crash-c${c}-u3`;
        const ids = await timeline(user);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(perUser.get(user));
      }

      // The database itself, read directly.
      const q = engine.name === 'sqlite' ? sqliteQuery(fresh.url) : await postgresQuery(fresh.url);
      try {
        const rows = await q.all<{ m: string; n: number }>(`select message_id as m, count(*) as n from events where workspace_id = '${WORKSPACE}' and source = '${SOURCE}' group by message_id`);
        const stored = new Map(rows.map((r) => [r.m, Number(r.n)]));
        expect(rows.filter((r) => Number(r.n) !== 1), 'messageIds stored more than once').toEqual([]);
        expect([...acked].filter((m) => !stored.has(m)), 'acknowledged but missing').toEqual([]);
        expect([...stored.keys()].filter((m) => !sent.has(m)), 'stored but never sent').toEqual([]);
        expect(stored.size).toBe(acked.size);
        const [total] = await q.all<{ n: number }>(`select count(*) as n from events where workspace_id = '${WORKSPACE}'`);
        expect(Number(total?.n)).toBe(TOTAL);
        // Every event belongs to a stored customer.
        const [orphans] = await q.all<{ n: number }>(
          `select count(*) as n from events e where e.workspace_id = '${WORKSPACE}' and not exists (select 1 from customers c where c.workspace_id = e.workspace_id and c.id = e.customer_id)`,
        );
        expect(Number(orphans?.n)).toBe(0);
        // One profile per user id, none split or lost.
        const [users] = await q.all<{ n: number }>(`select count(distinct customer_id) as n from identities where workspace_id = '${WORKSPACE}' and kind = 'user_id' and value like 'crash-%'`);
        expect(Number(users?.n)).toBe(CLIENTS * USERS_PER_CLIENT);
      } finally {
        await q.close();
      }

      await srv.stop();
      const summary = {
        engine: engine.name,
        kills: kills.length + 1,
        starts: srv.starts,
        messages: TOTAL,
        acknowledged: acked.size,
        requests: stats.requests,
        resends: stats.resends,
        committedBeforeKill: stats.committedBeforeKill,
        attempts: stats.attempts,
        failedAttempts: stats.networkErrors + stats.serverErrors,
        trafficMs,
        totalMs: Date.now() - started,
        killsAt: kills.map((k) => `${k.afterAcks} acked, ${k.inflight} in flight, back in ${k.restartMs} ms`),
      };
      console.log(`crash test summary ${JSON.stringify(summary, null, 2)}`);
    },
    180_000,
  );
});

interface Query {
  all<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

function sqliteQuery(file: string): Query {
  const db = new Database(file, { fileMustExist: true });
  return {
    all: async <T>(sql: string) => db.prepare(sql).all() as T[],
    close: async () => void db.close(),
  };
}

async function postgresQuery(url: string): Promise<Query> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    all: async <T>(sql: string) => (await c.query(sql)).rows as T[],
    close: () => c.end(),
  };
}
