import type { ConditionEvent, ConditionProfile, ValueType } from './types.js';

/**
 * CEL values at run time, in the representation @marcbachmann/cel-js uses, so that the compiled
 * evaluator and the reference interpreter see the same values:
 *   int → bigint, double → number, string, bool → boolean, null, list → Array, map → plain object
 *   (or Map), timestamp → Date. Durations and bytes only arise inside expressions.
 *
 * Profile data is JSON; `toCel` turns a JSON value into the CEL value of its declared type. A value
 * that does not fit its declared type, or JSON null, reads as absent: `has()` is false and a select
 * is a "no such key" error. Inside dyn values JSON numbers stay doubles (the CEL JSON mapping).
 */

/** An evaluation error as a value: `&&`/`||` may absorb it, anything else passes it up. */
export class CelError {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

/** The evaluation step budget ran out: aborts the whole evaluation, nothing absorbs it. */
export class BudgetExceeded extends Error {
  constructor(limit: number) {
    super(`evaluation step budget of ${limit} exceeded`);
    this.name = 'BudgetExceeded';
  }
}

/**
 * A run-time shape the compiled evaluator does not model (durations, list concatenation, sets …):
 * the condition is evaluated for this input by the reference interpreter instead, so correctness
 * never depends on what the compiler covers.
 */
export class NeedsReference extends Error {
  constructor(what: string) {
    super(`not compiled: ${what}`);
    this.name = 'NeedsReference';
  }
}

const MAX_INT = 9223372036854775807n;
const MIN_INT = -9223372036854775808n;

export function isPlainMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const c: unknown = (v as { constructor?: unknown }).constructor;
  return c === undefined || c === Object;
}

/** The CEL type name of a run-time value (for messages and dispatch). */
export function celTypeOf(v: unknown): string {
  switch (typeof v) {
    case 'bigint':
      return 'int';
    case 'number':
      return 'double';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v) || v instanceof Set) return 'list';
      if (v instanceof Map || isPlainMap(v)) return 'map';
      if (v instanceof Date) return 'timestamp';
      if (v instanceof Uint8Array) return 'bytes';
      return 'other';
    default:
      return 'other';
  }
}

/** Whether a run-time value fits a CEL type name as written in a function signature. */
export function fitsType(v: unknown, type: string): boolean {
  if (type === 'dyn') return true;
  if (type.startsWith('list')) return Array.isArray(v) || v instanceof Set;
  if (type.startsWith('map')) return v instanceof Map || isPlainMap(v);
  if (type === 'google.protobuf.Timestamp' || type === 'timestamp') return v instanceof Date;
  return celTypeOf(v) === type;
}

// BigInts for small counts, hours and ages, made once: creating a BigInt allocates, and these
// values are read on every evaluation.
const SMALL_INTS: readonly bigint[] = Array.from({ length: 4096 }, (_, i) => BigInt(i));

/** The CEL int of an integral number (caller guarantees Number.isInteger(n) and |n| < 2^63). */
export function bigintOf(n: number): bigint {
  return n >= 0 && n < 4096 ? (SMALL_INTS[n] as bigint) : BigInt(n);
}

function intOf(n: number): bigint | undefined {
  return Number.isInteger(n) && Math.abs(n) <= 9.2e18 ? bigintOf(n) : undefined;
}

function dateOf(v: unknown): Date | undefined {
  let ms: number;
  if (v instanceof Date) ms = v.getTime();
  else if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') ms = Date.parse(v);
  else return undefined;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms) : undefined;
}

/** JSON value → CEL value of the declared type; undefined when absent or not of that type. */
export function toCel(type: ValueType, v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  switch (type) {
    case 'string':
      return typeof v === 'string' ? v : undefined;
    case 'int':
      return typeof v === 'bigint' ? (v <= MAX_INT && v >= MIN_INT ? v : undefined) : typeof v === 'number' ? intOf(v) : undefined;
    case 'double':
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
    case 'bool':
      return typeof v === 'boolean' ? v : undefined;
    case 'timestamp':
      return dateOf(v);
    case 'list':
      return Array.isArray(v) ? v : undefined;
    case 'map':
      return isPlainMap(v) || v instanceof Map ? v : undefined;
    case 'dyn':
      return v;
  }
}

