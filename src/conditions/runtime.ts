import { Failure, NeedsReference, bigintOf, celTypeOf, isPlainMap } from './values.js';

/**
 * Run-time operations of the compiled evaluator that are not operators: selects, index access,
 * the standard CEL functions conditions use (size, int, double, string, bool, timestamp) and the
 * string methods. Each follows the behaviour of @marcbachmann/cel-js for the values conditions
 * see; anything outside that (bytes, uints, durations, sets) asks for the reference interpreter.
 *
 * Results: a value, `undefined` for "no such key", or a Failure naming what went wrong.
 */

const hasOwn = Object.prototype.hasOwnProperty;

/** `o.key` on a dyn value: a map entry, else undefined. */
export function selectField(o: unknown, key: string): unknown {
  if (isPlainMap(o)) return hasOwn.call(o, key) ? o[key] : undefined;
  if (o instanceof Map) return (o as Map<unknown, unknown>).get(key);
  return undefined;
}

/** The lenient select of has(): like selectField, but timestamps are left to the reference. */
export function presentField(o: unknown, key: string): unknown {
  if (o instanceof Date) throw new NeedsReference('has() on a timestamp');
  return selectField(o, key);
}

/** `o[k]`: list element by int or double index, map entry by key. */
export function indexValue(o: unknown, k: unknown): unknown {
  if (Array.isArray(o)) {
    const i = typeof k === 'bigint' ? Number(k) : typeof k === 'number' ? k : NaN;
    if (Number.isNaN(i) && typeof k !== 'number') return undefined;
    const v: unknown = Number.isInteger(i) && i >= 0 ? o[i] : undefined;
    return v === undefined ? new Failure(`index out of bounds: ${String(k)}`) : v;
  }
  if (isPlainMap(o)) {
    if (typeof k === 'object' && k !== null) throw new NeedsReference('map index by a composite key');
    const key = String(k);
    return hasOwn.call(o, key) ? o[key] : undefined;
  }
  if (o instanceof Map) return (o as Map<unknown, unknown>).get(k);
  if (o instanceof Set) throw new NeedsReference('index into a set');
  return undefined;
}

/** Iteration range of a macro: list elements or map keys. */
export function rangeOf(o: unknown): readonly unknown[] | Failure {
  if (Array.isArray(o)) return o;
  if (o instanceof Set) return [...(o as Set<unknown>)];
  if (isPlainMap(o)) return Object.keys(o);
  if (o instanceof Map) return [...(o as Map<unknown, unknown>).keys()];
  return new Failure(`Expression of type '${celTypeOf(o)}' cannot be range of a comprehension (must be list, map, or dynamic).`);
}

function noOverload(fn: string, v: unknown): Failure {
  return new Failure(`found no matching overload for '${fn}(${celTypeOf(v)})'`);
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function celSize(v: unknown): unknown {
  if (typeof v === 'string') return bigintOf(codePoints(v));
  if (Array.isArray(v)) return bigintOf(v.length);
  if (isPlainMap(v)) return bigintOf(Object.keys(v).length);
  if (v instanceof Map || v instanceof Set) return bigintOf((v as Map<unknown, unknown>).size);
  if (v instanceof Uint8Array) throw new NeedsReference('size of bytes');
  return noOverload('size', v);
}

const MAX_INT = 9223372036854775807n;
const MIN_INT = -9223372036854775808n;

export function celInt(v: unknown): unknown {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : new Failure('int() type error: integer overflow');
  if (typeof v === 'string') {
    // Same acceptance as cel-js: no surrounding space, no hex, at most 20 characters, within int64.
    if (v !== v.trim() || v.length > 20 || v.includes('0x')) return new Failure('int() type error: cannot convert to int');
    let n: bigint;
    try {
      n = BigInt(v);
    } catch {
      return new Failure('int() type error: cannot convert to int');
    }
    return n <= MAX_INT && n >= MIN_INT ? n : new Failure('int() type error: cannot convert to int');
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainMap(v)) throw new NeedsReference(`int(${celTypeOf(v)})`);
  return noOverload('int', v);
}

export function celDouble(v: unknown): unknown {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (v === '' || v !== v.trim()) return new Failure('double() type error: cannot convert to double');
    switch (v.toLowerCase()) {
      case 'inf':
      case '+inf':
      case 'infinity':
      case '+infinity':
        return Infinity;
      case '-inf':
      case '-infinity':
        return -Infinity;
      case 'nan':
        return NaN;
      default: {
        const n = Number(v);
        return Number.isNaN(n) ? new Failure('double() type error: cannot convert to double') : n;
      }
    }
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainMap(v)) throw new NeedsReference(`double(${celTypeOf(v)})`);
  return noOverload('double', v);
}

export function celString(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'number':
      return v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
    default:
      if (v instanceof Uint8Array) throw new NeedsReference('string(bytes)');
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainMap(v) && !(v instanceof Date)) throw new NeedsReference(`string(${celTypeOf(v)})`);
      return noOverload('string', v);
  }
}

