import { literalOf, sourceText, staticType, type Node } from './ast.js';
import { isMacroCall, type Analyzer, type ResolvedCall } from './analyze.js';
import {
  celBool,
  celDouble,
  celInt,
  celSize,
  celString,
  celTimestamp,
  indexValue,
  matchesDynamic,
  presentField,
  rangeOf,
  selectField,
  stringMethod,
  stringTransform,
} from './runtime.js';
import type { EvalInput, NormalizedDeclarations } from './types.js';
import {
  BudgetExceeded,
  CelError,
  Failure,
  NeedsReference,
  celArith,
  celCompare,
  celEquals,
  celTypeOf,
  converter,
  eventField,
  fitsType,
  isPlainMap,
  ownReader,
  profileField,
} from './values.js';

/**
 * Compiles a checked cel-js AST into a tree of JavaScript closures.
 *
 * Every closure takes the evaluation state and returns a CEL value or a CelError (errors are
 * values, so `&&`/`||` can absorb them as CEL requires, without exceptions on the hot path).
 * Comparisons, calls and boolean operands push what they saw onto `state.trace` when it is not
 * null — explanations come from these same closures, not from a second evaluator.
 *
 * A node this compiler does not handle throws Unsupported at compile time; the caller then runs the
 * whole condition on cel-js. Run-time shapes it does not model throw NeedsReference, and that one
 * evaluation runs on cel-js. Neither ever changes a result, only where it is computed.
 */

export interface TraceSite {
  readonly text: string;
  readonly offset: number;
}

export interface TraceRecord {
  readonly site: TraceSite;
  readonly value: unknown;
  readonly operands?: [unknown, unknown];
}

export interface EvalState {
  readonly input: EvalInput;
  /** Null on the fast path; an array while explaining. */
  readonly trace: TraceRecord[] | null;
  /** Macro iterations left in this evaluation. */
  budget: number;
  /** Iteration-variable slots of macros. */
  readonly vars: unknown[];
}

export type Ev = (s: EvalState) => unknown;

export class Unsupported extends Error {
  constructor(what: string) {
    super(`not compiled: ${what}`);
    this.name = 'Unsupported';
  }
}

/** Steps an explanation records at most; the rest are dropped (the result is unaffected). */
export const MAX_TRACE = 2000;

function record(s: EvalState, site: TraceSite, value: unknown, operands?: [unknown, unknown]): void {
  const t = s.trace;
  if (t === null || t.length >= MAX_TRACE) return;
  t.push(operands === undefined ? { site, value } : { site, value, operands });
}

type Scope = ReadonlyMap<string, number>;

const SIMPLE_EQ = new Set(['string', 'bool', 'int', 'double', 'null']);
const ORDERED = new Set(['int', 'double', 'string', 'bool', 'google.protobuf.Timestamp']);
const MESSAGES = new Set(['traits', 'computed', 'event', 'profile']);

/** Nodes that record their own trace step; their parents do not record them again. */
function tracesItself(n: Node): boolean {
  switch (n.op) {
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
    case 'in':
    case 'call':
    case 'rcall':
    case '&&':
    case '||':
    case '!_':
      return true;
    default:
      return false;
  }
}

export class Compiler {
  /** Number of iteration-variable slots the compiled tree uses. */
  slots = 0;
  #budgetLimit: number;

  constructor(
    readonly source: string,
    readonly decl: NormalizedDeclarations,
    readonly analysis: Analyzer,
    budgetLimit: number,
  ) {
    this.#budgetLimit = budgetLimit;
  }

