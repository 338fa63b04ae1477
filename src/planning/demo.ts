import { DAY, HOUR, MINUTE, type Clock } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { ingestMessages, type IngestPipeline } from '../ingest/index.js';

/**
 * A synthetic population for the demo workspace (examples/demo/blueprint.yaml): shoppers who browse
 * anonymously, sign up, put things in the cart, order, return, open support tickets and give or
 * refuse consent, over the last 90 days. Seeded, so two demos with the same seed look alike.
 *
 * The first five customers are written out (SHOWCASE) so the README and the quick-start test can
 * name them; the rest are drawn at random.
 */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Ana', 'Ben', 'Chloé', 'Dario', 'Eva', 'Farid', 'Greta', 'Hiro', 'Ines', 'Jonas', 'Kemal', 'Lena', 'Mateo', 'Nora', 'Oskar', 'Priya'];
const LAST = ['Schmidt', 'Rossi', 'Nowak', 'Larsen', 'García', 'Okafor', 'Müller', 'Dubois', 'Silva', 'Kowalski', 'Tanaka', 'Novak'];
const CATEGORIES = ['shoes', 'jackets', 'bags', 'accessories', 'outdoor'];
const CITIES = ['Berlin', 'Munich', 'Hamburg', 'Vienna', 'Zurich', 'Amsterdam'];

/** One product: `shoes-3` is the same pair in views, carts, orders and refunds. */
interface Item {
  sku: string;
  category: string;
  price: number;
}

/** Everything one customer does, with times (epoch ms, all before `now`); turned into messages by `emit`. */
interface Script {
  first: string;
  last: string;
  city: string;
  plan: 'basic' | 'plus';
  views: { at: number; item: Item }[];
  signup?: { at: number; marketing: 'granted' | 'denied' };
  orders: { at: number; item: Item; refundedAt?: number }[];
  ticket?: { openedAt: number; solvedAt?: number };
  /** A cart left behind: Product Added at this time with no order after it. */
  cart?: { at: number; item: Item };
}

const item = (category: string, n: number, price: number): Item => ({ sku: `${category}-${n}`, category, price });

/**
 * The customers the README and test/quickstart.test.ts talk about, relative to `now`:
 * - u1000 a VIP: four orders in 60 days, a shoe browser → `vip_early_access` on home_hero;
 * - u1001 Lena Larsen: subscribed, browses shoes, has not ordered → `welcome_discount`;
 * - u1002 a first buyer waiting on a support ticket → marketing paused, `ticket_care` for the agent;
 * - u1003 returned a pair of shoes (`shoes-2`) → never promoted to them again;
 * - u1004 left a cart ten minutes ago → in the `cart_recovery` journey as soon as the demo starts.
 */
