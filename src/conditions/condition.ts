import { ParseError, type Environment, type ParseResult } from '@marcbachmann/cel-js';
import { Analyzer } from './analyze.js';
import { defaultConditionFunctions } from './builtins.js';
import { Compiler, Unsupported, type EvalState, type Ev, type TraceRecord } from './compile.js';
import { createCelEnvironment, normalizeDeclarations, runReference, type ReferenceOutcome } from './environment.js';
import { ConditionError } from './errors.js';
import type { ConditionFunctions } from './functions.js';
import {
  DEFAULT_LIMITS,
  type ConditionDeclarations,
  type ConditionLimits,
  type ConditionReferences,
  type CounterSpec,
  type DaysSinceUses,
  type EvalInput,
  type Explanation,
  type ExplainStep,
  type NormalizedDeclarations,
} from './types.js';
import { BudgetExceeded, CelError, NeedsReference, celTypeOf, toJsonSafe } from './values.js';

export interface CompileOptions extends Partial<ConditionLimits> {
  /** The function registry; defaults to Cairn's built-ins. */
  functions?: ConditionFunctions;
}

/** A condition compiled once at load, evaluated many times. */
export interface CompiledCondition {
  readonly source: string;
  /** False when some construct is not compiled and the whole condition runs on cel-js. */
  readonly compiled: boolean;
  /** Why it is not compiled (the construct), when `compiled` is false. */
  readonly notCompiledReason?: string;
  /** The counters evaluation reads through `input.counter(key)`; the profile engine keeps them. */
  readonly counters: readonly CounterSpec[];
  readonly references: ConditionReferences;
  /** Its uses of days_since, for knowing when time alone can change its value (src/profiles/due.ts). */
  readonly daysSince: DaysSinceUses;
  /** The fast path: true when the condition holds; false when it does not or cannot be decided. */
  evaluate(input: EvalInput): boolean;
  /** The same evaluation, recording every comparison, call and boolean operand with its value. */
  explain(input: EvalInput): Explanation;
}

export interface ReferenceResult {
  result: boolean;
  error?: string;
}

export interface ConditionCompiler {
  readonly declarations: NormalizedDeclarations;
  readonly limits: Readonly<ConditionLimits>;
  readonly functions: ConditionFunctions;
  /** Compiles or throws a ConditionError pointing at the spot. */
  compile(source: string): CompiledCondition;
  /** Runs the condition on cel-js's own interpreter (the reference the compiled form is tested against). */
  reference(source: string, input: EvalInput): ReferenceResult;
}

function normalizeLimits(given: Partial<ConditionLimits>): Readonly<ConditionLimits> {
  const out: ConditionLimits = { ...DEFAULT_LIMITS };
  const problems: string[] = [];
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ConditionLimits)[]) {
    const v = given[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) problems.push(`${key} must be a positive integer, got ${String(v)}`);
    else out[key] = v;
  }
  if (problems.length > 0) throw new Error(`Invalid condition limits: ${problems.join('; ')}`);
  return Object.freeze(out);
}

const EMPTY_VARS: unknown[] = [];

function outcome(r: ReferenceOutcome): ReferenceResult {
  if ('error' in r) return { result: false, error: r.error };
  if (typeof r.value === 'boolean') return { result: r.value };
  return { result: false, error: `the condition gave a ${celTypeOf(r.value)}, not a bool` };
}

const parsedOf = new WeakMap<CompiledCondition, ParseResult>();

class Condition implements CompiledCondition {
  readonly compiled: boolean;
  readonly notCompiledReason?: string;
  readonly #root: Ev | undefined;
  readonly #slots: number;
  readonly #budget: number;
  readonly #parsed: ParseResult;
  readonly #decl: NormalizedDeclarations;

  constructor(
    readonly source: string,
    readonly counters: readonly CounterSpec[],
    readonly references: ConditionReferences,
    readonly daysSince: DaysSinceUses,
    parsed: ParseResult,
    decl: NormalizedDeclarations,
    compiled: { root: Ev; slots: number } | { reason: string },
    budget: number,
  ) {
    this.#parsed = parsed;
    this.#decl = decl;
    this.#budget = budget;
    if ('root' in compiled) {
      this.compiled = true;
      this.#root = compiled.root;
      this.#slots = compiled.slots;
    } else {
      this.compiled = false;
      this.notCompiledReason = compiled.reason;
      this.#root = undefined;
      this.#slots = 0;
    }
    parsedOf.set(this, parsed);
    Object.freeze(this);
  }

