import { DAY, HOUR, MINUTE, type Clock } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { ingestMessages, type IngestPipeline } from '../ingest/index.js';

/**
 * A synthetic population for the demo workspace: shoppers who browse anonymously, sign up, order,
 * return, open support tickets and give or refuse consent, over the last 90 days. Seeded, so two
 * demos with the same seed look alike.
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

export function demoMessages(customers: number, now: number, seed = 42): Record<string, unknown>[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const out: Record<string, unknown>[] = [];
  for (let c = 0; c < customers; c++) {
    const anon = `anon-demo-${seed}-${c}`;
    const userId = `u${1000 + c}`;
    const first = pick(FIRST);
    const last = pick(LAST);
    const email = `${first}.${last}.${c}@example.com`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '');
    let t = now - Math.floor(r() * 85 * DAY) - DAY;
    const at = (): string => new Date(t).toISOString();
    const mid = (k: string): string => `demo-${seed}-${c}-${k}`;
    const favourite = pick(CATEGORIES);
    const views = 1 + Math.floor(r() * 6);
    for (let v = 0; v < views; v++) {
      t += Math.floor(r() * 3 * HOUR);
      const category = r() < 0.6 ? favourite : pick(CATEGORIES);
      out.push({ type: 'page', anonymousId: anon, name: 'Product', messageId: mid(`p${v}`), timestamp: at(), properties: { category, path: `/p/${category}/${v}` } });
      out.push({ type: 'track', anonymousId: anon, event: 'Product Viewed', messageId: mid(`v${v}`), timestamp: at(), properties: { category, sku: `${category}-${v}`, price: 20 + Math.floor(r() * 180) } });
    }
    if (r() < 0.7) {
      t += 10 * MINUTE;
      const consent = r() < 0.65 ? 'granted' : 'denied';
      out.push({
        type: 'identify',
        userId,
        anonymousId: anon,
        messageId: mid('signup'),
        timestamp: at(),
        traits: { email, first_name: first, last_name: last, city: pick(CITIES), plan: r() < 0.2 ? 'plus' : 'basic', $consent: { marketing: { email: consent, wording_version: 'signup-2026-01' } } },
      });
      const orders = Math.floor(r() * 4);
      for (let o = 0; o < orders; o++) {
        t += Math.floor(r() * 9 * DAY);
        if (t > now) break;
        const revenue = Math.round((30 + r() * 250) * 100) / 100;
        out.push({ type: 'track', userId, event: 'Order Completed', messageId: mid(`o${o}`), timestamp: at(), properties: { order_id: `${userId}-${o}`, revenue, currency: 'EUR', category: favourite } });
        if (r() < 0.15) {
          t += 2 * DAY;
          if (t > now) break;
          out.push({ type: 'track', userId, event: 'Order Refunded', messageId: mid(`r${o}`), timestamp: at(), properties: { order_id: `${userId}-${o}`, revenue, category: favourite } });
        }
      }
      if (r() < 0.2) {
        t += Math.floor(r() * 3 * DAY);
        if (t < now) out.push({ type: 'track', userId, event: 'Ticket Opened', messageId: mid('t'), timestamp: at(), properties: { ticket_id: `T-${c}`, subject: 'Where is my parcel?', priority: 'normal' } });
        t += Math.floor(r() * 2 * DAY);
        if (t < now && r() < 0.7) out.push({ type: 'track', userId, event: 'Ticket Solved', messageId: mid('ts'), timestamp: at(), properties: { ticket_id: `T-${c}` } });
      }
    }
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