/** A converter per declared type, chosen once at compile time. */
export function converter(type: ValueType): (v: unknown) => unknown {
  switch (type) {
    case 'string':
      return (v) => (typeof v === 'string' ? v : undefined);
    case 'bool':
      return (v) => (typeof v === 'boolean' ? v : undefined);
    case 'dyn':
      return (v) => (v === null ? undefined : v);
    default:
      return (v) => toCel(type, v);
  }
}

/** The fields of the `event` variable. */
export const EVENT_FIELDS: Readonly<Record<string, ValueType>> = { name: 'string', type: 'string', properties: 'map', timestamp: 'timestamp' };
/** The fields of the `profile` variable. */
export const PROFILE_FIELDS: Readonly<Record<string, ValueType>> = { id: 'string', first_seen: 'timestamp', last_seen: 'timestamp' };

/** Reads one field of the event variable as CEL; undefined when absent. `properties` is {} when missing. */
export function eventField(e: ConditionEvent, field: string): unknown {
  switch (field) {
    case 'name':
      return typeof e.name === 'string' ? e.name : undefined;
    case 'type':
      return typeof e.type === 'string' ? e.type : undefined;
    case 'properties':
      return isPlainMap(e.properties) ? e.properties : {};
    case 'timestamp':
      return toCel('timestamp', e.timestamp);
    default:
      return undefined;
  }
}

export function profileField(p: ConditionProfile, field: string): unknown {
  switch (field) {
    case 'id':
      return typeof p.id === 'string' ? p.id : undefined;
    case 'first_seen':
      return toCel('timestamp', p.first_seen);
    case 'last_seen':
      return toCel('timestamp', p.last_seen);
    default:
      return undefined;
  }
}

