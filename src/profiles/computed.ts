import { getPath, isoTime, stableStringify } from '../core/index.js';
import type { ResolvedComputedTrait } from '../blueprint/index.js';

/**
 * Computed traits kept incrementally. Windowed counts and sums are stored as buckets (a day wide,
 * an hour for windows under a day) keyed by bucket index, so an event updates one number and a
 * read sums at most window/bucket numbers, never scanning history. Every operation here is also
 * how a bulk recompute folds history, and merge is commutative, so the incremental value, the
 * value after merges, and the recomputed value agree.
 */
export type ComputedState =
  | { b: Record<string, number> } // windowed count/sum: bucket index -> amount
  | { t: number } // unwindowed count/sum
  | { v: unknown; ts: number } // last
  | { p: Record<string, unknown>; ts: number } // last_event: properties of the newest matching event
  | { ts: number }; // first_seen / last_seen

export interface ComputedInput {
  type: string;
  name: string | null;
  ts: number;
  properties: Record<string, unknown> | undefined;
}

export function matches(def: ResolvedComputedTrait, e: ComputedInput): boolean {
  if (!def.types.includes(e.type)) return false;
  if (def.event !== undefined && e.name !== def.event) return false;
  for (const [path, allowed] of def.where) {
    const v = getPath(e.properties, path);
    if (!allowed.some((a) => a === v)) return false;
  }
  return true;
}

function amount(def: ResolvedComputedTrait, e: ComputedInput): number {
  if (def.kind === 'count') return 1;
  const raw = def.property ? getPath(e.properties, def.property) : undefined;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  return Number.isFinite(n) ? n : 0;
}

function firstBucket(def: ResolvedComputedTrait, now: number): number {
  const span = Math.ceil((def.windowMs as number) / def.bucketMs);
  return Math.floor(now / def.bucketMs) - span + 1;
}

/** Applies one matching event to a state (returns the new state; the input is not mutated). */
export function update(def: ResolvedComputedTrait, state: ComputedState | undefined, e: ComputedInput, now: number): ComputedState | undefined {
  switch (def.kind) {
    case 'count':
    case 'sum': {
      const a = amount(def, e);
      if (def.windowMs === undefined) return { t: ((state as { t?: number } | undefined)?.t ?? 0) + a };
      const idx = Math.floor(e.ts / def.bucketMs);
      if (idx < firstBucket(def, now)) return state; // already outside the window
      const b = { ...((state as { b?: Record<string, number> } | undefined)?.b ?? {}) };
      b[idx] = (b[idx] ?? 0) + a;
      return { b: prune(def, b, now) };
    }
    case 'last': {
      const v = def.property ? getPath(e.properties, def.property) : undefined;
      if (v === undefined) return state;
      const cur = state as { v: unknown; ts: number } | undefined;
      if (cur && (cur.ts > e.ts || (cur.ts === e.ts && stableStringify(cur.v) >= stableStringify(v)))) return cur;
      return { v, ts: e.ts };
    }
    case 'last_event': {
      const next = { p: e.properties ?? {}, ts: e.ts };
      const cur = state as { p: Record<string, unknown>; ts: number } | undefined;
      return cur && newerEvent(cur, next) === cur ? cur : next;
    }
    case 'first_seen': {
      const cur = state as { ts: number } | undefined;
      return cur && cur.ts <= e.ts ? cur : { ts: e.ts };
    }
    case 'last_seen': {
      const cur = state as { ts: number } | undefined;
      return cur && cur.ts >= e.ts ? cur : { ts: e.ts };
    }
  }
}

/**
 * The newer of two last_event states: later time wins; at equal times the greater properties by
 * stable JSON, so the result depends on neither arrival order nor merge order.
 */
function newerEvent<T extends { p: Record<string, unknown>; ts: number }>(a: T, b: T): T {
  if (a.ts !== b.ts) return a.ts > b.ts ? a : b;
  return stableStringify(a.p) >= stableStringify(b.p) ? a : b;
}