  #site(n: Node): TraceSite {
    return { text: sourceText(this.source, n), offset: n.start };
  }

  #err(n: Node, message: string): CelError {
    return new CelError(message, n.start);
  }

  compile(n: Node, scope: Scope = new Map()): Ev {
    switch (n.op) {
      case 'value': {
        const v = n.args;
        if (!(v === null || typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean')) throw new Unsupported('bytes or uint literal');
        return () => v;
      }
      case 'id':
        return this.#id(n, n.args, scope);
      case '.':
        return this.#select(n, n.args[0], n.args[1], scope);
      case '[]':
        return this.#index(n, n.args[0], n.args[1], scope);
      case 'call':
        return this.#call(n, n.args[0], n.args[1], scope);
      case 'rcall':
        return this.#rcall(n, n.args[0], n.args[1], n.args[2], scope);
      case 'list':
        return this.#list(n.args, scope);
      case 'map':
        return this.#map(n, n.args, scope);
      case '?:':
        return this.#ternary(n, n.args[0], n.args[1], n.args[2], scope);
      case '&&':
        return this.#logical(n, true, scope);
      case '||':
        return this.#logical(n, false, scope);
      case '!_':
        return this.#not(n, n.args, scope);
      case '-_':
        return this.#negate(n, n.args, scope);
      case '==':
      case '!=':
        return this.#equality(n, n.op === '!=', n.args[0], n.args[1], scope);
      case '<':
      case '<=':
      case '>':
      case '>=':
        return this.#compare(n, n.op, n.args[0], n.args[1], scope);
      case 'in':
        return this.#in(n, n.args[0], n.args[1], scope);
      case '+':
      case '-':
      case '*':
      case '/':
      case '%':
        return this.#arith(n, n.op, n.args[0], n.args[1], scope);
      default:
        throw new Unsupported(`operator ${n.op}`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Variables and selects

  #id(n: Node, name: string, scope: Scope): Ev {
    const slot = scope.get(name);
    if (slot !== undefined) return (s) => s.vars[slot];
    if (name === 'context') {
      const bad = this.#err(n, 'Variable \'context\' is not a map');
      return (s) => {
        const c = s.input.context;
        return typeof c === 'object' && c !== null ? c : bad;
      };
    }
    throw new Unsupported(`variable ${name} as a whole`);
  }

  /** `traits.x`, `computed.x`, `event.x`, `profile.x`: the declared field, converted; undefined when absent. */
  #messageField(n: Node, variable: string, field: string): Ev {
    const missing = this.#err(n, `No such key: ${field}`);
    switch (variable) {
      case 'traits': {
        const conv = converter(this.decl.traits.get(field) ?? 'dyn');
        const read = ownReader(field);
        return (s) => {
          const raw = read(s.input.traits);
          if (raw === undefined) return missing;
          const v = conv(raw);
          return v === undefined ? missing : v;
        };
      }
      case 'computed': {
        const conv = converter(this.decl.computed.get(field) ?? 'dyn');
        const read = ownReader(field);
        return (s) => {
          const raw = read(s.input.computed);
          if (raw === undefined) return missing;
          const v = conv(raw);
          return v === undefined ? missing : v;
        };
      }
      case 'event': {
        const noEvent = this.#err(n, 'Unknown variable: event');
        return (s) => {
          const e = s.input.event;
          if (e === undefined || e === null) return noEvent;
          const v = eventField(e, field);
          return v === undefined ? missing : v;
        };
      }
      case 'profile':
        return (s) => {
          const v = profileField(s.input.profile, field);
          return v === undefined ? missing : v;
        };
      default:
        throw new Unsupported(`field of ${variable}`);
    }
  }

  /** The lenient form for has(): undefined when absent; an error only when `event` itself is absent. */
  #messagePresence(n: Node, variable: string, field: string): Ev {
    switch (variable) {
      case 'traits': {
        const conv = converter(this.decl.traits.get(field) ?? 'dyn');
        const read = ownReader(field);
        return (s) => {
          const raw = read(s.input.traits);
          return raw === undefined ? undefined : conv(raw);
        };
      }
      case 'computed': {
        const conv = converter(this.decl.computed.get(field) ?? 'dyn');
        const read = ownReader(field);
        return (s) => {
          const raw = read(s.input.computed);
          return raw === undefined ? undefined : conv(raw);
        };
      }
      case 'event': {
        const noEvent = this.#err(n, 'Unknown variable: event');
        return (s) => {
          const e = s.input.event;
          return e === undefined || e === null ? noEvent : eventField(e, field);
        };
      }
      case 'profile':
        return (s) => profileField(s.input.profile, field);
      default:
        throw new Unsupported(`field of ${variable}`);
    }
  }

  #select(n: Node, left: Node, field: string, scope: Scope): Ev {
    if (left.op === 'id' && !scope.has(left.args) && MESSAGES.has(left.args)) return this.#messageField(n, left.args, field);
    const l = this.compile(left, scope);
    const missing = this.#err(n, `No such key: ${field}`);
    if (isInertKey(field)) {
      return (s) => {
        const o = l(s);
        if (o instanceof CelError) return o;
        // No built-in prototype has this name, so on any object a plain load finds only an own
        // property (a map entry of a JSON object); Maps keep entries apart.
        let v: unknown;
        if (typeof o === 'object' && o !== null) {
          v = (o as Record<string, unknown>)[field];
          if (v === undefined && o instanceof Map) v = (o as Map<unknown, unknown>).get(field);
        }
        return v === undefined ? missing : v;
      };
    }
    return (s) => {
      const o = l(s);
      if (o instanceof CelError) return o;
      const v = selectField(o, field);
      return v === undefined ? missing : v;
    };
  }

  #index(n: Node, left: Node, index: Node, scope: Scope): Ev {
    if (left.op === 'id' && !scope.has(left.args) && MESSAGES.has(left.args)) {
      if (index.op === 'value' && typeof index.args === 'string') return this.#messageField(n, left.args, index.args);
      throw new Unsupported('computed index into a record');
    }
    const l = this.compile(left, scope);
    const k = this.compile(index, scope);
    return (s) => {
      const o = l(s);
      if (o instanceof CelError) return o;
      const key = k(s);
      if (key instanceof CelError) return key;
      const v = indexValue(o, key);
      if (v === undefined) return new CelError(`No such key: ${String(key)}`, n.start);
      return v instanceof Failure ? new CelError(v.message, n.start) : v;
    };
  }

  // ------------------------------------------------------------------------------------------
  // Calls

  #call(n: Node, name: string, args: readonly Node[], scope: Scope): Ev {
    if (name === 'has' && args.length === 1 && args[0] !== undefined) return this.#traced(n, this.#has(n, args[0], scope));
    const resolved = this.analysis.calls.get(n);
    if (resolved !== undefined) return this.#registered(n, resolved, args, scope);
    if (args.length !== 1 || args[0] === undefined) throw new Unsupported(`function ${name}`);
    let fn: (v: unknown) => unknown;
    switch (name) {
      case 'size':
        fn = celSize;
        break;
      case 'int':
        fn = celInt;
        break;
      case 'double':
        fn = celDouble;
        break;
      case 'string':
        fn = celString;
        break;
      case 'bool':
        fn = celBool;
        break;
      case 'timestamp':
        fn = celTimestamp;
        break;
      case 'dyn':
        return this.compile(args[0], scope);
      default:
        throw new Unsupported(`function ${name}`);
    }
    const a = this.compile(args[0], scope);
    const site = this.#site(n);
    return (s) => {
      const v = a(s);
      let r: unknown;
      if (v instanceof CelError) r = v;
      else {
        r = fn(v);
        if (r instanceof Failure) r = new CelError(r.message, n.start);
      }
      if (s.trace !== null) record(s, site, r);
      return r;
    };
  }

  /** Wraps a closure so its value is recorded (for nodes whose body is built elsewhere). */
  #traced(n: Node, ev: Ev): Ev {
    const site = this.#site(n);
    return (s) => {
      const v = ev(s);
      if (s.trace !== null) record(s, site, v);
      return v;
    };
  }

  #has(n: Node, arg: Node, scope: Scope): Ev {
    const path: string[] = [];
    let root: Node = arg;
    while (root.op === '.') {
      path.unshift(root.args[1]);
      root = root.args[0];
    }
    if (path.length === 0) throw new Unsupported('has() argument');
    let first: Ev;
    let rest: string[];
    if (root.op === 'id' && !scope.has(root.args) && MESSAGES.has(root.args)) {
      first = this.#messagePresence(n, root.args, path[0] as string);
      rest = path.slice(1);
    } else {
      const base = this.compile(root, scope);
      const key = path[0] as string;
      first = (s) => {
        const o = base(s);
        return o instanceof CelError ? o : presentField(o, key);
      };
      rest = path.slice(1);
    }
    const missing = rest.map((k, i) => this.#err(n, `No such key: ${i === 0 ? path[0] : rest[i - 1]}`));
    return (s) => {
      let cur = first(s);
      if (cur instanceof CelError) return cur;
      for (let i = 0; i < rest.length; i++) {
        if (cur === undefined) return missing[i];
        cur = presentField(cur, rest[i] as string);
      }
      return cur !== undefined;
    };
  }

  /**
   * For a registered call whose arguments are all literals: its implementation bound to them, so a
   * comparison can call it without a closure in between. Records the call's trace step itself.
   */
  #directCall(n: Node): ((s: EvalState) => unknown) | undefined {
    if (n.op !== 'call') return undefined;
    const resolved = this.analysis.calls.get(n);
    const only = resolved?.candidates.length === 1 ? resolved.candidates[0] : undefined;
    if (resolved === undefined || only === undefined || !resolved.literals.every((l) => l !== undefined)) return undefined;
    const impl = only.impl;
    const lits = resolved.literals;
    const name = resolved.fn.name;
    const site = this.#site(n);
    return (s) => {
      let v: unknown;
      try {
        v = impl(s.input, lits);
      } catch (e) {
        v = new CelError(`${name}(): ${e instanceof Error ? e.message : String(e)}`, n.start);
      }
      if (s.trace !== null) record(s, site, v);
      return v;
    };
  }

  #registered(n: Node, resolved: ResolvedCall, args: readonly Node[], scope: Scope): Ev {
    const site = this.#site(n);
    const name = resolved.fn.name;
    const fail = (e: unknown): CelError => new CelError(`${name}(): ${e instanceof Error ? e.message : String(e)}`, n.start);
    const only = resolved.candidates.length === 1 ? resolved.candidates[0] : undefined;
    if (only !== undefined && resolved.literals.every((l) => l !== undefined)) {
      // Every argument a literal: the bound function reads only the input.
      const impl = only.impl;
      const lits = resolved.literals;
      return (s) => {
        let v: unknown;
        try {
          v = impl(s.input, lits);
        } catch (e) {
          v = fail(e);
        }
        if (s.trace !== null) record(s, site, v);
        return v;
      };
    }
    const evs = args.map((a) => this.compile(a, scope));
    // Per candidate, the parameter types to check at run time: only where the argument is dyn.
    const candidates = resolved.candidates.map((c) => ({
      impl: c.impl,
      checks: c.overload.params.map((p, i) => (staticType(args[i] as Node) === 'dyn' && p.type !== 'dyn' ? p.type : undefined)),
    }));
    const single = candidates.length === 1 && candidates[0]?.checks.every((t) => t === undefined) ? candidates[0].impl : undefined;
    const argc = evs.length;
    return (s) => {
      const vals = new Array<unknown>(argc);
      for (let i = 0; i < argc; i++) {
        const v = (evs[i] as Ev)(s);
        if (v instanceof CelError) {
          if (s.trace !== null) record(s, site, v);
          return v;
        }
        vals[i] = v;
      }
      let impl = single;
      if (impl === undefined) {
        for (const c of candidates) {
          let fits = true;
          for (let i = 0; i < argc && fits; i++) {
            const t = c.checks[i];
            if (t !== undefined && !fitsType(vals[i], t)) fits = false;
          }
          if (fits) {
            impl = c.impl;
            break;
          }
        }
      }
      let v: unknown;
      if (impl === undefined) v = new CelError(`found no matching overload for '${name}(${vals.map(celTypeOf).join(', ')})'`, n.start);
      else {
        try {
          v = impl(s.input, vals);
        } catch (e) {
          v = fail(e);
        }
      }
      if (s.trace !== null) record(s, site, v);
      return v;
    };
  }

  #rcall(n: Node, name: string, receiver: Node, args: readonly Node[], scope: Scope): Ev {
    if (isMacroCall(n)) return this.#macro(n, name, receiver, args, scope);
    const site = this.#site(n);
    const r = this.compile(receiver, scope);
    const traced = (body: (v: unknown, s: EvalState) => unknown): Ev => (s) => {
      const v = r(s);
      let out: unknown;
      if (v instanceof CelError) out = v;
      else {
        out = body(v, s);
        if (out instanceof Failure) out = new CelError(out.message, n.start);
      }
      if (s.trace !== null) record(s, site, out);
      return out;
    };
    if (args.length === 0) {
      switch (name) {
        case 'size':
          return traced((v) => celSize(v));
        case 'lowerAscii':
        case 'upperAscii':
        case 'trim':
          return traced((v) => stringTransform(name, v));
        default:
          throw new Unsupported(`method ${name}`);
      }
    }
    const arg0 = args[0];
    if (args.length === 1 && arg0 !== undefined) {
      switch (name) {
        case 'startsWith':
        case 'endsWith':
        case 'contains': {
          const a = this.compile(arg0, scope);
          return traced((v, s) => {
            const x = a(s);
            return x instanceof CelError ? x : stringMethod(name, v, x);
          });
        }
        case 'matches': {
          const re = this.analysis.regexes.get(n);
          if (re !== undefined) return traced((v) => (typeof v === 'string' ? re.test(v) : new Failure(`found no matching overload for '${celTypeOf(v)}.matches(string)'`)));
          const a = this.compile(arg0, scope);
          const cache = new Map<string, RegExp | null>();
          return traced((v, s) => {
            const x = a(s);
            return x instanceof CelError ? x : matchesDynamic(cache, v, x);
          });
        }
        default:
          throw new Unsupported(`method ${name}`);
      }
    }
    throw new Unsupported(`method ${name}`);
  }

  /** all / exists / exists_one / filter / map, with CEL's error rules and the step budget. */
  #macro(n: Node, name: string, receiver: Node, args: readonly Node[], scope: Scope): Ev {
    const iterVar = args[0];
    if (iterVar === undefined || iterVar.op !== 'id') throw new Unsupported('macro variable');
    const range = this.compile(receiver, scope);
    const slot = this.slots++;
    const inner = new Map(scope).set(iterVar.args, slot);
    const site = this.#site(n);
    const limit = this.#budgetLimit;
    const notBool = this.#err(n, `${name}(var, predicate) predicate must return bool`);
    const bad = (v: unknown): CelError => (v instanceof CelError ? v : notBool);
    const items = (s: EvalState): readonly unknown[] | CelError => {
      const o = range(s);
      if (o instanceof CelError) return o;
      const list = rangeOf(o);
      return list instanceof Failure ? new CelError(list.message, receiver.start) : list;
    };
    const step = (s: EvalState): void => {
      if (--s.budget < 0) throw new BudgetExceeded(limit);
    };
    const done = (s: EvalState, v: unknown): unknown => {
      if (s.trace !== null) record(s, site, v);
      return v;
    };
    const second = args[1];
    if (second === undefined) throw new Unsupported('macro arguments');
    const pred = this.compile(second, inner);
    switch (name) {
      case 'exists':
      case 'all': {
        // Quantifiers: the deciding element wins over errors seen on others; otherwise an error stands.
        const decisive = name === 'exists';
        return (s) => {
          const list = items(s);
          if (list instanceof CelError) return done(s, list);
          let error: CelError | undefined;
          for (const x of list) {
            step(s);
            s.vars[slot] = x;
            const r = pred(s);
            if (r === decisive) return done(s, decisive);
            if (r !== !decisive) error ??= bad(r);
          }
          return done(s, error ?? !decisive);
        };
      }
      case 'exists_one':
        return (s) => {
          const list = items(s);
          if (list instanceof CelError) return done(s, list);
          let count = 0;
          for (const x of list) {
            step(s);
            s.vars[slot] = x;
            const r = pred(s);
            if (r === true) count++;
            else if (r !== false) return done(s, bad(r));
          }
          return done(s, count === 1);
        };
      case 'filter':
        return (s) => {
          const list = items(s);
          if (list instanceof CelError) return done(s, list);
          const out: unknown[] = [];
          for (const x of list) {
            step(s);
            s.vars[slot] = x;
            const r = pred(s);
            if (r === true) out.push(x);
            else if (r !== false) return done(s, bad(r));
          }
          return done(s, out);
        };
      case 'map': {
        const third = args[2];
        const transform = third === undefined ? pred : this.compile(third, inner);
        const filter = third === undefined ? undefined : pred;
        const filterNotBool = this.#err(n, 'map(var, filter, transform) filter predicate must return bool');
        return (s) => {
          const list = items(s);
          if (list instanceof CelError) return done(s, list);
          const out: unknown[] = [];
          for (const x of list) {
            step(s);
            s.vars[slot] = x;
            if (filter !== undefined) {
              const keep = filter(s);
              if (keep === false) continue;
              if (keep !== true) return done(s, keep instanceof CelError ? keep : filterNotBool);
            }
            const v = transform(s);
            if (v instanceof CelError) return done(s, v);
            out.push(v);
          }
          return done(s, out);
        };
      }
      default:
        throw new Unsupported(`macro ${name}`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Aggregates

  #list(elements: readonly Node[], scope: Scope): Ev {
    const lit = elements.every((e) => literalOf(e) !== undefined && e.op !== 'list' && e.op !== 'map');
    if (lit) {
      const values = Object.freeze(elements.map((e) => (literalOf(e) as { value: unknown }).value));
      return () => values;
    }
    const evs = elements.map((e) => this.compile(e, scope));
    return (s) => {
      const out = new Array<unknown>(evs.length);
      for (let i = 0; i < evs.length; i++) {
        const v = (evs[i] as Ev)(s);
        if (v instanceof CelError) return v;
        out[i] = v;
      }
      return out;
    };
  }

  #map(n: Node, entries: readonly [Node, Node][], scope: Scope): Ev {
    const evs = entries.map(([k, v]) => [this.compile(k, scope), this.compile(v, scope)] as const);
    return (s) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of evs) {
        const key = k(s);
        if (key instanceof CelError) return key;
        const val = v(s);
        if (val instanceof CelError) return val;
        if (typeof key === 'object' && key !== null) throw new NeedsReference('map literal with a composite key');
        const name = String(key);
        // As cel-js: keys that would reach the prototype are dropped.
        if (name === '__proto__' || name === 'constructor' || name === 'prototype') continue;
        out[name] = val;
      }
      return out;
    };
  }

  // ------------------------------------------------------------------------------------------
  // Logic

  #ternary(n: Node, cond: Node, then: Node, otherwise: Node, scope: Scope): Ev {
    const c = this.compile(cond, scope);
    const t = this.compile(then, scope);
    const f = this.compile(otherwise, scope);
    const condSite = tracesItself(cond) ? undefined : this.#site(cond);
    const notBool = this.#err(cond, 'Ternary condition must be bool');
    return (s) => {
      const v = c(s);
      if (condSite !== undefined && s.trace !== null) record(s, condSite, v);
      if (v === true) return t(s);
      if (v === false) return f(s);
      return v instanceof CelError ? v : notBool;
    };
  }

  /**
   * `&&` (and=true) and `||`, over the whole chain of the same operator (`a && b && c` is one
   * closure). CEL's commutative error rule: an error (or non-bool) operand is absorbed when another
   * operand decides (false for &&, true for ||); otherwise an error stands. Operands run left to
   * right and stop at the first deciding one — the same results and short-circuits as the nested
   * binary form, in any grouping.
   */
  #logical(n: Node, and: boolean, scope: Scope): Ev {
    const op = and ? '&&' : '||';
    const operands: Node[] = [];
    const flatten = (x: Node): void => {
      if (x.op === op) {
        flatten(x.args[0]);
        flatten(x.args[1]);
      } else operands.push(x);
    };
    flatten(n);
    const evs = operands.map((o) => this.compile(o, scope));
    const sites = operands.map((o) => (tracesItself(o) ? undefined : this.#site(o)));
    const site = this.#site(n);
    const decisive = !and;
    const count = evs.length;
    const operandError = (v: unknown): CelError => (v instanceof CelError ? v : new CelError(`Logical operator requires bool operands, got '${celTypeOf(v)}'`, n.start));
    if (count === 2 && sites[0] === undefined && sites[1] === undefined) {
      const l = evs[0] as Ev;
      const r = evs[1] as Ev;
      return (s) => {
        const a = l(s);
        let out: unknown;
        if (a === decisive) out = decisive;
        else {
          const b = r(s);
          if (b === decisive) out = decisive;
          else if (a === !decisive) out = b === !decisive ? b : operandError(b);
          else out = operandError(b === !decisive ? a : b);
        }
        if (s.trace !== null) record(s, site, out);
        return out;
      };
    }
    return (s) => {
      let error: unknown;
      let out: unknown = !decisive;
      for (let i = 0; i < count; i++) {
        const v = (evs[i] as Ev)(s);
        if (s.trace !== null) {
          const at = sites[i];
          if (at !== undefined) record(s, at, v);
        }
        if (v === decisive) {
          out = decisive;
          error = undefined;
          break;
        }
        if (v !== !decisive) error = v;
      }
      if (error !== undefined) out = operandError(error);
      if (s.trace !== null) record(s, site, out);
      return out;
    };
  }

  #not(n: Node, arg: Node, scope: Scope): Ev {
    const a = this.compile(arg, scope);
    const site = this.#site(n);
    const argSite = tracesItself(arg) ? undefined : this.#site(arg);
    return (s) => {
      const v = a(s);
      if (argSite !== undefined && s.trace !== null) record(s, argSite, v);
      const out = typeof v === 'boolean' ? !v : v instanceof CelError ? v : new CelError(`no such overload: !${celTypeOf(v)}`, n.start);
      if (s.trace !== null) record(s, site, out);
      return out;
    };
  }

  #negate(n: Node, arg: Node, scope: Scope): Ev {
    const lit = literalOf(n);
    if (lit !== undefined) {
      const v = lit.value;
      return () => v;
    }
    const a = this.compile(arg, scope);
    return (s) => {
      const v = a(s);
      if (v instanceof CelError) return v;
      // As cel-js: no overflow check on negation.
      if (typeof v === 'bigint') return -v;
      if (typeof v === 'number') return -v;
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainMap(v)) throw new NeedsReference(`-${celTypeOf(v)}`);
      return new CelError(`no such overload: -${celTypeOf(v)}`, n.start);
    };
  }

  // ------------------------------------------------------------------------------------------
  // Comparison and arithmetic

  #equality(n: Node, negate: boolean, left: Node, right: Node, scope: Scope): Ev {
    const l = this.compile(left, scope);
    const site = this.#site(n);
    const lt = staticType(left);
    const strict = lt === staticType(right) && SIMPLE_EQ.has(lt);
    const k = scalarLiteral(right);
    const field = stringField(left, scope, this.decl);
    if (k !== undefined && typeof k.value === 'string' && field !== undefined) {
      // `traits.plan == "plus"`: the trait is read and compared in one step.
      const b = k.value;
      const read = ownReader(field.name);
      const general = this.#messageField(left, field.variable, field.name);
      const fromTraits = field.variable === 'traits';
      return (s) => {
        const raw = read(fromTraits ? s.input.traits : s.input.computed);
        let a: unknown = raw;
        if (typeof raw !== 'string') {
          a = general(s);
          if (a instanceof CelError) {
            if (s.trace !== null) record(s, site, a);
            return a;
          }
        }
        const v = (a === b) !== negate;
        if (s.trace !== null) record(s, site, v, [a, b]);
        return v;
      };
    }
    if (k !== undefined) {
      // The common `x == "literal"`: the constant is captured, not called.
      const b = k.value;
      return (s) => {
        const a = l(s);
        if (a instanceof CelError) {
          if (s.trace !== null) record(s, site, a);
          return a;
        }
        const v = (strict ? a === b : celEquals(a, b)) !== negate;
        if (s.trace !== null) record(s, site, v, [a, b]);
        return v;
      };
    }
    const r = this.compile(right, scope);
    return (s) => {
      const a = l(s);
      if (a instanceof CelError) {
        if (s.trace !== null) record(s, site, a);
        return a;
      }
      const b = r(s);
      if (b instanceof CelError) {
        if (s.trace !== null) record(s, site, b);
        return b;
      }
      const v = (strict ? a === b : celEquals(a, b)) !== negate;
      if (s.trace !== null) record(s, site, v, [a, b]);
      return v;
    };
  }

  #compare(n: Node, op: '<' | '<=' | '>' | '>=', left: Node, right: Node, scope: Scope): Ev {
    const l = this.compile(left, scope);
    const site = this.#site(n);
    const direct = ORDERED.has(staticType(left)) && ORDERED.has(staticType(right));
    const cmp = direct ? directCompare(op) : undefined;
    const k = scalarLiteral(right);
    const field = numericField(left, scope, this.decl);
    if (k !== undefined && cmp !== undefined && field !== undefined && (typeof k.value === 'bigint' || typeof k.value === 'number')) {
      // `traits.age >= 18`: compares the JSON number with the literal directly (number/bigint
      // comparison is exact in JavaScript), so no BigInt is made for the trait on the fast path.
      const b = k.value as number;
      const { variable, name, type } = field;
      const read = ownReader(name);
      const conv = converter(type);
      const general = this.#messageField(left, variable, name);
      const isInt = type === 'int';
      return (s) => {
        const raw = read(variable === 'traits' ? s.input.traits : s.input.computed);
        if (typeof raw === 'number' && (!isInt || (Number.isInteger(raw) && Math.abs(raw) <= 9.2e18))) {
          const v = cmp(raw, b);
          if (s.trace !== null) record(s, site, v, [conv(raw), b]);
          return v;
        }
        const a = general(s);
        if (a instanceof CelError) {
          if (s.trace !== null) record(s, site, a);
          return a;
        }
        const v = cmp(a as number, b);
        if (s.trace !== null) record(s, site, v, [a, b]);
        return v;
      };
    }
    if (k !== undefined && cmp !== undefined) {
      // The common `x >= 3` on statically ordered types: the constant is captured, not called,
      // and a behavioural call with literal arguments (`count("X", "60d") >= 3`) is called directly.
      const b = k.value as number;
      const call = this.#directCall(left) ?? l;
      return (s) => {
        const a = call(s);
        if (a instanceof CelError) {
          if (s.trace !== null) record(s, site, a);
          return a;
        }
        const v = cmp(a as number, b);
        if (s.trace !== null) record(s, site, v, [a, b]);
        return v;
      };
    }
    const r = this.compile(right, scope);
    return (s) => {
      const a = l(s);
      if (a instanceof CelError) {
        if (s.trace !== null) record(s, site, a);
        return a;
      }
      const b = r(s);
      if (b instanceof CelError) {
        if (s.trace !== null) record(s, site, b);
        return b;
      }
      let v: unknown = cmp !== undefined ? cmp(a as number, b as number) : celCompare(op, a, b);
      if (v === undefined) v = new CelError(`no such overload: ${celTypeOf(a)} ${op} ${celTypeOf(b)}`, n.start);
      if (s.trace !== null) record(s, site, v, [a, b]);
      return v;
    };
  }

  #in(n: Node, left: Node, right: Node, scope: Scope): Ev {
    const l = this.compile(left, scope);
    const site = this.#site(n);
    const lt = staticType(left);
    // `x in ["a", "b"]` with a string, int or bool x: a Set lookup. Doubles are excluded (NaN).
    const lit = right.op === 'list' ? literalOf(right) : undefined;
    if (lit !== undefined && Array.isArray(lit.value) && (lt === 'string' || lt === 'int' || lt === 'bool')) {
      const values = lit.value as unknown[];
      const kind = lt === 'string' ? 'string' : lt === 'int' ? 'bigint' : 'boolean';
      if (values.every((v) => typeof v === kind)) {
        const set = new Set<unknown>(values);
        const list = Object.freeze([...values]);
        return (s) => {
          const a = l(s);
          if (a instanceof CelError) {
            if (s.trace !== null) record(s, site, a);
            return a;
          }
          const v = set.has(a);
          if (s.trace !== null) record(s, site, v, [a, list]);
          return v;
        };
      }
    }
    const r = this.compile(right, scope);
    return (s) => {
      const a = l(s);
      if (a instanceof CelError) {
        if (s.trace !== null) record(s, site, a);
        return a;
      }
      const b = r(s);
      if (b instanceof CelError) {
        if (s.trace !== null) record(s, site, b);
        return b;
      }
      const v = membership(a, b, n);
      if (s.trace !== null) record(s, site, v, [a, b]);
      return v;
    };
  }

  #arith(n: Node, op: '+' | '-' | '*' | '/' | '%', left: Node, right: Node, scope: Scope): Ev {
    if (staticType(n) === 'google.protobuf.Duration' || staticType(left) === 'google.protobuf.Duration' || staticType(right) === 'google.protobuf.Duration')
      throw new Unsupported('duration arithmetic');
    const l = this.compile(left, scope);
    const r = this.compile(right, scope);
    return (s) => {
      const a = l(s);
      if (a instanceof CelError) return a;
      const b = r(s);
      if (b instanceof CelError) return b;
      const v = celArith(op, a, b);
      return v instanceof Failure ? new CelError(v.message, n.start) : v;
    };
  }
}

