import { closest, parseDuration } from '../core/index.js';
import { children, fieldSpan, literalOf, literalSpan, staticType, stringLiteral, type Literal, type Node } from './ast.js';
import { DAYS_SINCE_EVENT } from './builtins.js';
import { counterSpec } from './counters.js';
import { unsafePattern } from './runtime.js';
import { VARIABLES } from './environment.js';
import { ConditionError, type ConditionErrorCode } from './errors.js';
import type { BoundFunction, ConditionFunction, ConditionFunctions, ConditionOverload, LiteralRole } from './functions.js';
import type { ComparisonOp, ConditionReferences, CounterSpec, DaysSinceUses, NormalizedDeclarations } from './types.js';
import { EVENT_FIELDS, PROFILE_FIELDS } from './values.js';

/**
 * The checks and bindings around cel-js's own type check:
 *  1. `checkNames` (before the type check): every variable, trait, computed trait, event field,
 *     event property and every literal naming an event, segment, stage, purpose or channel must be
 *     declared — otherwise CAIRN_ERR_CONDITION_UNKNOWN pointing at the name, with "did you mean".
 *     Windows, filters and regular expressions given as literals are validated here too.
 *  2. `resolveCalls` (after it): each call of a registered function gets its overload(s), its
 *     literal arguments are enforced, and `bind` runs once per call site, declaring the counters.
 */

export interface ResolvedCall {
  readonly fn: ConditionFunction;
  /** The overloads the static types allow, bound; more than one only when an argument is dyn. */
  readonly candidates: readonly { readonly overload: ConditionOverload; readonly impl: BoundFunction }[];
  /** Per argument: its literal value, or undefined for an expression. */
  readonly literals: readonly unknown[];
  /** Keys of the counters binding this call declared. */
  readonly counters: readonly string[];
}

/** Global functions CEL itself defines (cel-js); anything else must be registered. */
const CEL_FUNCTIONS: ReadonlySet<string> = new Set(['has', 'size', 'int', 'uint', 'double', 'string', 'bytes', 'bool', 'dyn', 'type', 'timestamp', 'duration', 'matches']);

/** Variables of a fixed record type whose fields are checked by name. */
const MESSAGES: ReadonlySet<string> = new Set(['traits', 'computed', 'event', 'profile']);

/** Macros whose first argument is an iteration variable, by name → allowed argument counts. */
const MACROS: Readonly<Record<string, readonly number[]>> = { all: [2], exists: [2], exists_one: [2], filter: [2], map: [2, 3] };

export function isMacroCall(n: Node): boolean {
  if (n.op !== 'rcall') return false;
  const arities = MACROS[n.args[0]];
  return arities !== undefined && arities.includes(n.args[2].length) && n.args[2][0]?.op === 'id';
}

function isBindCall(n: Node): boolean {
  return n.op === 'rcall' && n.args[0] === 'bind' && n.args[1].op === 'id' && n.args[1].args === 'cel' && n.args[2].length === 3 && n.args[2][0]?.op === 'id';
}

const KIND_OF_ROLE: Readonly<Record<LiteralRole, string>> = {
  event: 'event',
  window: 'window',
  property: 'event property',
  filter: 'filter',
  segment: 'segment',
  purpose: 'consent purpose',
  channel: 'channel',
  stage: 'stage',
};

