import type { CounterSpec, EvalInput } from './types.js';

/**
 * The registry of condition functions. Cairn's behavioural functions (count, sum, last, consent …)
 * are registered here exactly the way a third party registers its own (convention 5): a name,
 * overloads with CEL parameter types, and a `bind` that runs once per call site at compile time
 * with the literal arguments and returns the run-time implementation. The same implementation
 * serves the compiled evaluator and the reference interpreter.
 *
 * @example
 *   const fns = createConditionFunctions().register({
 *     name: 'tier_rank',
 *     description: 'Rank of the customer\'s loyalty tier (0 when none).',
 *     overloads: [{ params: [], returns: 'int',
 *       bind: () => (input) => BigInt(['bronze', 'silver', 'gold'].indexOf(String(input.traits.tier)) + 1) }],
 *   });
 *   compileCondition('tier_rank() >= 2', declarations, { functions: fns });
 */

/** What a literal argument names; literals with a role are checked against the declarations. */
export type LiteralRole = 'event' | 'window' | 'property' | 'filter' | 'segment' | 'purpose' | 'channel' | 'stage';

export interface ParamSpec {
  name: string;
  /** CEL type as in a cel-js signature: string, int, double, bool, map<string, dyn>, list<dyn>, google.protobuf.Timestamp, dyn. */
  type: string;
  /**
   * 'required': the argument must be a literal (it selects something kept incrementally, such as
   * an event counter); 'checked': a literal is checked against the declarations, an expression is
   * allowed and read at run time.
   */
  literal?: 'required' | 'checked';
  role?: LiteralRole;
}

export interface CounterRequest {
  kind: CounterSpec['kind'];
  event: string;
  property?: string;
  /** A duration such as "60d" (validated by the role check before bind is called). */
  window?: string;
  /** Property path → value or values (CEL literals: ints as bigint). */
  where?: Readonly<Record<string, unknown>>;
}

export interface BindSite {
  /** Literal argument values as CEL values (ints are bigint); undefined where the argument is an expression. */
  readonly literals: readonly unknown[];
  /** Declares a counter the profile engine must keep; returns the key to read it with `input.counter`. */
  counter(request: CounterRequest): string;
}

/**
 * The run-time implementation of one call site. `args` holds every argument's value (literals
 * included). Returns a CEL value (ints as bigint, doubles as number, timestamps as Date); throwing
 * makes the call an evaluation error (the condition is then false unless `||`/`&&` absorb it).
 * Implementations must be pure functions of `input` and `args`.
 */
export type BoundFunction = (input: EvalInput, args: readonly unknown[]) => unknown;

export interface ConditionOverload {
  params: readonly ParamSpec[];
  /** CEL result type. */
  returns: string;
  /** The result can change with time alone (a sliding window, the time of day). */
  timeDependent?: boolean;
  bind(site: BindSite): BoundFunction;
}

export interface ConditionFunction {
  name: string;
  description: string;
  overloads: readonly ConditionOverload[];
  /** Comparing the result with a string literal checks the literal as this kind of name (stage() == "Active"). */
  resultRole?: LiteralRole;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names CEL or cel-js already define, and the variables: a function may not take them. */
const TAKEN = new Set([
  'has', 'size', 'int', 'uint', 'double', 'string', 'bytes', 'bool', 'dyn', 'type', 'timestamp', 'duration',
  'matches', 'all', 'exists_one', 'map', 'filter', 'null', 'true', 'false', 'in',
  'traits', 'computed', 'event', 'context', 'profile', 'cel', 'google',
]);

const PARAM_TYPE = /^(string|int|double|bool|dyn|google\.protobuf\.Timestamp|list<[a-z.<>, ]+>|map<[a-z.<>, ]+>)$/;

export class ConditionFunctions {
  readonly #fns = new Map<string, ConditionFunction>();
  #frozen = false;

  /** Adds a function; throws on a bad definition or a name already taken. */
  register(fn: ConditionFunction): this {
    if (this.#frozen) throw new Error(`condition functions are frozen once a compiler uses them; register "${fn.name}" on a fresh createConditionFunctions()`);
    const problems: string[] = [];
    if (!NAME.test(fn.name)) problems.push(`name "${fn.name}" is not an identifier`);
    if (TAKEN.has(fn.name)) problems.push(`name "${fn.name}" is taken by CEL or a condition variable`);
    if (this.#fns.has(fn.name)) problems.push(`"${fn.name}" is already registered`);
    if (fn.overloads.length === 0) problems.push('no overloads');
    const arities = new Set<string>();
    for (const o of fn.overloads) {
      for (const p of o.params) {
        if (!PARAM_TYPE.test(p.type)) problems.push(`parameter ${p.name}: unsupported type "${p.type}"`);
        if (p.literal === 'required' && !['string', 'int', 'double', 'bool'].includes(p.type) && !p.type.startsWith('map<'))
          problems.push(`parameter ${p.name}: a literal parameter must be a string, number, bool or map`);
      }
      if (!PARAM_TYPE.test(o.returns)) problems.push(`unsupported result type "${o.returns}"`);
      const sig = o.params.map((p) => p.type).join(',');
      if (arities.has(sig)) problems.push(`two overloads take (${sig})`);
      arities.add(sig);
    }
    if (problems.length > 0) throw new Error(`Invalid condition function "${fn.name}": ${problems.join('; ')}`);
    this.#fns.set(fn.name, Object.freeze({ ...fn, overloads: Object.freeze([...fn.overloads]) }));
    return this;
  }

  get(name: string): ConditionFunction | undefined {
    return this.#fns.get(name);
  }

  has(name: string): boolean {
    return this.#fns.has(name);
  }

  list(): ConditionFunction[] {
    return [...this.#fns.values()];
  }

  /** Called by a compiler that has built its environment from this registry. */
  freeze(): this {
    this.#frozen = true;
    return this;
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  /** An unfrozen copy holding the same functions. */
  clone(): ConditionFunctions {
    const c = new ConditionFunctions();
    for (const f of this.#fns.values()) c.#fns.set(f.name, f);
    return c;
  }
}

/** The cel-js signature of an overload: `count(string, string): int`. */
export function signatureOf(name: string, o: ConditionOverload): string {
  return `${name}(${o.params.map((p) => p.type).join(', ')}): ${o.returns}`;
}
