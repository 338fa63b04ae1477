import { stableStringify } from '../core/index.js';

/** A trait value with the event time it was set at and the source that set it. */
export interface TraitValue {
  v: unknown;
  /** Event time (ms), not arrival time: last write wins by when it happened. */
  ts: number;
  src: string;
}

export type Traits = Record<string, TraitValue>;

/**
 * True when `b` should replace `a`. Later event time wins; equal times are broken by a total order
 * on (value, source) so that applying the same writes in any order gives the same profile.
 */
export function wins(b: TraitValue, a: TraitValue | undefined): boolean {
  if (a === undefined) return true;
  if (b.ts !== a.ts) return b.ts > a.ts;
  const bk = stableStringify(b.v) + '\u0000' + b.src;
  const ak = stableStringify(a.v) + '\u0000' + a.src;
  return bk > ak;
}

export function applyTrait(traits: Traits, key: string, value: TraitValue): boolean {
  if (!wins(value, traits[key])) return false;
  traits[key] = value;
  return true;
}

/** Merges `from` into `into` key by key (commutative and idempotent). */
export function mergeTraits(into: Traits, from: Traits): void {
  for (const [k, v] of Object.entries(from)) applyTrait(into, k, v);
}

/** Plain values, for API responses and conditions. */
export function traitValues(traits: Traits): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Object.keys, not Object.entries: the same own keys in the same order without a [key, value]
  // array per trait (this runs for every evaluated profile; a recompute evaluates them all).
  const keys = Object.keys(traits);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    out[k] = (traits[k] as TraitValue).v;
  }
  return out;
}
