import { LineCounter, parseDocument } from 'yaml';
import { DAY, HOUR, parseDuration } from '../core/index.js';
import type { CompiledCondition, CounterSpec } from '../conditions/index.js';
import { PRESET_RULES } from './presets.js';
import { compileBlueprintConditions } from './conditions.js';
import { BlueprintLocator } from './load.js';
import type { Blueprint, ConsentPurpose, IdentityKey, MappingRule, Source } from './schema.js';

/**
 * The normalized form of a blueprint that the engine runs: defaults applied, durations in ms,
 * lookups prepared. Built once per blueprint version, then frozen.
 */
export interface ResolvedIdentityKey {
  name: string;
  from: string[];
  authenticated: boolean;
  unique: boolean;
  normalize: 'email' | 'phone' | 'none';
  /** Lower is stronger. */
  precedence: number;
}

export interface ResolvedComputedTrait {
  name: string;
  kind: 'count' | 'sum' | 'last' | 'first_seen' | 'last_seen' | 'last_event';
  event: string | undefined;
  types: readonly string[];
  where: [path: string, allowed: readonly (string | number | boolean)[]][];
  property: string | undefined;
  windowMs: number | undefined;
  /** Bucket width in ms: a day for windows of a day or more, an hour below. */
  bucketMs: number;
  /**
   * True for a counter a condition needs (count(), sum(), last(), days_since() …): named by the
   * CounterSpec key, kept by ingest like any computed trait, read through EvalInput.counter(key) and
   * never shown in the profile API's `computed`.
   */
  implicit?: true;
}

/** A segment ready to evaluate. */
export interface ResolvedSegment {
  name: string;
  persona: boolean;
  condition: CompiledCondition;
  /** Segments this one tests with in_segment(). */
  dependsOn: readonly string[];
  /** In a dependency cycle: in_segment() of a cycle member not yet evaluated in a pass reads false. */
  inCycle: boolean;
}

/** A stage ready to evaluate, in declaration (journey) order. */
export interface ResolvedStage {
  name: string;
  /** The stage's lifecycle; '' for the default one (no lifecycle, or `main`, which is its name in the blueprint). */
  lifecycle: string;
  condition: CompiledCondition;
}

export interface WorkspaceModel {
  name: string;
  timezone: string;
  locale: string;
  identity: {
    keys: ResolvedIdentityKey[];
    byName: Map<string, ResolvedIdentityKey>;
    maxIdentitiesPerProfile: number;
    mergeOnUnauthenticated: boolean;
  };
  consent: {
    purposes: Map<string, ConsentPurpose>;
    categoryMap: Record<string, string>;
  };
  sources: Map<string, Source & { rules: MappingRule[] }>;
  /** Declared computed traits, then the implicit condition counters (`implicit: true`). */
  computed: ResolvedComputedTrait[];
  /**
   * Segments in evaluation order: every segment after the segments it reads with in_segment(), so
   * one pass decides membership from the profile alone (previous membership is never an input).
   * Segments in a cycle are ordered by a depth-first walk from declaration order (the first declared
   * member is evaluated after the others it reaches); see ResolvedSegment.inCycle.
   */
  segments: ResolvedSegment[];
  /**
   * Stages in declaration order; per lifecycle, a customer's current stage is the last listed stage
   * whose condition holds (see profiles/stages.ts).
   */
  stages: ResolvedStage[];
}

/** Compiled conditions by YAML path, as parseBlueprint returns them. */
export type CompiledConditionsByPath = ReadonlyMap<string, { compiled: CompiledCondition }>;

export const DEFAULT_IDENTITY_KEYS = ['user_id', 'email', 'phone', 'anonymous_id'];

function defaultFrom(name: string): string[] {
  switch (name) {
    case 'user_id':
      return ['userId'];
    case 'anonymous_id':
      return ['anonymousId'];
    case 'email':
      return ['traits.email', 'context.traits.email', 'properties.email'];
    case 'phone':
      return ['traits.phone', 'context.traits.phone'];
    default:
      return [`externalIds.${name}`, `traits.${name}`, `context.traits.${name}`];
  }
}

/** A computed-trait definition for a condition counter; `last_seen`/`last_event` are lifetime. */
export function counterDefinition(spec: CounterSpec): ResolvedComputedTrait {
  const windowMs = spec.windowMs;
  return {
    name: spec.key,
    kind: spec.kind,
    event: spec.event,
    types: ['track'],
    where: Object.entries(spec.where ?? {}).map(([p, v]) => [p, [...v]] as [string, (string | number | boolean)[]]),
    property: spec.property,
    windowMs,
    bucketMs: windowMs !== undefined && windowMs < DAY ? HOUR : DAY,
    implicit: true,
  };
}