const SHOWCASE: ((now: number) => Script)[] = [
  (now) => ({
    first: 'Mateo',
    last: 'Rossi',
    city: 'Munich',
    plan: 'plus',
    views: [40, 20, 8, 3].map((d, i) => ({ at: now - d * DAY, item: item('shoes', i + 1, 119) })),
    signup: { at: now - 45 * DAY, marketing: 'granted' },
    orders: [42, 30, 18, 6].map((d, i) => ({ at: now - d * DAY + HOUR, item: item(i % 2 ? 'jackets' : 'shoes', i + 1, 129 + 20 * i) })),
  }),
  (now) => ({
    first: 'Lena',
    last: 'Larsen',
    city: 'Hamburg',
    plan: 'basic',
    views: [
      { at: now - 6 * DAY, item: item('shoes', 4, 89) },
      { at: now - 6 * DAY + 5 * MINUTE, item: item('bags', 2, 59) },
      { at: now - 2 * DAY, item: item('shoes', 4, 89) },
      { at: now - 2 * DAY + 3 * MINUTE, item: item('shoes', 7, 109) },
    ],
    signup: { at: now - 5 * DAY, marketing: 'granted' },
    orders: [],
  }),
  (now) => ({
    first: 'Jonas',
    last: 'Novak',
    city: 'Vienna',
    plan: 'basic',
    views: [{ at: now - 21 * DAY, item: item('outdoor', 3, 149) }],
    signup: { at: now - 20 * DAY, marketing: 'granted' },
    orders: [{ at: now - 10 * DAY, item: item('outdoor', 3, 149) }],
    ticket: { openedAt: now - 2 * DAY },
  }),
  (now) => ({
    first: 'Priya',
    last: 'Dubois',
    city: 'Zurich',
    plan: 'basic',
    views: [16, 14, 4].map((d) => ({ at: now - d * DAY, item: item('shoes', 2, 99) })),
    signup: { at: now - 16 * DAY, marketing: 'granted' },
    orders: [
      { at: now - 15 * DAY, item: item('shoes', 2, 99), refundedAt: now - 12 * DAY },
      { at: now - 5 * DAY, item: item('jackets', 5, 189) },
    ],
  }),
  (now) => ({
    first: 'Hiro',
    last: 'Tanaka',
    city: 'Berlin',
    plan: 'basic',
    views: [{ at: now - 3 * DAY, item: item('bags', 6, 79) }],
    signup: { at: now - 3 * DAY + 10 * MINUTE, marketing: 'granted' },
    orders: [],
    cart: { at: now - 10 * MINUTE, item: item('bags', 6, 79) },
  }),
];

/** A shopper drawn from `r`: mostly browsing, 70 % sign up, up to three orders, a few tickets and carts. */
function randomScript(r: () => number, now: number): Script {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const first = pick(FIRST);
  const last = pick(LAST);
  const city = pick(CITIES);
  const favourite = pick(CATEGORIES);
  const s: Script = { first, last, city, plan: r() < 0.2 ? 'plus' : 'basic', views: [], orders: [] };
  let t = now - Math.floor(r() * 85 * DAY) - DAY;
  const views = 1 + Math.floor(r() * 6);
  for (let v = 0; v < views; v++) {
    t += Math.floor(r() * 3 * HOUR);
    const category = r() < 0.6 ? favourite : pick(CATEGORIES);
    s.views.push({ at: t, item: item(category, 1 + Math.floor(r() * 8), 20 + Math.floor(r() * 180)) });
  }
  if (r() >= 0.7) return s;
  t += 10 * MINUTE;
  s.signup = { at: t, marketing: r() < 0.65 ? 'granted' : 'denied' };
  const orders = Math.floor(r() * 4);
  for (let o = 0; o < orders; o++) {
    t += HOUR + Math.floor(r() * 9 * DAY);
    if (t > now - 2 * HOUR) break;
    const order: Script['orders'][number] = { at: t, item: item(favourite, 1 + Math.floor(r() * 8), Math.round((30 + r() * 250) * 100) / 100) };
    if (r() < 0.15 && t + 2 * DAY < now - HOUR) order.refundedAt = t = t + 2 * DAY;
    s.orders.push(order);
  }
  if (r() < 0.2) {
    t += Math.floor(r() * 3 * DAY);
    if (t < now) {
      s.ticket = { openedAt: t };
      t += Math.floor(r() * 2 * DAY);
      if (t < now && r() < 0.7) s.ticket.solvedAt = t;
    }
  }
  // A cart left behind in the last hour: these customers enter the cart journey when the demo starts.
  if (r() < 0.06) s.cart = { at: now - (5 + Math.floor(r() * 40)) * MINUTE, item: item(favourite, 1 + Math.floor(r() * 8), 20 + Math.floor(r() * 180)) };
  return s;
}

