/** Helpers for untrusted JSON values. */
import { CairnError } from './errors.js';
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Split paths, by path text. Paths come from blueprints (identity keys, computed traits, exclude
 * rules) and are read several times per ingested event; splitting each time allocated an array and
 * its parts per read. Bounded, in case a caller passes ever-new paths.
 */
const splitPaths = new Map<string, readonly string[]>();
const MAX_SPLIT_PATHS = 4096;

function pathParts(path: string): readonly string[] {
  let parts = splitPaths.get(path);
  if (parts === undefined) {
    parts = path.split('.');
    if (splitPaths.size < MAX_SPLIT_PATHS) splitPaths.set(path, parts);
  }
  return parts;
}

/** Reads a dotted path ("ticket.requester.email", "items.0.sku") from a JSON value. */
export function getPath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of pathParts(path)) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      const i = Number(part);
      if (!Number.isInteger(i)) return undefined;
      cur = cur[i];
    } else if (typeof cur === 'object') {
      if (!Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
      cur = (cur as Record<string, unknown>)[part];
    } else {
      return undefined;
    }
  }
  return cur;
}

/** Deterministic JSON text (keys sorted) for tie-breaks and hashing. */
export function stableStringify(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const keys = Object.keys(v as object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** Closest candidate by edit distance, for "did you mean" hints; undefined when nothing is close. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min((prev[j] as number) + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

/**
 * Adds to `out` the string and number ids found at a path given as segments; lists met on the way
 * are searched element by element (`products.sku` finds every product's sku). What exclude-item
 * rules read from an event's properties.
 */
export function collectIdsAt(value: unknown, path: readonly string[], out: Set<string>, at = 0): void {
  if (Array.isArray(value)) {
    for (const x of value) collectIdsAt(x, path, out, at);
    return;
  }
  if (at === path.length) {
    if (typeof value === 'string' || typeof value === 'number') out.add(String(value));
    return;
  }
  if (value && typeof value === 'object') collectIdsAt(getPath(value, path[at] as string), path, out, at + 1);
}

/**
 * Keyset paging cursors over (time, id), as the timeline and the decision log list newest first:
 * opaque base64url text. A cursor that does not decode is CAIRN_ERR_BAD_CURSOR (400).
 */
export function encodeCursor(at: number, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && Number.isSafeInteger(v[0]) && typeof v[1] === 'string' && !v[1].includes('\u0000')) return [v[0] as number, v[1]];
  } catch {
    // fall through
  }
  throw new CairnError('CAIRN_ERR_BAD_CURSOR', { cursor });
}