/**
 * Compiles the blueprint's conditions when the caller has not (the blueprint was validated by
 * parseBlueprint already, so no error can surface here and the locator is never read).
 */
function compileAll(bp: Blueprint): CompiledConditionsByPath {
  const lc = new LineCounter();
  const doc = parseDocument('', { lineCounter: lc });
  return compileBlueprintConditions(bp, new BlueprintLocator('blueprint', '', doc, lc)).byPath;
}

/** Orders segments so that each follows those it reads (depth-first, from declaration order). */
function orderSegments(bp: Blueprint, conditions: CompiledConditionsByPath): ResolvedSegment[] {
  const list: ResolvedSegment[] = [];
  (bp.segments ?? []).forEach((s, i) => {
    const entry = conditions.get(`segments[${i}].condition`);
    if (!entry) return;
    list.push({ name: s.name, persona: s.persona !== undefined, condition: entry.compiled, dependsOn: entry.compiled.references.segments, inCycle: false });
  });
  const byName = new Map(list.map((s) => [s.name, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const out: ResolvedSegment[] = [];
  const visit = (s: ResolvedSegment): void => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') {
      s.inCycle = true;
      return;
    }
    state.set(s.name, 'visiting');
    for (const d of s.dependsOn) {
      const dep = byName.get(d);
      if (dep) {
        if (state.get(d) === 'visiting') s.inCycle = dep.inCycle = true;
        visit(dep);
      }
    }
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of list) visit(s);
  return out;
}

export function resolveModel(bp: Blueprint, presets: Record<string, MappingRule[]> = PRESET_RULES, conditions?: CompiledConditionsByPath): WorkspaceModel {
  const keyDecls: IdentityKey[] = bp.identity?.keys ?? DEFAULT_IDENTITY_KEYS.map((name) => ({ name }));
  const keys: ResolvedIdentityKey[] = keyDecls.map((k, i) => ({
    name: k.name,
    from: k.from ?? defaultFrom(k.name),
    authenticated: k.authenticated ?? k.name === 'user_id',
    unique: k.unique ?? k.name === 'user_id',
    normalize: k.normalize ?? (k.name === 'email' ? 'email' : k.name === 'phone' ? 'phone' : 'none'),
    precedence: i,
  }));
  const purposes = new Map((bp.consent?.purposes ?? []).map((p) => [p.name, p]));
  const sources = new Map<string, Source & { rules: MappingRule[] }>();
  for (const s of bp.sources ?? []) {
    sources.set(s.name, { ...s, rules: s.mapping ?? (s.preset ? presets[s.preset] ?? [] : []) });
  }
  const computed: ResolvedComputedTrait[] = (bp.computed_traits ?? []).map((c) => {
    const windowMs = c.window ? parseDuration(c.window) : undefined;
    return {
      name: c.name,
      kind: c.kind,
      event: c.event,
      types: c.types ?? ['track'],
      where: Object.entries(c.where ?? {}).map(([p, v]) => [p, Array.isArray(v) ? v : [v]] as [string, (string | number | boolean)[]]),
      property: c.property,
      windowMs,
      bucketMs: windowMs !== undefined && windowMs < DAY ? HOUR : DAY,
    };
  });
  const compiled = conditions ?? compileAll(bp);
  const counterKeys = new Set<string>();
  for (const { compiled: c } of compiled.values()) {
    for (const spec of c.counters) {
      if (counterKeys.has(spec.key)) continue;
      counterKeys.add(spec.key);
      computed.push(counterDefinition(spec));
    }
  }
  return {
    name: bp.workspace.name,
    timezone: bp.workspace.timezone ?? 'UTC',
    locale: bp.workspace.locale ?? 'en',
    identity: {
      keys,
      byName: new Map(keys.map((k) => [k.name, k])),
      maxIdentitiesPerProfile: bp.identity?.max_identities_per_profile ?? 50,
      mergeOnUnauthenticated: bp.identity?.merge_on_unauthenticated ?? false,
    },
    consent: { purposes, categoryMap: bp.consent?.category_map ?? {} },
    sources,
    computed,
    segments: orderSegments(bp, compiled),
    stages: (bp.stages ?? []).flatMap((st, i) => {
      const entry = compiled.get(`stages[${i}].condition`);
      return entry ? [{ name: st.name, lifecycle: st.lifecycle === undefined || st.lifecycle === 'main' ? '' : st.lifecycle, condition: entry.compiled }] : [];
    }),
  };
}
