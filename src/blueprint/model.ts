import { LineCounter, parseDocument } from 'yaml';
import { DAY, HOUR, parseDuration } from '../core/index.js';
import type { CompiledCondition, CounterSpec } from '../conditions/index.js';
import { PRESET_RULES } from './presets.js';
import { compileBlueprintConditions } from './conditions.js';
import { BlueprintLocator } from './load.js';
import type { Blueprint, ConsentPurpose, ContentBlock, IdentityKey, MappingRule, MessageClass, Offer, OfferCap, PolicyScope, Source } from './schema.js';

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
  /**
   * In a dependency cycle: in_segment() of a cycle member not yet evaluated in a pass reads false.
   * Always false for a blueprint that parseBlueprint loaded, since it refuses cycles
   * (CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE); kept for a Blueprint built in code without those checks.
   */
  inCycle: boolean;
}

/** A stage ready to evaluate, in declaration (journey) order. */
export interface ResolvedStage {
  name: string;
  /** The stage's lifecycle; '' for the default one (no lifecycle, or `main`, which is its name in the blueprint). */
  lifecycle: string;
  condition: CompiledCondition;
}

/** An offer ready to decide on: defaults applied, conditions compiled (see src/decisioning). */
export interface ResolvedOffer {
  name: string;
  /** Declaration order in the blueprint: the tie-break after priority and score. */
  index: number;
  title: string;
  /** null: every stage. */
  stages: ReadonlySet<string> | null;
  placements: readonly string[];
  channels: readonly string[];
  /** null: everyone is eligible. */
  condition: CompiledCondition | null;
  priority: number;
  value: number;
  contextWeights: readonly { when: CompiledCondition; weight: number }[];
  levers: readonly [name: string, factor: number][];
  caps: readonly ResolvedOfferCap[];
  messageClass: MessageClass;
  category: string | undefined;
  itemKey: string | undefined;
  /** YYYY-MM-DD in the workspace time zone, inclusive. */
  validFrom: string | undefined;
  validUntil: string | undefined;
  content: Readonly<Record<string, ContentBlock>>;
  raw: Offer;
}

/** An offer cap with defaults applied; `window` undefined means the cap never resets. */
export interface ResolvedOfferCap {
  per: 'profile' | 'total';
  limit: number;
  count: 'decision' | 'impression' | 'click';
  placements: 'across' | 'each';
  window: { type: 'rolling'; ms: number; text: string } | { type: 'calendar'; period: 'day' | 'week' | 'month' } | undefined;
}

function resolveCap(c: OfferCap): ResolvedOfferCap {
  const w = c.window;
  return {
    per: c.per as ResolvedOfferCap['per'],
    limit: c.limit,
    count: c.count as ResolvedOfferCap['count'],
    placements: (c.placements ?? 'across') as ResolvedOfferCap['placements'],
    window: w === undefined ? undefined : w.type === 'rolling' ? { type: 'rolling', ms: parseDuration(w.length) ?? 0, text: w.length } : { type: 'calendar', period: w.period as 'day' | 'week' | 'month' },
  };
}

export interface ResolvedPlacement {
  name: string;
  type: 'web' | 'app';
  maxOffers: number;
  fallbackOffer: string | undefined;
}

