import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, CairnServer, ensureBuilt, ROOT } from './helpers/process.js';

/**
 * The user's first hour: README.md's quick start, run as written against a real `cairn serve` that
 * starts the way `npm start` does (the demo workspace from examples/demo/blueprint.yaml, 200
 * generated customers, a fresh SQLite file, the keys in demo-credentials.json beside it).
 *
 * Every `curl` of the "## Quick start" section is parsed out of README.md and sent with its own
 * method, headers and body — only the placeholders WRITE_KEY, SECRET_KEY and the address are
 * replaced. Each command must have a check below: a new command in the README without one, or a
 * changed command, fails this file. The server runs on the real clock, so answers that appear
 * after a background step (journey entry from a segment, the outbox dispatcher) are polled for.
 */

interface Command {
  /** The command as written (backslash continuations joined). */
  text: string;
  method: 'GET' | 'POST';
  /** Path and query as in the README, e.g. /v1/profiles/user_id:u1001. */
  path: string;
  auth: 'write' | 'secret';
  body: unknown;
}

/** Splits a shell command line into words: single and double quotes, no expansions. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === "'" || ch === '"') {
      const end = line.indexOf(ch, i + 1);
      if (end < 0) throw new Error(`unclosed ${ch} in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The curl commands of README.md's "## Quick start" section, in order. */
function quickStartCommands(readme: string): Command[] {
  const start = readme.indexOf('\n## Quick start\n');
  expect(start, 'README.md has a "## Quick start" section').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const commands: Command[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = (block[1] as string).replace(/\\\n\s*/g, ' ').split('\n');
    for (const text of lines.map((l) => l.trim()).filter((l) => l.startsWith('curl '))) {
      const words = shellWords(text).slice(1);
      let auth: Command['auth'] | undefined;
      let body: unknown;
      let url: string | undefined;
      for (let i = 0; i < words.length; i++) {
        const w = words[i] as string;
        const arg = words[i + 1];
        if (w === '-u') {
          expect(arg, text).toBe('WRITE_KEY:');
          auth = 'write';
          i++;
        } else if (w === '-H') {
          if (arg === 'authorization: Bearer SECRET_KEY') auth = 'secret';
          else expect(arg, text).toBe('content-type: application/json');
          i++;
        } else if (w === '-d') {
          body = JSON.parse(arg as string);
          i++;
        } else if (w.startsWith('http://127.0.0.1:8080/')) url = w;
        else throw new Error(`README quick start: unexpected curl argument ${w} in: ${text}`);
      }
      expect(url, `a URL in: ${text}`).toBeDefined();
      expect(auth, `a key in: ${text}`).toBeDefined();
      commands.push({ text, method: body === undefined ? 'GET' : 'POST', path: (url as string).slice('http://127.0.0.1:8080'.length), auth: auth as Command['auth'], body });
    }
  }
  return commands;
}

/** An answer of the API; read field by field by the checks below. */
type Json = Record<string, any>;

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const COMMANDS = quickStartCommands(README);

beforeAll(ensureBuilt, 120_000);