/** The tracking messages of one customer, in the order they happened. */
function emit(c: number, s: Script, seed: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const anonymousId = `anon-demo-${seed}-${c}`;
  const userId = `u${1000 + c}`;
  const email = `${s.first}.${s.last}.${c}@example.com`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  const who = (at: number): Record<string, string> => (s.signup && at >= s.signup.at ? { userId } : { anonymousId });
  const base = (k: string, at: number): Record<string, unknown> => ({ ...who(at), messageId: `demo-${seed}-${c}-${k}`, timestamp: new Date(at).toISOString() });
  const product = (i: Item): Record<string, unknown> => ({ sku: i.sku, category: i.category, price: i.price });
  s.views.forEach((v, n) => {
    out.push({ type: 'page', ...base(`p${n}`, v.at), name: 'Product', properties: { category: v.item.category, path: `/p/${v.item.category}/${v.item.sku}` } });
    out.push({ type: 'track', ...base(`v${n}`, v.at), event: 'Product Viewed', properties: product(v.item) });
  });
  if (s.signup) {
    out.push({
      type: 'identify',
      userId,
      anonymousId,
      messageId: `demo-${seed}-${c}-signup`,
      timestamp: new Date(s.signup.at).toISOString(),
      traits: {
        email,
        first_name: s.first,
        last_name: s.last,
        city: s.city,
        plan: s.plan,
        $consent: { marketing: { email: s.signup.marketing, in_app: s.signup.marketing, wording_version: 'signup-2026-01' } },
      },
    });
  }
  s.orders.forEach((o, n) => {
    const orderId = `${userId}-${n}`;
    const line = [{ sku: o.item.sku, category: o.item.category, price: o.item.price, quantity: 1 }];
    out.push({ type: 'track', ...base(`a${n}`, o.at - 5 * MINUTE), event: 'Product Added', properties: product(o.item) });
    out.push({ type: 'track', ...base(`o${n}`, o.at), event: 'Order Completed', properties: { order_id: orderId, revenue: o.item.price, currency: 'EUR', category: o.item.category, products: line } });
    if (o.refundedAt !== undefined) {
      out.push({ type: 'track', ...base(`r${n}`, o.refundedAt), event: 'Order Refunded', properties: { order_id: orderId, refund_id: `R-${orderId}`, revenue: o.item.price, category: o.item.category, products: line } });
    }
  });
  if (s.ticket) {
    out.push({ type: 'track', ...base('t', s.ticket.openedAt), event: 'Ticket Opened', properties: { ticket_id: `T-${c}`, subject: 'Where is my parcel?', priority: 'normal' } });
    if (s.ticket.solvedAt !== undefined) out.push({ type: 'track', ...base('ts', s.ticket.solvedAt), event: 'Ticket Solved', properties: { ticket_id: `T-${c}` } });
  }
  if (s.cart) {
    out.push({ type: 'track', ...base('cv', s.cart.at - 2 * MINUTE), event: 'Product Viewed', properties: product(s.cart.item) });
    out.push({ type: 'track', ...base('ca', s.cart.at), event: 'Product Added', properties: product(s.cart.item) });
  }
  return out;
}

/** The demo's messages: the SHOWCASE customers first, then random ones, `customers` in all. */
export function demoMessages(customers: number, now: number, seed = 42): Record<string, unknown>[] {
  const r = rng(seed);
  const out: Record<string, unknown>[] = [];
  for (let c = 0; c < customers; c++) {
    const showcase = SHOWCASE[c];
    out.push(...emit(c, showcase ? showcase(now) : randomScript(r, now), seed));
  }
  return out;
}

/** Loads the synthetic population through the real ingest path (dedupe makes reruns harmless). */
export async function seedDemo(pipeline: IngestPipeline, clock: Clock, ws: { id: string; model: WorkspaceModel }, customers: number): Promise<{ accepted: number; duplicates: number; rejected: number }> {
  const messages = demoMessages(customers, clock.now());
  let accepted = 0;
  let duplicates = 0;
  let rejected = 0;
  for (let i = 0; i < messages.length; i += 2000) {
    const r = await ingestMessages(pipeline, clock, ws, 'demo', messages.slice(i, i + 2000));
    accepted += r.accepted;
    duplicates += r.duplicates;
    rejected += r.rejected;
  }
  return { accepted, duplicates, rejected };
}