  #state(input: EvalInput, trace: TraceRecord[] | null): EvalState {
    return { input, trace, budget: this.#budget, vars: this.#slots === 0 ? EMPTY_VARS : new Array<unknown>(this.#slots) };
  }

  evaluate(input: EvalInput): boolean {
    const root = this.#root;
    if (root === undefined) return outcome(runReference(this.#parsed, this.#decl, input)).result;
    try {
      return root(this.#state(input, null)) === true;
    } catch (e) {
      if (e instanceof BudgetExceeded) return false;
      if (e instanceof NeedsReference) return outcome(runReference(this.#parsed, this.#decl, input)).result;
      throw e;
    }
  }

  explain(input: EvalInput): Explanation {
    const root = this.#root;
    const viaReference = (): Explanation => {
      const r = outcome(runReference(this.#parsed, this.#decl, input));
      return r.error === undefined ? { result: r.result, steps: [], compiled: false } : { result: false, error: r.error, steps: [], compiled: false };
    };
    if (root === undefined) return viaReference();
    const trace: TraceRecord[] = [];
    let v: unknown;
    try {
      v = root(this.#state(input, trace));
    } catch (e) {
      if (e instanceof BudgetExceeded) return { result: false, error: `CAIRN_ERR_CONDITION_LIMIT: ${e.message}`, steps: steps(trace), compiled: true };
      if (e instanceof NeedsReference) return viaReference();
      throw e;
    }
    if (typeof v === 'boolean') return { result: v, steps: steps(trace), compiled: true };
    const error = v instanceof CelError ? v.message : `the condition gave a ${celTypeOf(v)}, not a bool`;
    return { result: false, error, steps: steps(trace), compiled: true };
  }
}

function steps(trace: readonly TraceRecord[]): ExplainStep[] {
  return trace.map((t) => {
    const step: ExplainStep = { text: t.site.text, value: toJsonSafe(t.value), offset: t.site.offset };
    if (t.operands !== undefined) step.operands = [toJsonSafe(t.operands[0]), toJsonSafe(t.operands[1])];
    return step;
  });
}

class Compiler_ implements ConditionCompiler {
  readonly #env: Environment;
  readonly #cache = new Map<string, CompiledCondition>();

  constructor(
    readonly declarations: NormalizedDeclarations,
    readonly functions: ConditionFunctions,
    readonly limits: Readonly<ConditionLimits>,
  ) {
    functions.freeze();
    this.#env = createCelEnvironment(declarations, functions, limits);
  }

  compile(source: string): CompiledCondition {
    const hit = this.#cache.get(source);
    if (hit !== undefined) return hit;
    const c = this.#compile(source);
    if (this.#cache.size >= 10_000) this.#cache.clear();
    this.#cache.set(source, c);
    return c;
  }

  #compile(source: string): CompiledCondition {
    if (typeof source !== 'string') throw new ConditionError('CAIRN_ERR_CONDITION_SYNTAX', '', 0, 0, { reason: 'a condition must be a string' });
    const max = this.limits.maxSourceLength;
    if (source.length > max) {
      throw new ConditionError('CAIRN_ERR_CONDITION_LIMIT', source, max, source.length - max, { reason: `the condition is ${source.length} characters long; the limit is ${max}` });
    }
    if (source.trim() === '') throw new ConditionError('CAIRN_ERR_CONDITION_SYNTAX', source, 0, source.length, { reason: 'the condition is empty' });

    let parsed: ParseResult;
    try {
      parsed = this.#env.parse(source);
    } catch (e) {
      throw fromCelError(e, source, 'CAIRN_ERR_CONDITION_SYNTAX');
    }

    const analyzer = new Analyzer(source, this.declarations, this.functions);
    analyzer.checkNames(parsed.ast);

    const checked = parsed.check();
    if (!checked.valid) throw fromCelError(checked.error, source, 'CAIRN_ERR_CONDITION_TYPE');
    if (checked.type !== 'bool' && checked.type !== 'dyn') {
      throw new ConditionError('CAIRN_ERR_CONDITION_TYPE', source, 0, source.length, { reason: `a condition must give a bool; this one gives ${checked.type ?? 'an unknown type'}` });
    }

    analyzer.resolveCalls(parsed.ast);

    const compiler = new Compiler(source, this.declarations, analyzer, this.limits.maxEvalSteps);
    let compiled: { root: Ev; slots: number } | { reason: string };
    try {
      compiled = { root: compiler.compile(parsed.ast), slots: compiler.slots };
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      compiled = { reason: e.message };
    }
    return new Condition(source, Object.freeze(analyzer.counters), analyzer.references(), analyzer.daysSinceUses(parsed.ast), parsed, this.declarations, compiled, this.limits.maxEvalSteps);
  }

  reference(source: string, input: EvalInput): ReferenceResult {
    const c = this.compile(source);
    const parsed = parsedOf.get(c);
    if (parsed === undefined) throw new Error('condition was not compiled by this module');
    return outcome(runReference(parsed, this.declarations, input));
  }
}

/** Turns a cel-js ParseError/TypeError into a ConditionError at the same spot. */
function fromCelError(e: unknown, source: string, fallback: 'CAIRN_ERR_CONDITION_SYNTAX' | 'CAIRN_ERR_CONDITION_TYPE'): ConditionError {
  if (!(e instanceof Error)) return new ConditionError(fallback, source, 0, source.length, { reason: String(e) });
  const info = e as Error & { code?: unknown; summary?: unknown; range?: { start?: unknown; end?: unknown } };
  const start = typeof info.range?.start === 'number' ? info.range.start : 0;
  const end = typeof info.range?.end === 'number' ? info.range.end : start + 1;
  const reason = typeof info.summary === 'string' ? info.summary : (e.message.split('\n')[0] ?? e.message);
  let code: ConditionError['code'] = e instanceof ParseError ? 'CAIRN_ERR_CONDITION_SYNTAX' : fallback;
  if (info.code === 'limit_exceeded') code = 'CAIRN_ERR_CONDITION_LIMIT';
  return new ConditionError(code, source, start, Math.max(1, end - start), { reason });
}

/**
 * A compiler for one set of declarations: builds the cel-js environment once (it is costly) and
 * compiles every condition of a blueprint against it.
 */
export function createConditionCompiler(declarations: ConditionDeclarations, options: CompileOptions = {}): ConditionCompiler {
  const { functions = defaultConditionFunctions, ...limits } = options;
  return new Compiler_(normalizeDeclarations(declarations), functions, normalizeLimits(limits));
}

const compilers = new WeakMap<ConditionDeclarations, WeakMap<ConditionFunctions, Map<string, ConditionCompiler>>>();

function compilerFor(declarations: ConditionDeclarations, options: CompileOptions): ConditionCompiler {
  const { functions = defaultConditionFunctions, ...limits } = options;
  let byFns = compilers.get(declarations);
  if (byFns === undefined) compilers.set(declarations, (byFns = new WeakMap()));
  let byLimits = byFns.get(functions);
  if (byLimits === undefined) byFns.set(functions, (byLimits = new Map()));
  const key = JSON.stringify(normalizeLimits(limits));
  let c = byLimits.get(key);
  if (c === undefined) byLimits.set(key, (c = createConditionCompiler(declarations, options)));
  return c;
}

/**
 * Compiles a condition against the blueprint's declarations (the compiler is cached per
 * declarations object, so compiling a blueprint's conditions builds one environment).
 *
 * @example
 *   const c = compileCondition('count("Order Completed", "60d") >= 3 && traits.plan == "plus"', decl);
 *   c.counters; // [{ key: '["count","Order Completed",null,5184000000,null]', kind: 'count', … }]
 *   c.evaluate(input); // true | false
 */
export function compileCondition(source: string, declarations: ConditionDeclarations, options: CompileOptions = {}): CompiledCondition {
  return compilerFor(declarations, options).compile(source);
}

/**
 * The type-checked syntax tree a compiled condition was built from, for static analysis (blueprint
 * lint, positions of in_segment() calls). Read it, never change it: the compiled closures and the
 * reference interpreter share it. Undefined for an object this module did not compile.
 */
export function conditionSyntax(c: CompiledCondition): ParseResult['ast'] | undefined {
  return parsedOf.get(c)?.ast;
}

/** The same condition on cel-js's own interpreter, with the behavioural functions registered as cel-js functions. */
export function referenceEvaluate(source: string, declarations: ConditionDeclarations, input: EvalInput, options: CompileOptions = {}): ReferenceResult {
  return compilerFor(declarations, options).reference(source, input);
}
