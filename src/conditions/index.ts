/**
 * The condition language: CEL extended with behavioural functions over the profile. Conditions are
 * compiled once at load (parsed, names checked against the blueprint, type-checked, compiled to
 * closures) and evaluated many times; explanations come from the same compiled closures.
 */
export {
  compileCondition,
  createConditionCompiler,
  referenceEvaluate,
  conditionSyntax,
  type CompileOptions,
  type CompiledCondition,
  type ConditionCompiler,
  type ReferenceResult,
} from './condition.js';
export { ConditionError, CONDITION_ERRORS, codeFrame, isConditionError, type ConditionErrorCode, type ConditionErrorParams } from './errors.js';
export {
  ConditionFunctions,
  signatureOf,
  type BindSite,
  type BoundFunction,
  type ConditionFunction,
  type ConditionOverload,
  type CounterRequest,
  type LiteralRole,
  type ParamSpec,
} from './functions.js';
export { BUILTIN_FUNCTIONS, createConditionFunctions, defaultConditionFunctions } from './builtins.js';
export { counterSpec } from './counters.js';
/** Reading a condition's syntax tree (see conditionSyntax): node children, literals, spans, source text. */
export * as celAst from './ast.js';
export { normalizeDeclarations } from './environment.js';
export { customerZone, isValidTimeZone, localHour, localWeekday, zoneOffset } from './time.js';
export { toCel, toJsonSafe } from './values.js';
export {
  DEFAULT_LIMITS,
  JSON_TYPE_TO_VALUE_TYPE,
  VALUE_TYPES,
  type ConditionDeclarations,
  type ConditionEvent,
  type ConditionLimits,
  type ConditionProfile,
  type ConditionReferences,
  type ComparisonOp,
  type CounterSpec,
  type DaysSinceEvent,
  type DaysSinceUses,
  type EvalInput,
  type EventDeclaration,
  type ExplainStep,
  type Explanation,
  type LastEvent,
  type NormalizedDeclarations,
  type ValueType,
} from './types.js';