/** Suppression rules a decision honours (see src/decisioning/policy.ts). */
export type ResolvedSuppression =
  | { type: 'pause'; name: string; when: CompiledCondition; scope: PolicyScope | undefined }
  | { type: 'exclude_item'; name: string; event: string; path: readonly string[]; itemKey: string; windowMs: number | undefined; when: CompiledCondition | undefined }
  | { type: 'outcome_pause'; name: string; scope: PolicyScope | undefined; when: CompiledCondition | undefined };

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
   * Loading refuses in_segment() cycles; should a Blueprint built in code hold one, its members are
   * ordered by a depth-first walk from declaration order; see ResolvedSegment.inCycle.
   */
  segments: ResolvedSegment[];
  /**
   * Stages in declaration order; per lifecycle, a customer's current stage is the last listed stage
   * whose condition holds (see profiles/stages.ts).
   */
  stages: ResolvedStage[];
  /** Offers in declaration order. */
  offers: ResolvedOffer[];
  placements: Map<string, ResolvedPlacement>;
  /** Channel name → channel type, for consent and scope checks. */
  channels: Map<string, string>;
  /** Consent purpose a message class needs (policies.classes[class].consent_purpose; marketing defaults to a declared `marketing` purpose). */
  classPurpose: Partial<Record<MessageClass, string>>;
  suppressions: ResolvedSuppression[];
  /** Channel name → its compiled `audience` condition (delivery: who the channel may reach). */
  channelAudiences: Map<string, CompiledCondition>;
  /**
   * Every compiled condition by YAML path (`journeys[0].steps[2].branches[0].condition`), for
   * domains that resolve their own sections from the blueprint (journeys). Optional so that models
   * built in code stay valid; resolveModel always sets it.
   */
  conditions?: CompiledConditionsByPath;
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
    ...resolveDecisioning(bp, compiled, purposes),
    conditions: compiled,
  };
}

function resolveDecisioning(bp: Blueprint, compiled: CompiledConditionsByPath, purposes: Map<string, ConsentPurpose>): Pick<WorkspaceModel, 'offers' | 'placements' | 'channels' | 'classPurpose' | 'suppressions' | 'channelAudiences'> {
  const offers: ResolvedOffer[] = (bp.offers ?? []).map((o, i) => ({
    name: o.name,
    index: i,
    title: o.title ?? o.name,
    stages: o.stages ? new Set(o.stages) : null,
    placements: o.placements ?? [],
    channels: o.channels ?? [],
    condition: compiled.get(`offers[${i}].condition`)?.compiled ?? null,
    priority: o.priority ?? 0,
    value: o.value ?? 1,
    contextWeights: (o.context_weights ?? []).flatMap((w, j) => {
      const c = compiled.get(`offers[${i}].context_weights[${j}].when`);
      return c ? [{ when: c.compiled, weight: w.weight }] : [];
    }),
    levers: Object.entries(o.levers ?? {}),
    caps: (o.caps ?? []).map(resolveCap),
    messageClass: (o.message_class ?? 'marketing') as MessageClass,
    category: o.category,
    itemKey: o.item_key,
    validFrom: o.valid_from,
    validUntil: o.valid_until,
    content: o.content ?? {},
    raw: o,
  }));
  const classes = bp.policies?.classes;
  const classPurpose: Partial<Record<MessageClass, string>> = {};
  for (const cls of ['transactional', 'service', 'marketing'] as const) {
    const p = classes?.[cls]?.consent_purpose ?? (cls === 'marketing' && purposes.has('marketing') ? 'marketing' : undefined);
    if (p !== undefined) classPurpose[cls] = p;
  }
  const suppressions: ResolvedSuppression[] = (bp.policies?.suppressions ?? []).flatMap((s, i): ResolvedSuppression[] => {
    const when = compiled.get(`policies.suppressions[${i}].when`)?.compiled;
    switch (s.type) {
      case 'pause':
        return when ? [{ type: 'pause', name: s.name, when, scope: s.applies_to }] : [];
      case 'exclude_item':
        return [{ type: 'exclude_item', name: s.name, event: s.event, path: s.event_item_path.split('.'), itemKey: s.item_key, windowMs: s.window ? parseDuration(s.window) : undefined, when }];
      case 'outcome_pause':
        return [{ type: 'outcome_pause', name: s.name, scope: s.applies_to, when }];
      default:
        return [];
    }
  });
  return {
    offers,
    placements: new Map((bp.placements ?? []).map((p) => [p.name, { name: p.name, type: p.type as 'web' | 'app', maxOffers: p.max_offers ?? 1, fallbackOffer: p.fallback_offer }])),
    channels: new Map((bp.channels ?? []).map((c) => [c.name, c.type])),
    classPurpose,
    suppressions,
    channelAudiences: new Map((bp.channels ?? []).flatMap((c, i) => {
      const audience = compiled.get(`channels[${i}].audience`)?.compiled;
      return audience ? [[c.name, audience] as const] : [];
    })),
  };
}