describe('README quick start against `npm start` (demo workspace, 200 customers, fresh SQLite)', () => {
  let server: CairnServer | undefined;
  let dir: string | undefined;
  let keys: { writeKey: string; secretKey: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-quickstart-'));
    const databaseUrl = join(dir, 'cairn.db');
    // CAIRN_DEMO=true with the default customer count and blueprint: what `npm start` runs.
    server = await CairnServer.start({ databaseUrl, env: { CAIRN_DEMO: 'true' } });
    const creds = JSON.parse(readFileSync(join(dir, 'demo-credentials.json'), 'utf8')) as { workspace: string; writeKey: string; secretKey: string };
    expect(creds.workspace).toBe('demo');
    keys = creds;
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const send = async (method: 'GET' | 'POST', path: string, auth: 'write' | 'secret', body?: unknown): Promise<{ status: number; json: Json }> => {
    const srv = server as CairnServer;
    const headers: Record<string, string> = { authorization: auth === 'write' ? basicAuth(keys.writeKey) : `Bearer ${keys.secretKey}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${srv.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as Json };
  };
  const run = (c: Command): Promise<{ status: number; json: Json }> => send(c.method, c.path, c.auth, c.body);

  /** Repeats `c` until `check` passes (answers that wait on a background step), at most `ms`. */
  const eventually = async (c: Command, check: (json: Json) => void, ms = 15_000): Promise<Json> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await run(c);
      try {
        expect(r.status, c.text).toBe(200);
        check(r.json);
        return r.json;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };

  const ok = async (c: Command): Promise<Json> => {
    const r = await run(c);
    expect(r.status, `${c.text}\n→ ${JSON.stringify(r.json)}`).toBe(200);
    return r.json;
  };

  /** The check for each README command, by method and path (and event name for /v1/track). */
  const checks: { name: string; match: (c: Command) => boolean; check: (c: Command) => Promise<void> }[] = [
    {
      name: 'track Product Viewed for u1001',
      match: (c) => c.path === '/v1/track' && (c.body as Json).event === 'Product Viewed',
      check: async (c) => expect(await ok(c)).toEqual({ success: true }),
    },
    {
      name: 'the profile of u1001',
      match: (c) => c.method === 'GET' && c.path === '/v1/profiles/user_id:u1001',
      check: async (c) => {
        const p = await ok(c);
        expect(p.traits.first_name).toBe('Lena');
        expect(p.traits.email).toBe('lena.larsen.1@example.com');
        expect(p.computed.viewed_shoes_30d).toBeGreaterThanOrEqual(2);
        expect(p.identities.map((i: Json) => i.kind)).toEqual(expect.arrayContaining(['user_id', 'email', 'anonymous_id']));
      },
    },
    {
      name: 'the timeline by email',
      match: (c) => c.method === 'GET' && c.path.startsWith('/v1/profiles/email:lena.larsen.1@example.com/events'),
      check: async (c) => {
        const t = await ok(c);
        expect(t.items).toHaveLength(5);
        // Newest first: the Product Viewed the README sent a moment ago.
        expect(t.items[0].name).toBe('Product Viewed');
      },
    },
    {
      name: 'decide for u1001 with the write key',
      match: (c) => c.path === '/v1/decide' && (c.body as Json).explain === undefined,
      check: async (c) => {
        expect(c.auth).toBe('write');
        const d = await ok(c);
        expect(d.outcome).toBe('SELECTED');
        expect(d.placement).toBe('home_hero');
        expect(typeof d.decisionId).toBe('string');
        expect(d.customerId).toBeUndefined();
        expect(d.offers).toHaveLength(1);
        expect(d.offers[0]).toMatchObject({ offer: 'welcome_discount', rank: 1, score: 12 });
        expect(d.offers[0].content.headline).toBe('Welcome, Lena! 10 % off your first order');
        expect(d.offers[0].content.cta).toEqual({ label: 'Start shopping', url: 'https://shop.example/new' });
      },
    },
    {
      name: 'explain for u1001 with the secret key',
      match: (c) => c.path === '/v1/decide' && (c.body as Json).explain === true,
      check: async (c) => {
        expect(c.auth).toBe('secret');
        const d = await ok(c);
        expect(d.offers.map((o: Json) => o.offer)).toEqual(['welcome_discount']);
        const e = d.explanation;
        expect(e.customer).toMatchObject({ known: true, stage: 'visitor' });
        expect(e.customer.segments).toEqual(expect.arrayContaining(['shoe_lovers', 'subscribers']));
        const outcome = Object.fromEntries(e.candidates.map((x: Json) => [x.offer, x.outcome]));
        expect(outcome).toEqual({ new_collection: 'LOWER_PRIORITY', welcome_discount: 'SELECTED', vip_early_access: 'NOT_ELIGIBLE', shoe_week: 'LOWER_PRIORITY' });
        const vip = e.candidates.find((x: Json) => x.offer === 'vip_early_access');
        expect(vip.steps.at(-1)).toMatchObject({ step: 'stage', passed: false });
        // shoe_week loses on priority although the iOS context weight lifts its score to welcome's.
        const shoes = e.candidates.find((x: Json) => x.offer === 'shoe_week');
        expect(shoes.score).toBe(12);
      },
    },
    {
      name: 'identify a new subscriber u9001',
      match: (c) => c.path === '/v1/identify',
      check: async (c) => expect(await ok(c)).toEqual({ success: true }),
    },
    {
      name: 'track Product Added for u9001',
      match: (c) => c.path === '/v1/track' && (c.body as Json).event === 'Product Added',
      check: async (c) => expect(await ok(c)).toEqual({ success: true }),
    },
    {
      name: "u9001's journeys",
      match: (c) => c.method === 'GET' && c.path === '/v1/profiles/user_id:u9001/journeys',
      check: async (c) => {
        await eventually(c, (j) => {
          const byName = Object.fromEntries(j.items.map((i: Json) => [i.journey, i]));
          expect(Object.keys(byName).sort()).toEqual(['cart_recovery', 'welcome']);
          expect(byName.cart_recovery).toMatchObject({ status: 'active', currentStep: 'wait_for_order', waiting: { for: 'event' } });
          // The wait ends 30 minutes after entry.
          const until = Date.parse(byName.cart_recovery.waiting.until) - Date.parse(byName.cart_recovery.enteredAt);
          expect(until).toBe(30 * 60_000);
          expect(byName.welcome).toMatchObject({ status: 'active', currentStep: 'give_it_time', waiting: { for: 'time' } });
          const sent = byName.welcome.history.find((h: Json) => h.step === 'say_hello');
          expect(sent).toMatchObject({ kind: 'send', detail: { outcome: 'send', channel: 'in_app' } });
          expect(sent.detail.detail).toContain('email: planned');
        });
      },
    },
    {
      name: "u9001's messages",
      match: (c) => c.method === 'GET' && c.path === '/v1/profiles/user_id:u9001/messages',
      check: async (c) => {
        await eventually(c, (m) => {
          expect(m.items).toHaveLength(1);
          expect(m.items[0]).toMatchObject({ status: 'sent', channel: 'in_app', channels: ['email', 'in_app'], offer: 'welcome_discount', messageClass: 'marketing', journey: { name: 'welcome', step: 'say_hello' } });
          expect(m.items[0].detail).toContain('email: planned');
        });
      },
    },
    {
      name: "u9001's inbox",
      match: (c) => c.method === 'GET' && c.path.startsWith('/v1/inbox?userId=u9001'),
      check: async (c) => {
        expect(c.auth).toBe('write');
        const inbox = await eventually(c, (i) => expect(i.items).toHaveLength(1));
        expect(inbox.unread).toBe(1);
        expect(inbox.items[0]).toMatchObject({ channel: 'in_app', readAt: null, content: { headline: 'Welcome, Sam!' } });
        expect(inbox.items[0].content.body).toContain('WELCOME10');
        // The CTA is a tracked redirect to the offer's URL.
        expect(inbox.items[0].content.cta.label).toBe('Start shopping');
        expect(inbox.items[0].content.cta.url).toContain('/v1/r/');
      },
    },
    {
      name: 'track Order Completed for u9001, which ends the cart journey',
      match: (c) => c.path === '/v1/track' && (c.body as Json).event === 'Order Completed',
      check: async (c) => {
        expect(await ok(c)).toEqual({ success: true });
        const journeys = COMMANDS.find((x) => x.method === 'GET' && x.path === '/v1/profiles/user_id:u9001/journeys') as Command;
        await eventually(journeys, (j) => {
          const cart = j.items.find((i: Json) => i.journey === 'cart_recovery');
          expect(cart).toMatchObject({ status: 'exited', exitReason: 'Ordered within half an hour' });
          expect(cart.history.some((h: Json) => h.kind === 'send')).toBe(false);
        });
      },
    },
  ];

  it('parses the quick start: every curl has a check, in the order the README gives them', () => {
    expect(COMMANDS.length).toBe(checks.length);
    for (const c of COMMANDS) {
      const hits = checks.filter((k) => k.match(c));
      expect(hits.map((k) => k.name), `README command without exactly one check: ${c.text}`).toHaveLength(1);
    }
    expect(COMMANDS.map((c) => checks.find((k) => k.match(c))?.name)).toEqual(checks.map((k) => k.name));
  });

  it('answers every README command as the README says', async () => {
    for (const c of COMMANDS) {
      const k = checks.find((x) => x.match(c));
      if (!k) throw new Error(`no check for ${c.text}`);
      await k.check(c);
    }
  }, 60_000);

  it('has the customers the README names: a VIP, a paused ticket, a returned item, a cart in its journey', async () => {
    const decide = async (body: Json): Promise<Json> => {
      const r = await send('POST', '/v1/decide', 'secret', { ...body, explain: true });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json;
    };
    const outcomes = (d: Json): Record<string, string> => Object.fromEntries(d.explanation.candidates.map((x: Json) => [x.offer, x.outcome]));

    const vip = await decide({ userId: 'u1000', placement: 'home_hero' });
    expect(vip.offers.map((o: Json) => o.offer)).toEqual(['vip_early_access']);
    expect(vip.explanation.customer.segments).toContain('vip');

    const ticket = await decide({ userId: 'u1002', placement: 'home_hero' });
    expect(ticket.outcome).toBe('NO_ACTION');
    expect(outcomes(ticket).new_collection).toBe('SUPPRESSED');
    const agent = await decide({ userId: 'u1002', channel: 'service_desk' });
    expect(agent.offers.map((o: Json) => o.offer)).toEqual(['ticket_care']);

    const returned = await decide({ userId: 'u1003', placement: 'product_recs', context: { sku: 'shoes-2' } });
    expect(outcomes(returned).shoe_week).toBe('SUPPRESSED');
    expect(returned.offers.map((o: Json) => o.offer)).toEqual(['bestsellers']);
    const otherPair = await decide({ userId: 'u1003', placement: 'product_recs', context: { sku: 'shoes-5' } });
    expect(otherPair.offers.map((o: Json) => o.offer)).toEqual(['shoe_week', 'bestsellers']);

    const cart = await send('GET', '/v1/profiles/user_id:u1004/journeys', 'secret');
    expect(cart.json.items).toEqual([expect.objectContaining({ journey: 'cart_recovery', status: 'active', currentStep: 'wait_for_order' })]);

    // The generated population exercises every segment, and history loaded at start sent no welcome.
    const segments = await send('GET', '/v1/segments', 'secret');
    const size = Object.fromEntries(segments.json.items.map((s: Json) => [s.name, s.size]));
    for (const name of ['vip', 'shoe_lovers', 'open_ticket', 'subscribers', 'cart_abandoners']) expect(size[name], name).toBeGreaterThan(0);
    const lena = await send('GET', '/v1/profiles/user_id:u1001/journeys', 'secret');
    expect(lena.json.items).toEqual([]);
  });
});
