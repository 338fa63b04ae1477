/**
 * The shapes the condition language exchanges with the rest of Cairn: what a blueprint declares
 * (names a condition may use), what an evaluation reads (EvalInput), and what compiling tells the
 * profile engine to keep (CounterSpec).
 */

/** Declared type of a trait or computed trait, as a blueprint writes it. */
export type ValueType = 'string' | 'int' | 'double' | 'bool' | 'timestamp' | 'list' | 'map' | 'dyn';

export const VALUE_TYPES: readonly ValueType[] = ['string', 'int', 'double', 'bool', 'timestamp', 'list', 'map', 'dyn'];

/** The JSON type names a blueprint's data contracts use, as condition value types. */
export const JSON_TYPE_TO_VALUE_TYPE: Readonly<Record<string, ValueType>> = {
  string: 'string',
  integer: 'int',
  number: 'double',
  boolean: 'bool',
  timestamp: 'timestamp',
  object: 'map',
  array: 'list',
  any: 'dyn',
};

export interface EventDeclaration {
  name: string;
  /** Property names when the data contract lists them; absent means "not known, do not check". */
  properties?: readonly string[];
}

/** The names a blueprint declares; conditions may refer to these and nothing else. */
export interface ConditionDeclarations {
  events?: readonly (string | EventDeclaration)[];
  traits?: Readonly<Record<string, ValueType>>;
  /** Computed traits: names (read as dyn) or names with their value type. */
  computed?: readonly string[] | Readonly<Record<string, ValueType>>;
  segments?: readonly string[];
  stages?: readonly string[];
  /** Consent purposes. */
  purposes?: readonly string[];
  channels?: readonly string[];
}

/** The declarations after validation: lookups ready, frozen. */
export interface NormalizedDeclarations {
  readonly events: ReadonlyMap<string, ReadonlySet<string> | null>;
  /** Every property name any event declares; null when some event's properties are unknown. */
  readonly anyEventProperties: ReadonlySet<string> | null;
  readonly traits: ReadonlyMap<string, ValueType>;
  readonly computed: ReadonlyMap<string, ValueType>;
  readonly segments: ReadonlySet<string>;
  readonly stages: ReadonlySet<string>;
  readonly purposes: ReadonlySet<string>;
  readonly channels: ReadonlySet<string>;
}

/**
 * A windowed or lifetime aggregate a condition needs, kept incrementally by the profile engine
 * (bucketed like src/profiles/computed.ts) and read at evaluation through `EvalInput.counter(key)`.
 *
 * - `count`: number of `event` events in the window (whose properties match `where`) → number
 * - `sum`: sum of `property` over those events → number
 * - `last_event`: the newest `event` event → `{ ts: epoch ms, properties }` or undefined
 * - `last_seen`: when `event` last happened → epoch ms or undefined
 */
export interface CounterSpec {
  /** Stable identity: equal specs have equal keys, whatever condition or spelling they came from. */
  readonly key: string;
  readonly kind: 'count' | 'sum' | 'last_event' | 'last_seen';
  readonly event: string;
  readonly property?: string;
  /** The window as written ("60d") and in milliseconds; absent for lifetime aggregates. */
  readonly window?: string;
  readonly windowMs?: number;
  /** Property path → allowed values (any of them matches), as in ResolvedComputedTrait.where. */
  readonly where?: Readonly<Record<string, readonly (string | number | boolean)[]>>;
}

export interface LastEvent {
  /** Epoch milliseconds. */
  ts: number;
  properties: Readonly<Record<string, unknown>>;
}

export interface ConditionEvent {
  name?: string | null;
  type: string;
  properties?: Readonly<Record<string, unknown>> | null;
  /** Epoch milliseconds or ISO-8601. */
  timestamp?: number | string | null;
}

export interface ConditionProfile {
  id: string;
  /** Epoch milliseconds or ISO-8601. */
  first_seen?: number | string | null;
  last_seen?: number | string | null;
}

