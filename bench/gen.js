// Realistic Segment-style messages for the ingest benchmarks: a shop's browser SDK traffic.
//
// A population grows as the run goes: `newShare` (20 %) of the events come from a visitor seen for
// the first time (a new profile is created), the rest from returning visitors, biased towards
// recent ones (their profile is loaded, updated and written back). A visitor's first event is an
// anonymous page view; it signs up (identify with userId, anonymousId and traits, sometimes
// $consent) now and then, and from then on its events carry userId too, like analytics.js after a
// sign-up; known users re-identify rarely (`identifyShare`). About one event in six is an
// identify. Events are 420–580 bytes of JSON (median ~490).
// Every messageId is unique (a run prefix plus a counter), so nothing is deduplicated.

const CATEGORIES = ['shoes', 'jackets', 'bags', 'accessories', 'outdoor', 'kids', 'sale'];
const CITIES = ['Berlin', 'Munich', 'Hamburg', 'Vienna', 'Zurich', 'Amsterdam', 'Lyon', 'Milan'];
const FIRST = ['Ana', 'Ben', 'Chloe', 'Dario', 'Eva', 'Farid', 'Greta', 'Hiro', 'Ines', 'Jonas', 'Kemal', 'Lena'];
const AGENTS = ['Mozilla/5.0 (Macintosh) Safari/605.1.15', 'Mozilla/5.0 (Windows NT 10.0) Chrome/126.0', 'Mozilla/5.0 (iPhone) Mobile/15E148'];

/** The seeded generator the demo uses (mulberry32), so two runs send the same shapes. */
import { rng } from '../dist/planning/index.js';

export { rng };

/**
 * @param {{ prefix: string, seed?: number, newShare?: number, identifyShare?: number }} opts
 *   prefix makes messageIds and user ids unique across runs and processes.
 */
export function createGenerator(opts) {
  const r = rng(opts.seed ?? 1);
  const newShare = opts.newShare ?? 0.2;
  const identifyShare = opts.identifyShare ?? 0.05;
  const prefix = opts.prefix;
  let users = 0; // visitors created so far: index k has anon-<prefix>-<k> and, once seen, u-<prefix>-<k>
  const seen = new Uint8Array(1 << 22); // 0 = never sent, 1 = sent anonymously, 2 = identified
  let seq = 0;
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const baseTime = Date.now() - 3_600_000;

  /** One message; timestamps spread over the last hour. */
  function next() {
    let k;
    if (users === 0 || r() < newShare || users >= seen.length) {
      k = users < seen.length ? users++ : Math.floor(r() * users);
    } else {
      // Returning visitors, biased towards recent ones (like real traffic).
      const span = Math.min(users, 50_000);
      k = users - 1 - Math.floor(r() * r() * span);
    }
    const state = seen[k];
    const known = state === 2;
    const anonymousId = `anon-${prefix}-${k}`;
    const userId = `u-${prefix}-${k}`;
    const messageId = `${prefix}-${++seq}`;
    const timestamp = new Date(baseTime + Math.floor(r() * 3_500_000)).toISOString();
    const category = pick(CATEGORIES);
    const context = {
      library: { name: 'analytics.js', version: '5.2.0' },
      userAgent: AGENTS[k % AGENTS.length],
      ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
      locale: 'de-DE',
      page: { path: `/c/${category}`, referrer: 'https://www.google.com/' },
    };
    if (state === 0) {
      seen[k] = 1;
      return { type: 'page', anonymousId, messageId, timestamp, name: 'Category', properties: { category, path: `/c/${category}`, title: `${category} | Example Shop` }, context };
    }
    // Sign-up: an anonymous visitor identifies now and then; known users re-identify rarely.
    if ((state === 1 && r() < 0.4) || (state === 2 && r() < identifyShare)) {
      seen[k] = 2;
      const first = FIRST[k % FIRST.length];
      const traits = { email: `${first.toLowerCase()}.${prefix}.${k}@example.com`, first_name: first, city: CITIES[k % CITIES.length], plan: r() < 0.2 ? 'plus' : 'basic', newsletter: r() < 0.5 };
      if (r() < 0.2) traits.$consent = { marketing: { email: r() < 0.7 ? 'granted' : 'denied', wording_version: 'signup-2026-01' } };
      return { type: 'identify', userId, anonymousId, messageId, timestamp, traits, context };
    }
    const x = r();
    if (x < 0.7) {
      const sku = `${category}-${Math.floor(r() * 500)}`;
      return { type: 'track', event: 'Product Viewed', ...(known ? { userId } : {}), anonymousId, messageId, timestamp, properties: { product_id: sku, sku, category, name: `Product ${sku}`, price: 20 + Math.floor(r() * 180), currency: 'EUR' }, context };
    }
    if (x < 0.85) {
      return { type: 'track', event: 'Product Added', ...(known ? { userId } : {}), anonymousId, messageId, timestamp, properties: { product_id: `${category}-${Math.floor(r() * 500)}`, category, quantity: 1 + Math.floor(r() * 3), price: 20 + Math.floor(r() * 180) }, context };
    }
    return {
      type: 'track',
      event: 'Order Completed',
      ...(known ? { userId } : {}),
      anonymousId,
      messageId,
      timestamp,
      properties: { order_id: `${prefix}-o${seq}`, revenue: Math.round((30 + r() * 250) * 100) / 100, currency: 'EUR', category, products: [{ product_id: `${category}-${Math.floor(r() * 500)}`, quantity: 1 }] },
      context,
    };
  }

  return {
    next,
    batch(n) {
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = next();
      return out;
    },
    get users() {
      return users;
    },
  };
}