export class Analyzer {
  readonly calls = new Map<Node, ResolvedCall>();
  readonly regexes = new Map<Node, RegExp>();
  readonly #counters = new Map<string, CounterSpec>();
  readonly #refs = {
    traits: new Set<string>(),
    computed: new Set<string>(),
    events: new Set<string>(),
    segments: new Set<string>(),
    stages: new Set<string>(),
    purposes: new Set<string>(),
    channels: new Set<string>(),
    functions: new Set<string>(),
  };
  #usesEvent = false;
  #usesContext = false;
  #dependsOnTime = false;

  constructor(
    readonly source: string,
    readonly decl: NormalizedDeclarations,
    readonly functions: ConditionFunctions,
  ) {}

  get counters(): CounterSpec[] {
    return [...this.#counters.values()];
  }

  references(): ConditionReferences {
    const sorted = (s: Set<string>): string[] => [...s].sort();
    const r = this.#refs;
    return Object.freeze({
      traits: sorted(r.traits),
      computed: sorted(r.computed),
      events: sorted(r.events),
      segments: sorted(r.segments),
      stages: sorted(r.stages),
      purposes: sorted(r.purposes),
      channels: sorted(r.channels),
      functions: sorted(r.functions),
      usesEvent: this.#usesEvent,
      usesContext: this.#usesContext,
      dependsOnTime: this.#dependsOnTime,
    });
  }

  #error(code: ConditionErrorCode, offset: number, length: number, reason: string, extra: { kind?: string; name?: string; suggestion?: string } = {}): ConditionError {
    const params: { reason: string; kind?: string; name?: string; suggestion?: string } = { reason };
    if (extra.kind !== undefined) params.kind = extra.kind;
    if (extra.name !== undefined) params.name = extra.name;
    if (extra.suggestion !== undefined) params.suggestion = extra.suggestion;
    return new ConditionError(code, this.source, offset, length, params);
  }

  #unknown(kind: string, name: string, candidates: Iterable<string>, span: { offset: number; length: number }): ConditionError {
    const suggestion = closest(name, candidates);
    return this.#error('CAIRN_ERR_CONDITION_UNKNOWN', span.offset, span.length, `unknown ${kind} "${name}"`, suggestion === undefined ? { kind, name } : { kind, name, suggestion });
  }

  // ------------------------------------------------------------------------------------------
  // Pass 1: names

  checkNames(root: Node): void {
    this.#walkNames(root, new Set());
  }

  #walkNames(n: Node, scope: ReadonlySet<string>): void {
    switch (n.op) {
      case 'id': {
        const name = n.args;
        if (scope.has(name)) return;
        if (name === 'event') this.#usesEvent = true;
        else if (name === 'context') this.#usesContext = true;
        else if (name === 'traits') for (const t of this.decl.traits.keys()) this.#refs.traits.add(t);
        else if (name === 'computed') for (const t of this.decl.computed.keys()) this.#refs.computed.add(t);
        if ((VARIABLES as readonly string[]).includes(name) || name === 'cel' || name === 'google') return;
        throw this.#unknown('variable', name, [...VARIABLES, ...scope], { offset: n.start, length: n.end - n.start });
      }
      case '.':
      case '.?': {
        const [left, field] = n.args;
        if (left.op === 'id' && !scope.has(left.args) && MESSAGES.has(left.args)) {
          this.#checkField(left.args, field, fieldSpan(n, field));
          if (left.args === 'event') this.#usesEvent = true;
          return;
        }
        this.#checkEventProperty(left, field, fieldSpan(n, field), scope);
        this.#walkNames(left, scope);
        return;
      }
      case '[]':
      case '[?]': {
        const [left, index] = n.args;
        const key = stringLiteral(index);
        if (key !== undefined && left.op === 'id' && !scope.has(left.args) && MESSAGES.has(left.args)) {
          this.#checkField(left.args, key, literalSpan(this.source, index));
          if (left.args === 'event') this.#usesEvent = true;
          return;
        }
        if (key !== undefined) this.#checkEventProperty(left, key, literalSpan(this.source, index), scope);
        this.#walkNames(left, scope);
        this.#walkNames(index, scope);
        return;
      }
      case 'call': {
        const [name, args] = n.args;
        const fn = this.functions.get(name);
        if (fn !== undefined) this.#checkLiteralArgs(n, fn, args);
        else if (!CEL_FUNCTIONS.has(name)) {
          throw this.#unknown('function', name, [...this.functions.list().map((f) => f.name), ...CEL_FUNCTIONS], { offset: n.start, length: name.length });
        }
        for (const a of args) this.#walkNames(a, scope);
        return;
      }
      case 'rcall': {
        const [name, receiver, args] = n.args;
        if (isMacroCall(n)) {
          this.#walkNames(receiver, scope);
          const inner = new Set(scope);
          const iter = args[0];
          if (iter !== undefined && iter.op === 'id') inner.add(iter.args);
          for (const a of args.slice(1)) this.#walkNames(a, inner);
          return;
        }
        if (isBindCall(n)) {
          const [v, val, exp] = args as [Node, Node, Node];
          this.#walkNames(val, scope);
          this.#walkNames(exp, new Set([...scope, v.op === 'id' ? v.args : '']));
          return;
        }
        if (name === 'matches' && args.length === 1 && args[0] !== undefined) {
          const pattern = stringLiteral(args[0]);
          if (pattern !== undefined) {
            const unsafe = unsafePattern(pattern);
            if (unsafe !== undefined) {
              const span = literalSpan(this.source, args[0]);
              throw this.#error('CAIRN_ERR_CONDITION_LIMIT', span.offset, span.length, unsafe);
            }
            try {
              this.regexes.set(n, new RegExp(pattern));
            } catch (e) {
              const span = literalSpan(this.source, args[0]);
              throw this.#error('CAIRN_ERR_CONDITION_SYNTAX', span.offset, span.length, `invalid regular expression: ${(e as Error).message}`);
            }
          }
        }
        this.#walkNames(receiver, scope);
        for (const a of args) this.#walkNames(a, scope);
        return;
      }
      case '==':
      case '!=': {
        const [l, r] = n.args;
        this.#checkRoleComparison(l, r, scope);
        this.#checkRoleComparison(r, l, scope);
        break;
      }
      case 'in': {
        const [l, r] = n.args;
        const role = this.#roleOf(l, scope);
        if (role !== undefined && r.op === 'list') for (const el of r.args) this.#checkRoleLiteral(role, el);
        break;
      }
      default:
        break;
    }
    for (const c of children(n)) this.#walkNames(c, scope);
  }

  #checkField(variable: string, field: string, span: { offset: number; length: number }): void {
    switch (variable) {
      case 'traits':
        if (!this.decl.traits.has(field)) throw this.#unknown('trait', field, this.decl.traits.keys(), span);
        this.#refs.traits.add(field);
        return;
      case 'computed':
        if (!this.decl.computed.has(field)) throw this.#unknown('computed trait', field, this.decl.computed.keys(), span);
        this.#refs.computed.add(field);
        return;
      case 'event':
        if (!Object.hasOwn(EVENT_FIELDS, field)) throw this.#unknown('event field', field, Object.keys(EVENT_FIELDS), span);
        return;
      case 'profile':
        if (!Object.hasOwn(PROFILE_FIELDS, field)) throw this.#unknown('profile field', field, Object.keys(PROFILE_FIELDS), span);
        return;
      default:
        return;
    }
  }

  /** `event.properties.x` / `event.properties["x"]`: x must be a property some event declares (when they all declare theirs). */
  #checkEventProperty(left: Node, property: string, span: { offset: number; length: number }, scope: ReadonlySet<string>): void {
    if (left.op !== '.' || left.args[1] !== 'properties') return;
    const base = left.args[0];
    if (base.op !== 'id' || base.args !== 'event' || scope.has('event')) return;
    const known = this.decl.anyEventProperties;
    if (known !== null && !known.has(property)) throw this.#unknown('event property', property, known, span);
  }

  /** The kind of name an expression's value is, when comparing it with a literal should check that literal. */
  #roleOf(n: Node, scope: ReadonlySet<string>): LiteralRole | undefined {
    if (n.op === 'call') return this.functions.get(n.args[0])?.resultRole;
    if (n.op === '.' && n.args[1] === 'name' && n.args[0].op === 'id' && n.args[0].args === 'event' && !scope.has('event')) return 'event';
    return undefined;
  }

  #checkRoleComparison(roled: Node, other: Node, scope: ReadonlySet<string>): void {
    const role = this.#roleOf(roled, scope);
    if (role !== undefined) this.#checkRoleLiteral(role, other);
  }

  #checkRoleLiteral(role: LiteralRole, n: Node): void {
    const name = stringLiteral(n);
    if (name === undefined) return;
    const span = literalSpan(this.source, n);
    const known = this.#namesOf(role);
    if (known === undefined) return;
    // "" is what stage() gives a customer without a stage; comparing with it is meaningful.
    if (role === 'stage' && name === '') return;
    // "*" is the purpose-wide channel of the consent ledger (consent("marketing", "*")).
    if (role === 'channel' && name === '*') return;
    // A workspace that declares no consent purposes or channels has not configured them yet;
    // ingest accepts any purpose then, and so do conditions.
    if ((role === 'purpose' || role === 'channel') && known.size === 0) return;
    if (!known.has(name)) throw this.#unknown(KIND_OF_ROLE[role], name, known.keys(), span);
    this.#record(role, name);
  }

  #namesOf(role: LiteralRole): ReadonlyMap<string, unknown> | ReadonlySet<string> | undefined {
    switch (role) {
      case 'event':
        return this.decl.events;
      case 'segment':
        return this.decl.segments;
      case 'purpose':
        return this.decl.purposes;
      case 'channel':
        return this.decl.channels;
      case 'stage':
        return this.decl.stages;
      default:
        return undefined;
    }
  }

  #record(role: LiteralRole, name: string): void {
    switch (role) {
      case 'event':
        this.#refs.events.add(name);
        return;
      case 'segment':
        this.#refs.segments.add(name);
        return;
      case 'purpose':
        this.#refs.purposes.add(name);
        return;
      case 'channel':
        this.#refs.channels.add(name);
        return;
      case 'stage':
        this.#refs.stages.add(name);
        return;
      default:
        return;
    }
  }

  /** Checks the literal arguments of a registered function by the role of their parameter. */
  #checkLiteralArgs(call: Node, fn: ConditionFunction, args: readonly Node[]): void {
    const overloads = fn.overloads.filter((o) => o.params.length === args.length);
    // The event a call is about, for checking its property and filter names.
    let eventName: string | undefined;
    args.forEach((a, i) => {
      const lit = literalOf(a);
      if (lit === undefined) return;
      const param = overloads.map((o) => o.params[i]).find((p) => p !== undefined && p.role !== undefined && literalFits(lit.value, p.type));
      if (param?.role === 'event' && typeof lit.value === 'string') eventName = lit.value;
    });
    args.forEach((a, i) => {
      const lit = literalOf(a);
      if (lit === undefined) return;
      const param = overloads.map((o) => o.params[i]).find((p) => p !== undefined && p.role !== undefined && literalFits(lit.value, p.type));
      if (param?.role === undefined) return;
      this.#checkRole(call, param.role, a, lit.value, eventName);
    });
  }

  #checkRole(call: Node, role: LiteralRole, arg: Node, value: Literal, eventName: string | undefined): void {
    switch (role) {
      case 'event':
      case 'segment':
      case 'purpose':
      case 'channel':
      case 'stage':
        this.#checkRoleLiteral(role, arg);
        return;
      case 'window': {
        const ms = typeof value === 'string' ? parseDuration(value) : undefined;
        if (ms === undefined || ms <= 0) {
          const span = literalSpan(this.source, arg);
          throw this.#error('CAIRN_ERR_CONDITION_TYPE', span.offset, span.length, `window ${JSON.stringify(value)} is not a duration such as "60d", "12h", "30m" or "2w"`);
        }
        return;
      }
      case 'property':
        if (typeof value === 'string') this.#checkPropertyOf(eventName, value.split('.')[0] ?? value, literalSpan(this.source, arg));
        return;
      case 'filter': {
        if (arg.op !== 'map') return;
        for (const [k, v] of arg.args) {
          const key = stringLiteral(k);
          if (key === undefined) continue;
          this.#checkPropertyOf(eventName, key.split('.')[0] ?? key, literalSpan(this.source, k));
          const lit = literalOf(v);
          const ok = lit !== undefined && (isScalar(lit.value) || (Array.isArray(lit.value) && lit.value.length > 0 && lit.value.every(isScalar)));
          if (!ok)
            throw this.#error('CAIRN_ERR_CONDITION_TYPE', v.start, v.end - v.start, `${this.#callName(call)}() filter value for "${key}" must be a string, number or bool literal, or a list of them`);
        }
        return;
      }
    }
  }

  #callName(call: Node): string {
    return call.op === 'call' ? call.args[0] : 'function';
  }

  #checkPropertyOf(eventName: string | undefined, property: string, span: { offset: number; length: number }): void {
    if (eventName === undefined) return;
    const props = this.decl.events.get(eventName);
    if (props === null || props === undefined) return;
    if (!props.has(property)) throw this.#unknown(`property of event "${eventName}"`, property, props, span);
  }

  // ------------------------------------------------------------------------------------------
  // Pass 2: calls (needs the static types cel-js inferred)

  resolveCalls(n: Node): void {
    if (n.op === 'call') {
      const fn = this.functions.get(n.args[0]);
      if (fn !== undefined) this.#resolve(n, fn, n.args[1]);
    }
    for (const c of children(n)) this.resolveCalls(c);
  }

  #resolve(call: Node, fn: ConditionFunction, args: readonly Node[]): void {
    this.#refs.functions.add(fn.name);
    const types = args.map(staticType);
    const fitting = fn.overloads.filter((o) => o.params.length === args.length && o.params.every((p, i) => compatible(p.type, types[i] ?? 'dyn')));
    if (fitting.length === 0) {
      throw this.#error('CAIRN_ERR_CONDITION_TYPE', call.start, call.end - call.start, `no overload of ${fn.name}() takes (${types.join(', ')})`);
    }
    const literals = args.map((a) => literalOf(a)?.value);
    const declared: string[] = [];
    for (const o of fitting) {
      o.params.forEach((p, i) => {
        const arg = args[i];
        if (p.literal === 'required' && arg !== undefined && literals[i] === undefined) {
          throw this.#error(
            'CAIRN_ERR_CONDITION_TYPE',
            arg.start,
            arg.end - arg.start,
            `${fn.name}() argument ${i + 1} (${p.name}) must be a literal${p.role === 'window' ? ' such as "60d"' : p.role === 'filter' ? ' map such as {"category": "shoes"}' : ''}, so that it can be kept incrementally`,
          );
        }
      });
    }
    const candidates = fitting.map((overload) => {
      const impl = overload.bind({
        literals,
        counter: (req) => {
          const spec = counterSpec(req);
          if (!this.#counters.has(spec.key)) this.#counters.set(spec.key, spec);
          if (!declared.includes(spec.key)) declared.push(spec.key);
          this.#refs.events.add(spec.event);
          if (spec.windowMs !== undefined) this.#dependsOnTime = true;
          return spec.key;
        },
      });
      if (overload.timeDependent === true) this.#dependsOnTime = true;
      return { overload, impl };
    });
    this.calls.set(call, { fn, candidates, literals, counters: declared });
  }

  // ------------------------------------------------------------------------------------------
  // Pass 3: days_since (after resolveCalls)

  /**
   * Where the condition's value can depend on days_since: per event, the numeric literals each
   * `days_since(event)` call is compared with, or null for an event with any other use. Only the
   * built-in overload counts as days_since(event) (DAYS_SINCE_EVENT); any other call of a function
   * named days_since makes `unanchored` true.
   */
  daysSinceUses(root: Node): DaysSinceUses {
    const byEvent = new Map<string, { event: string; key: string; comparisons: { op: ComparisonOp; days: number }[] | null }>();
    let unanchored = false;
    // Call nodes of days_since(event), each with the comparison it is the operand of (if it is one).
    const compared = new Map<Node, { op: ComparisonOp; days: number }>();
    const visit = (n: Node): void => {
      const op = COMPARISONS.get(n.op);
      if (op !== undefined) {
        const [l, r] = n.args as [Node, Node];
        const rightDays = numericLiteral(r);
        const leftDays = numericLiteral(l);
        if (rightDays !== undefined && this.#daysSinceEvent(l) !== undefined) compared.set(l, { op, days: rightDays });
        else if (leftDays !== undefined && this.#daysSinceEvent(r) !== undefined) compared.set(r, { op: FLIPPED[op], days: leftDays });
      }
      for (const c of children(n)) visit(c);
    };
    visit(root);
    for (const [node, call] of this.calls) {
      if (call.fn.name !== 'days_since') continue;
      const site = this.#daysSinceEvent(node);
      if (site === undefined) {
        unanchored = true;
        continue;
      }
      let entry = byEvent.get(site.key);
      if (entry === undefined) byEvent.set(site.key, (entry = { event: site.event, key: site.key, comparisons: [] }));
      const cmp = compared.get(node);
      if (cmp === undefined) entry.comparisons = null;
      else entry.comparisons?.push(cmp);
    }
    const events = [...byEvent.values()].sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0));
    return Object.freeze({ events: Object.freeze(events.map((e) => Object.freeze({ ...e, comparisons: e.comparisons === null ? null : Object.freeze(e.comparisons) }))), unanchored });
  }

  /** The event and counter of a call of the built-in days_since(event), else undefined. */
  #daysSinceEvent(n: Node): { event: string; key: string } | undefined {
    const call = this.calls.get(n);
    if (call === undefined || call.candidates.length !== 1 || call.candidates[0]?.overload !== DAYS_SINCE_EVENT) return undefined;
    const event = call.literals[0];
    const key = call.counters[0];
    return typeof event === 'string' && key !== undefined && call.counters.length === 1 ? { event, key } : undefined;
  }
}