const BUILTIN_PROTOTYPES: readonly object[] = [Object.prototype, Array.prototype, Date.prototype, Map.prototype, Set.prototype, Object.getPrototypeOf(Uint8Array.prototype) as object, Uint8Array.prototype, Function.prototype];

/** Whether no built-in prototype (object, array, date, map, set, typed array, function) has this name. */
function isInertKey(key: string): boolean {
  return BUILTIN_PROTOTYPES.every((p) => !(key in p));
}

/** `traits.x` / `computed.x` of declared type string (not shadowed by a macro variable). */
function stringField(n: Node, scope: Scope, decl: NormalizedDeclarations): { variable: 'traits' | 'computed'; name: string } | undefined {
  if (n.op !== '.') return undefined;
  const [base, name] = n.args;
  if (base.op !== 'id' || scope.has(base.args) || (base.args !== 'traits' && base.args !== 'computed')) return undefined;
  const type = (base.args === 'traits' ? decl.traits : decl.computed).get(name);
  return type === 'string' ? { variable: base.args, name } : undefined;
}

/** `traits.x` / `computed.x` of declared type int or double (not shadowed by a macro variable). */
function numericField(n: Node, scope: Scope, decl: NormalizedDeclarations): { variable: 'traits' | 'computed'; name: string; type: 'int' | 'double' } | undefined {
  if (n.op !== '.') return undefined;
  const [base, name] = n.args;
  if (base.op !== 'id' || scope.has(base.args) || (base.args !== 'traits' && base.args !== 'computed')) return undefined;
  const type = (base.args === 'traits' ? decl.traits : decl.computed).get(name);
  return type === 'int' || type === 'double' ? { variable: base.args, name, type } : undefined;
}