function prune(def: ResolvedComputedTrait, b: Record<string, number>, now: number): Record<string, number> {
  const first = firstBucket(def, now);
  for (const k of Object.keys(b)) if (Number(k) < first) delete b[k];
  return b;
}

/** Combines the states of two profiles being merged. */
export function merge(def: ResolvedComputedTrait, a: ComputedState | undefined, b: ComputedState | undefined, now: number): ComputedState | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  switch (def.kind) {
    case 'count':
    case 'sum': {
      if (def.windowMs === undefined) return { t: (a as { t: number }).t + (b as { t: number }).t };
      const out: Record<string, number> = { ...(a as { b: Record<string, number> }).b };
      for (const [k, v] of Object.entries((b as { b: Record<string, number> }).b)) out[k] = (out[k] ?? 0) + v;
      return { b: prune(def, out, now) };
    }
    case 'last': {
      const x = a as { v: unknown; ts: number };
      const y = b as { v: unknown; ts: number };
      if (x.ts !== y.ts) return x.ts > y.ts ? x : y;
      return stableStringify(x.v) >= stableStringify(y.v) ? x : y;
    }
    case 'last_event':
      return newerEvent(a as { p: Record<string, unknown>; ts: number }, b as { p: Record<string, unknown>; ts: number });
    case 'first_seen':
      return (a as { ts: number }).ts <= (b as { ts: number }).ts ? a : b;
    case 'last_seen':
      return (a as { ts: number }).ts >= (b as { ts: number }).ts ? a : b;
  }
}

/**
 * A condition counter's value as EvalInput.counter(key) returns it: count/sum a number, last_seen
 * epoch ms, last_event {ts, properties}; undefined when the event never happened.
 */
export function counterValue(def: ResolvedComputedTrait, state: ComputedState | undefined, now: number): unknown {
  switch (def.kind) {
    case 'last_seen':
    case 'first_seen':
      return state && 'ts' in state ? state.ts : undefined;
    case 'last_event':
      return state && 'p' in state ? { ts: state.ts, properties: state.p } : undefined;
    case 'last':
      return state && 'v' in state ? state.v : undefined;
    case 'count':
    case 'sum':
      return valueOf(def, state, now);
  }
}

/** The value a condition or the API sees at time `now`. Sums are rounded to 1e-6 so float addition order cannot show. */
export function valueOf(def: ResolvedComputedTrait, state: ComputedState | undefined, now: number): unknown {
  switch (def.kind) {
    case 'count':
    case 'sum': {
      let total = 0;
      if (state === undefined) return 0;
      if ('t' in state) total = state.t;
      else if ('b' in state) {
        const first = firstBucket(def, now);
        // for…in, not Object.entries: this runs for every windowed counter of every evaluation.
        const b = state.b;
        for (const k in b) if (Number(k) >= first) total += b[k] as number;
      }
      return def.kind === 'count' ? total : Math.round(total * 1e6) / 1e6;
    }
    case 'last':
      return state && 'v' in state ? state.v : null;
    case 'last_event':
      return state && 'p' in state ? { ts: state.ts, properties: state.p } : null;
    case 'first_seen':
    case 'last_seen':
      return state && 'ts' in state ? isoTime(state.ts) : null;
  }
}

/** Values of the declared computed traits (implicit condition counters are left out). */
export function computedValues(defs: readonly ResolvedComputedTrait[], states: Record<string, ComputedState>, now: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of defs) if (d.implicit !== true) out[d.name] = valueOf(d, states[d.name], now);
  return out;
}

/** Applies an event to every matching definition, in place. */
export function applyEvent(defs: readonly ResolvedComputedTrait[], states: Record<string, ComputedState>, e: ComputedInput, now: number): void {
  for (const d of defs) {
    if (!matches(d, e)) continue;
    const next = update(d, states[d.name], e, now);
    if (next !== undefined) states[d.name] = next;
  }
}

export function mergeStates(defs: readonly ResolvedComputedTrait[], into: Record<string, ComputedState>, from: Record<string, ComputedState>, now: number): void {
  for (const d of defs) {
    const m = merge(d, into[d.name], from[d.name], now);
    if (m !== undefined) into[d.name] = m;
  }
}
