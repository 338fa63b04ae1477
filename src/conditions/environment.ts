import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { counterSpec } from './counters.js';
import { signatureOf, type BoundFunction, type ConditionFunctions, type ConditionOverload } from './functions.js';
import { EVENT_FIELDS, PROFILE_FIELDS, celRecord, eventField, ownValue, profileField } from './values.js';
import {
  VALUE_TYPES,
  type ConditionDeclarations,
  type ConditionLimits,
  type EvalInput,
  type NormalizedDeclarations,
  type ValueType,
} from './types.js';

/** Declared value type → CEL type as cel-js spells it. */
export const CEL_TYPE: Readonly<Record<ValueType, string>> = {
  string: 'string',
  int: 'int',
  double: 'double',
  bool: 'bool',
  timestamp: 'google.protobuf.Timestamp',
  list: 'list<dyn>',
  map: 'map<string, dyn>',
  dyn: 'dyn',
};

/** The variables every condition can read. */
export const VARIABLES = ['traits', 'computed', 'event', 'context', 'profile'] as const;

const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

function nameProblems(kind: string, names: readonly unknown[], problems: string[]): void {
  for (const n of names) {
    if (typeof n !== 'string' || n.length === 0) problems.push(`${kind}: names must be non-empty strings`);
    else if (FORBIDDEN_NAMES.has(n)) problems.push(`${kind}: "${n}" is not allowed as a name`);
  }
}

/** Validates the declarations once (every problem in one error) and prepares lookups. */
export function normalizeDeclarations(d: ConditionDeclarations): NormalizedDeclarations {
  const problems: string[] = [];
  const events = new Map<string, ReadonlySet<string> | null>();
  let anyEventProperties: Set<string> | null = new Set();
  for (const e of d.events ?? []) {
    const name = typeof e === 'string' ? e : e.name;
    nameProblems('events', [name], problems);
    const props = typeof e === 'string' || e.properties === undefined ? null : new Set(e.properties);
    if (props === null) anyEventProperties = null;
    else if (anyEventProperties !== null) for (const p of props) anyEventProperties.add(p);
    events.set(name, props);
  }
  if (events.size === 0) anyEventProperties = null;
  const typed = (kind: string, rec: Readonly<Record<string, ValueType>> | readonly string[] | undefined): Map<string, ValueType> => {
    const out = new Map<string, ValueType>();
    if (rec === undefined) return out;
    if (Array.isArray(rec)) {
      nameProblems(kind, rec, problems);
      for (const n of rec as readonly string[]) out.set(n, 'dyn');
      return out;
    }
    for (const [n, t] of Object.entries(rec as Readonly<Record<string, ValueType>>)) {
      nameProblems(kind, [n], problems);
      if (!VALUE_TYPES.includes(t)) problems.push(`${kind}: "${n}" has unknown type "${String(t)}" (one of ${VALUE_TYPES.join(', ')})`);
      out.set(n, t);
    }
    return out;
  };
  const traits = typed('traits', d.traits);
  const computed = typed('computed', d.computed);
  const set = (kind: string, names: readonly string[] | undefined): Set<string> => {
    nameProblems(kind, names ?? [], problems);
    return new Set(names ?? []);
  };
  const out: NormalizedDeclarations = {
    events,
    anyEventProperties,
    traits,
    computed,
    segments: set('segments', d.segments),
    stages: set('stages', d.stages),
    purposes: set('purposes', d.purposes),
    channels: set('channels', d.channels),
  };
  if (problems.length > 0) throw new Error(`Invalid condition declarations:\n- ${problems.join('\n- ')}`);
  return Object.freeze(out);
}

// The input of the reference interpreter and of the whole-condition fallback. cel-js calls
// registered functions without the evaluation context, so they read the input from here; it is
// set just before a synchronous evaluation and restored right after, so nesting is safe.
let current: EvalInput | undefined;