/** A scalar literal operand (string, int, double, bool, null), captured instead of compiled. */
function scalarLiteral(n: Node): { value: string | bigint | number | boolean | null } | undefined {
  const lit = literalOf(n);
  if (lit === undefined) return undefined;
  const v = lit.value;
  return v === null || typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean' ? { value: v } : undefined;
}

function directCompare(op: '<' | '<=' | '>' | '>='): (a: number, b: number) => boolean {
  // One closure per operator: comparison sites call these a great deal.
  switch (op) {
    case '<':
      return lt;
    case '<=':
      return le;
    case '>':
      return gt;
    case '>=':
      return ge;
  }
}

const lt = (a: number, b: number): boolean => a < b;
const le = (a: number, b: number): boolean => a <= b;
const gt = (a: number, b: number): boolean => a > b;
const ge = (a: number, b: number): boolean => a >= b;

function membership(a: unknown, b: unknown, n: Node): unknown {
  if (Array.isArray(b)) {
    for (const x of b) if (celEquals(a, x)) return true;
    return false;
  }
  if (isPlainMap(b)) {
    if (typeof a === 'object' && a !== null) throw new NeedsReference('map membership of a composite key');
    const key = String(a);
    return Object.prototype.hasOwnProperty.call(b, key) && b[key] !== undefined;
  }
  if (b instanceof Map) return (b as Map<unknown, unknown>).get(a) !== undefined;
  if (b instanceof Set) throw new NeedsReference('set membership');
  return new CelError(`no such overload: ${celTypeOf(a)} in ${celTypeOf(b)}`, n.start);
}