/** A whole record of declared fields as CEL values, absent ones left out (for the reference interpreter). */
export function celRecord(fields: ReadonlyMap<string, ValueType> | Readonly<Record<string, ValueType>>, read: (name: string) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const entries = fields instanceof Map ? [...fields.entries()] : Object.entries(fields);
  for (const [name, type] of entries) {
    const v = toCel(type, read(name));
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export function ownValue(obj: Readonly<Record<string, unknown>> | null | undefined, key: string): unknown {
  return obj !== null && obj !== undefined && Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/**
 * Whether `obj[key]` can only find an own property of a plain object: true unless Object.prototype
 * has the name (toString, constructor, __proto__ …). Lets hot paths skip hasOwnProperty.
 */
export function isPlainKey(key: string): boolean {
  return !(key in Object.prototype);
}

/** A reader of one own property, chosen once per key: a plain load when that is safe. */
export function ownReader(key: string): (obj: Readonly<Record<string, unknown>> | null | undefined) => unknown {
  if (isPlainKey(key)) return (obj) => (obj === null || obj === undefined ? undefined : obj[key]);
  return (obj) => ownValue(obj, key);
}

/** Heterogeneous CEL equality as cel-js implements it: numbers compare across int/double, other kinds never equal. */
export function celEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  switch (typeof a) {
    case 'bigint':
      return typeof b === 'number' && Number.isInteger(b) && BigInt(b) === a;
    case 'number':
      return typeof b === 'bigint' && Number.isInteger(a) && BigInt(a) === b;
    case 'object': {
      if (a === null || typeof b !== 'object' || b === null) return false;
      if (Array.isArray(a)) {
        if (!Array.isArray(b)) {
          if (b instanceof Set) throw new NeedsReference('set equality');
          return false;
        }
        if (a.length !== b.length) return false;
        for (let i = 0; i < a.length; i++) if (!celEquals(a[i], b[i])) return false;
        return true;
      }
      if (isPlainMap(a)) {
        if (b instanceof Map) throw new NeedsReference('Map equality');
        if (!isPlainMap(b)) return false;
        const ka = Object.keys(a);
        if (ka.length !== Object.keys(b).length) return false;
        for (const k of ka) if (!(k in b) || !celEquals(a[k], b[k])) return false;
        return true;
      }
      if (a instanceof Date) return b instanceof Date ? a.getTime() === b.getTime() : b instanceof Map || b instanceof Set ? nr('equality') : false;
      throw new NeedsReference(`equality of ${celTypeOf(a)}`);
    }
    default:
      return false;
  }
}

function nr(what: string): never {
  throw new NeedsReference(what);
}

/**
 * `<`, `<=`, `>`, `>=` on run-time values: bool, int, double (int and double across), string,
 * timestamp. Returns undefined when no overload applies (the caller makes the error).
 */
export function celCompare(op: '<' | '<=' | '>' | '>=', a: unknown, b: unknown): boolean | undefined {
  const ta = typeof a;
  const tb = typeof b;
  let ok: boolean;
  if (ta === 'bigint' || ta === 'number') ok = tb === 'bigint' || tb === 'number';
  else if (ta === 'string' || ta === 'boolean') ok = ta === tb;
  else if (a instanceof Date) ok = b instanceof Date;
  else ok = false;
  if (!ok) {
    if (isOpaque(a) || isOpaque(b)) throw new NeedsReference('comparison');
    return undefined;
  }
  const x = a as number;
  const y = b as number;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

/** Values whose CEL semantics the compiled evaluator leaves to the reference (durations, uints, bytes, sets, Maps). */
function isOpaque(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainMap(v) && !(v instanceof Date);
}

/** Arithmetic on run-time values; a string is an error message when no overload applies. */
export function celArith(op: '+' | '-' | '*' | '/' | '%', a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    let r: bigint;
    switch (op) {
      case '+':
        r = a + b;
        break;
      case '-':
        r = a - b;
        break;
      case '*':
        r = a * b;
        break;
      case '/':
        if (b === 0n) return new Failure('division by zero');
        return a / b;
      case '%':
        if (b === 0n) return new Failure('modulo by zero');
        return a % b;
    }
    return r <= MAX_INT && r >= MIN_INT ? r : new Failure(`integer overflow: ${r}`);
  }
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        return a / b;
      case '%':
        return new Failure('no such overload: double % double');
    }
  }
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) throw new NeedsReference(`${celTypeOf(a)} ${op} ${celTypeOf(b)}`);
  if (isOpaque(a) || isOpaque(b) || a instanceof Date || b instanceof Date) throw new NeedsReference(`${celTypeOf(a)} ${op} ${celTypeOf(b)}`);
  return new Failure(`no such overload: ${celTypeOf(a)} ${op} ${celTypeOf(b)}`);
}

/** A reason an operation failed, not yet placed; the compiler turns it into a CelError at the node. */
export class Failure {
  constructor(readonly message: string) {}
}

/** A value for explanations and logs: JSON-safe, types still readable. */
export function toJsonSafe(v: unknown, depth = 0): unknown {
  if (v instanceof CelError) return { error: v.message };
  switch (typeof v) {
    case 'bigint':
      return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'string':
    case 'boolean':
      return v;
    case 'undefined':
      return null;
    case 'object': {
      if (v === null) return null;
      if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : String(v);
      if (depth > 8) return '…';
      if (Array.isArray(v)) return v.slice(0, 50).map((x) => toJsonSafe(x, depth + 1));
      if (v instanceof Set) return [...v].slice(0, 50).map((x) => toJsonSafe(x, depth + 1));
      if (v instanceof Map) return Object.fromEntries([...v.entries()].slice(0, 50).map(([k, x]) => [String(k), toJsonSafe(x, depth + 1)]));
      if (isPlainMap(v)) {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(v).slice(0, 50)) out[k] = toJsonSafe(v[k], depth + 1);
        return out;
      }
      return String(v);
    }
    default:
      return String(v);
  }
}