const COMPARISONS: ReadonlyMap<string, ComparisonOp> = new Map<string, ComparisonOp>([
  ['<', '<'],
  ['<=', '<='],
  ['>', '>'],
  ['>=', '>='],
  ['==', '=='],
  ['!=', '!='],
]);

/** `k op x` is `x FLIPPED[op] k`. */
const FLIPPED: Readonly<Record<ComparisonOp, ComparisonOp>> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '==': '==', '!=': '!=' };

/** A literal int or double (a unary minus applied), as a number; undefined for anything else, uints included. */
function numericLiteral(n: Node): number | undefined {
  const lit = literalOf(n);
  if (lit === undefined) return undefined;
  const v = lit.value;
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' ? v : undefined;
}

function isScalar(v: Literal): boolean {
  return typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean';
}

/** Whether a literal value could be passed where `type` is expected. */
function literalFits(v: Literal, type: string): boolean {
  if (type === 'dyn') return true;
  if (type === 'string') return typeof v === 'string';
  if (type === 'int') return typeof v === 'bigint';
  if (type === 'double') return typeof v === 'number';
  if (type === 'bool') return typeof v === 'boolean';
  if (type.startsWith('map<')) return typeof v === 'object' && v !== null && !Array.isArray(v);
  if (type.startsWith('list<')) return Array.isArray(v);
  return false;
}

/** Whether an argument of static type `arg` may be passed to a parameter of type `param`. */
export function compatible(param: string, arg: string): boolean {
  if (param === 'dyn' || arg === 'dyn') return true;
  if (param.startsWith('list<')) return arg === 'list';
  if (param.startsWith('map<')) return arg === 'map';
  return param === arg;
}
