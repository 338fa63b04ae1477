import { parseDuration } from '../core/index.js';
import type { CounterRequest } from './functions.js';
import type { CounterSpec } from './types.js';

type Scalar = string | number | boolean;

function scalar(v: unknown): Scalar | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Filter values as the profile engine matches them: each property → sorted, distinct allowed values. */
export function normalizeWhere(where: Readonly<Record<string, unknown>>): Record<string, (string | number | boolean)[]> {
  const out: Record<string, Scalar[]> = {};
  for (const path of Object.keys(where).sort()) {
    const raw = where[path];
    const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
    const seen = new Map<string, Scalar>();
    for (const item of list) {
      const s = scalar(item);
      if (s !== undefined) seen.set(JSON.stringify(s), s);
    }
    out[path] = [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, s]) => s);
  }
  return out;
}

/**
 * The spec and stable key of a counter. Equal requests give equal keys however they were spelled:
 * the window is keyed in milliseconds ("1w" and "7d" are one counter), filters by sorted property
 * and sorted values. The key is JSON, so no event or property name can make two specs collide.
 */
export function counterSpec(req: CounterRequest): CounterSpec {
  const windowMs = req.window !== undefined ? parseDuration(req.window) : undefined;
  const where = req.where !== undefined && Object.keys(req.where).length > 0 ? normalizeWhere(req.where) : undefined;
  const key = JSON.stringify([req.kind, req.event, req.property ?? null, windowMs ?? null, where ?? null]);
  const spec: { -readonly [K in keyof CounterSpec]: CounterSpec[K] } = { key, kind: req.kind, event: req.event };
  if (req.property !== undefined) spec.property = req.property;
  if (req.window !== undefined && windowMs !== undefined) {
    spec.window = req.window;
    spec.windowMs = windowMs;
  }
  if (where !== undefined) spec.where = where;
  return Object.freeze(spec);
}