/** Everything one evaluation reads. JSON values as the profile holds them; see README of types in docs. */
export interface EvalInput {
  traits: Readonly<Record<string, unknown>>;
  computed: Readonly<Record<string, unknown>>;
  /** The triggering event; absent outside event-triggered evaluation (then `event.…` is an error). */
  event?: ConditionEvent | undefined;
  /** Request context: location {country, region, city}, campaign {source, medium, name}, visits, channel, placement, … */
  context: Readonly<Record<string, unknown>>;
  profile: ConditionProfile;
  /** Value of a counter the condition declared (see CompiledCondition.counters). */
  counter(key: string): unknown;
  segments: ReadonlySet<string>;
  stage: string | null;
  consent(purpose: string, channel: string): boolean;
  reachable(channel: string): boolean;
  /** Message stats: whether each of the customer's recent messages was opened, newest first. */
  messages?: { opened: readonly boolean[] } | undefined;
  /** Epoch milliseconds; conditions never read the system clock. */
  now: number;
  /** The workspace time zone, used when traits.timezone is absent or not a valid IANA zone. */
  timezone: string;
}

/** Limits on a user-authored condition (convention 13). */
export interface ConditionLimits {
  /** Characters of source. */
  maxSourceLength: number;
  /** AST nodes produced by the parser. */
  maxAstNodes: number;
  /** Nesting depth of calls, selects, indexes, aggregates and parentheses. */
  maxDepth: number;
  /** Elements of one list literal. */
  maxListElements: number;
  /** Entries of one map literal. */
  maxMapEntries: number;
  maxCallArguments: number;
  /** Iterations of macros over lists and maps (exists, all, filter, map …) in one evaluation. */
  maxEvalSteps: number;
}

export const DEFAULT_LIMITS: Readonly<ConditionLimits> = Object.freeze({
  maxSourceLength: 4096,
  maxAstNodes: 2000,
  maxDepth: 48,
  maxListElements: 1000,
  maxMapEntries: 100,
  maxCallArguments: 16,
  maxEvalSteps: 10_000,
});

/** One observation of an evaluation: a comparison, a call, a boolean operand, with its value. */
export interface ExplainStep {
  /** The source text of the sub-expression. */
  text: string;
  /** JSON-safe: ints as numbers (or strings beyond 2^53), timestamps as ISO strings, errors as {error}. */
  value: unknown;
  offset: number;
  /** For comparisons: the two values compared. */
  operands?: [unknown, unknown];
}

export interface Explanation {
  result: boolean;
  /** Why the condition could not be decided (it then counts as false). */
  error?: string;
  steps: ExplainStep[];
  /** False when the condition ran on the reference interpreter (then steps are empty). */
  compiled: boolean;
}

/** A comparison operator, as if the compared expression were on its left (`7 > x` is `x < 7`). */
export type ComparisonOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/**
 * How a condition reads `days_since(event)` for one event — what the time sweep needs to know when
 * it can flip (src/profiles/due.ts).
 */
export interface DaysSinceEvent {
  readonly event: string;
  /** The last_seen counter the calls read (CounterSpec.key). */
  readonly key: string;
  /**
   * Every use of `days_since(event)` in the condition, when each one is compared with a numeric
   * literal (`days_since(e) > 45`, `0.5 >= days_since(e)`): the operator, days_since on its left,
   * and the literal in days (ints converted, unary minus applied). Null when some use is anything
   * else — arithmetic, a comparison with an expression, an argument, a bind — so its value can
   * matter at any instant.
   */
  readonly comparisons: readonly { readonly op: ComparisonOp; readonly days: number }[] | null;
}

/** The condition's uses of days_since, found on its type-checked syntax tree. */
export interface DaysSinceUses {
  /** One entry per event given to days_since(event), sorted by event. */
  readonly events: readonly DaysSinceEvent[];
  /** days_since is also called in a form not tied to an event (the timestamp overload). */
  readonly unanchored: boolean;
}

/** What a condition refers to: for dependency tracking (which events can change a segment) and lint. */
export interface ConditionReferences {
  readonly traits: readonly string[];
  readonly computed: readonly string[];
  readonly events: readonly string[];
  readonly segments: readonly string[];
  readonly stages: readonly string[];
  readonly purposes: readonly string[];
  readonly channels: readonly string[];
  readonly functions: readonly string[];
  /** Reads `event` (the triggering event). */
  readonly usesEvent: boolean;
  readonly usesContext: boolean;
  /** The result can change with time alone (windows, days_since, local time, now()). */
  readonly dependsOnTime: boolean;
}
