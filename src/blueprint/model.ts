import { DAY, HOUR, parseDuration } from '../core/index.js';
import { PRESET_RULES } from './presets.js';
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
  kind: 'count' | 'sum' | 'last' | 'first_seen' | 'last_seen';
  event: string | undefined;
  types: readonly string[];
  where: [path: string, allowed: readonly (string | number | boolean)[]][];
  property: string | undefined;
  windowMs: number | undefined;
  /** Bucket width in ms: a day for windows of a day or more, an hour below. */
  bucketMs: number;
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
  computed: ResolvedComputedTrait[];
}

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

export function resolveModel(bp: Blueprint, presets: Record<string, MappingRule[]> = PRESET_RULES): WorkspaceModel {
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
  };
}