const TRUE_STRINGS = new Set(['1', 't', 'true', 'TRUE', 'True']);
const FALSE_STRINGS = new Set(['0', 'f', 'false', 'FALSE', 'False']);

export function celBool(v: unknown): unknown {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    if (TRUE_STRINGS.has(v)) return true;
    if (FALSE_STRINGS.has(v)) return false;
    return new Failure(`bool() conversion error: invalid string value "${v}"`);
  }
  return noOverload('bool', v);
}

const MIN_TS = -62135596800000;
const MAX_TS = 253402300799999;

export function celTimestamp(v: unknown): unknown {
  if (typeof v === 'string') {
    if (v.length < 20 || v.length > 30) return new Failure('timestamp() requires a string in ISO 8601 format');
    const d = new Date(v);
    const t = d.getTime();
    return t <= MAX_TS && t >= MIN_TS ? d : new Failure('timestamp() requires a string in ISO 8601 format');
  }
  if (typeof v === 'bigint') {
    const t = Number(v) * 1000;
    return t <= MAX_TS && t >= MIN_TS ? new Date(t) : new Failure('timestamp() requires a valid integer unix timestamp');
  }
  if (v instanceof Date) throw new NeedsReference('timestamp(timestamp)');
  return noOverload('timestamp', v);
}

/** String methods with string arguments: receiver and argument must both be strings. */
export function stringMethod(name: 'startsWith' | 'endsWith' | 'contains', s: unknown, arg: unknown): unknown {
  if (typeof s !== 'string' || typeof arg !== 'string') return new Failure(`found no matching overload for '${celTypeOf(s)}.${name}(${celTypeOf(arg)})'`);
  switch (name) {
    case 'startsWith':
      return s.startsWith(arg);
    case 'endsWith':
      return s.endsWith(arg);
    case 'contains':
      return s.includes(arg);
  }
}

export function stringTransform(name: 'lowerAscii' | 'upperAscii' | 'trim', s: unknown): unknown {
  if (typeof s !== 'string') return new Failure(`found no matching overload for '${celTypeOf(s)}.${name}()'`);
  // cel-js maps these to toLowerCase/toUpperCase/trim (not ASCII-only); the compiled form must agree.
  switch (name) {
    case 'lowerAscii':
      return s.toLowerCase();
    case 'upperAscii':
      return s.toUpperCase();
    case 'trim':
      return s.trim();
  }
}

/**
 * Why a regular expression is refused, or undefined when it is accepted. JavaScript regular
 * expressions backtrack, so a quantified group that itself holds an unbounded quantifier
 * (`(a+)+`, `(x*y)*`) or a backreference can take exponential time on a hostile string; CEL's
 * RE2 semantics never need either. This is the evaluation-time limit for `matches()`.
 */
export function unsafePattern(pattern: string): string | undefined {
  if (pattern.length > 1000) return 'the regular expression is longer than 1000 characters';
  if (/\\[1-9]|\\k</.test(pattern)) return 'backreferences are not allowed in regular expressions';
  // Walk the groups: does a group with an unbounded quantifier inside get an unbounded quantifier?
  const stack: boolean[] = [];
  let inner = false;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') {
      stack.push(inner);
      inner = false;
    } else if (c === ')') {
      if (stack.length === 0) continue; // unbalanced: the RegExp constructor reports it
      const groupHasUnbounded = inner;
      inner = stack.pop() ?? false;
      const next = pattern[i + 1];
      const unboundedAfter = next === '*' || next === '+' || (next === '{' && /^\{\d*,\}/.test(pattern.slice(i + 1)));
      if (groupHasUnbounded && unboundedAfter) return 'nested unbounded repetition (like (a+)+) is not allowed in regular expressions';
      if (groupHasUnbounded || unboundedAfter) inner = true;
    } else if (c === '*' || c === '+' || (c === '{' && /^\{\d*,\}/.test(pattern.slice(i)))) inner = true;
  }
  return undefined;
}

const MAX_PATTERNS = 256;

/** `s.matches(pattern)` for patterns only known at run time; compiled patterns are cached (bounded). */
export function matchesDynamic(cache: Map<string, RegExp | null>, s: unknown, pattern: unknown): unknown {
  if (typeof s !== 'string' || typeof pattern !== 'string') return new Failure(`found no matching overload for '${celTypeOf(s)}.matches(${celTypeOf(pattern)})'`);
  let re = cache.get(pattern);
  if (re === undefined) {
    const unsafe = unsafePattern(pattern);
    if (unsafe !== undefined) return new Failure(unsafe);
    try {
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    if (cache.size >= MAX_PATTERNS) cache.clear();
    cache.set(pattern, re);
  }
  return re === null ? new Failure(`Invalid regular expression: ${pattern}`) : re.test(s);
}