function fieldsOf(rec: Readonly<Record<string, ValueType>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, t] of Object.entries(rec)) out[k] = CEL_TYPE[t];
  return out;
}

function mapFields(m: ReadonlyMap<string, ValueType>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, t] of m) out[k] = CEL_TYPE[t];
  return out;
}

const MAX_BOUND_PER_OVERLOAD = 1000;

/** cel-js handler for an overload: binds per distinct literal arguments (cached), then runs on `current`. */
function referenceHandler(name: string, o: ConditionOverload): (...args: unknown[]) => unknown {
  const bound = new Map<string, BoundFunction>();
  return (...args: unknown[]) => {
    const input = current;
    if (input === undefined) throw new Error(`${name}() called outside an evaluation`);
    // Bound per distinct arguments: the interpreter cannot tell literals from expressions, so every
    // argument is offered as a literal (the value is the same either way for this call).
    const cacheKey = JSON.stringify(args, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
    let fn = bound.get(cacheKey);
    if (fn === undefined) {
      fn = o.bind({ literals: args, counter: (req) => counterSpec(req).key });
      if (bound.size >= MAX_BOUND_PER_OVERLOAD) bound.clear();
      bound.set(cacheKey, fn);
    }
    return fn(input, args);
  };
}

/** The cel-js environment for a set of declarations: typed variables plus every registered function. */
export function createCelEnvironment(decl: NormalizedDeclarations, functions: ConditionFunctions, limits: ConditionLimits): Environment {
  const env = new Environment({
    // Filter maps mix value types ({"category": "shoes", "size": 42}); lists of mixed literals are list<dyn>.
    homogeneousAggregateLiterals: false,
    limits: {
      maxAstNodes: limits.maxAstNodes,
      maxDepth: limits.maxDepth,
      maxListElements: limits.maxListElements,
      maxMapEntries: limits.maxMapEntries,
      maxCallArguments: limits.maxCallArguments,
    },
  })
    .registerType('cairn.Traits', { fields: mapFields(decl.traits) })
    .registerType('cairn.Computed', { fields: mapFields(decl.computed) })
    .registerType('cairn.Event', { fields: fieldsOf(EVENT_FIELDS) })
    .registerType('cairn.Profile', { fields: fieldsOf(PROFILE_FIELDS) })
    .registerVariable('traits', 'cairn.Traits')
    .registerVariable('computed', 'cairn.Computed')
    .registerVariable('event', 'cairn.Event')
    .registerVariable('profile', 'cairn.Profile')
    .registerVariable('context', 'map<string, dyn>');
  for (const fn of functions.list()) {
    for (const o of fn.overloads) env.registerFunction(signatureOf(fn.name, o), referenceHandler(fn.name, o));
  }
  return env;
}

/** The evaluation context cel-js gets: declared fields converted to CEL values, absent ones left out. */
export function referenceContext(decl: NormalizedDeclarations, input: EvalInput): Record<string, unknown> {
  const ctx: Record<string, unknown> = {
    traits: celRecord(decl.traits, (n) => ownValue(input.traits, n)),
    computed: celRecord(decl.computed, (n) => ownValue(input.computed, n)),
    context: input.context,
    profile: celRecord(PROFILE_FIELDS, (n) => profileField(input.profile, n)),
  };
  const e = input.event;
  if (e !== undefined && e !== null) ctx.event = celRecord(EVENT_FIELDS, (n) => eventField(e, n));
  return ctx;
}

export type ReferenceOutcome = { value: unknown } | { error: string };

/** Runs a parsed (and checked) condition on cel-js's own interpreter. */
export function runReference(parsed: ParseResult, decl: NormalizedDeclarations, input: EvalInput): ReferenceOutcome {
  const prev = current;
  current = input;
  try {
    const value: unknown = parsed(referenceContext(decl, input));
    return { value };
  } catch (e) {
    return { error: e instanceof Error ? (e as { summary?: unknown }).summary?.toString() ?? e.message : String(e) };
  } finally {
    current = prev;
  }
}
