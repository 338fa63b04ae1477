import { DAY, HOUR, parseDuration } from '../core/index.js';
import { zoneOffset, type CompiledCondition } from '../conditions/index.js';
import type { Blueprint, ChannelType, MessageClass, PolicyScope, WorkspaceModel } from '../blueprint/index.js';

/**
 * The contact policy of one blueprint in the form the gate runs: durations in ms, local times in
 * minutes, defaults applied (see docs/contact-policy.md). Built once per blueprint object and
 * cached, so the hot path never re-reads the YAML tree.
 */

export interface ClassPolicy {
  /** The consent purpose this class needs on the channel; undefined: none. */
  purpose: string | undefined;
  /** Counts towards and obeys frequency caps. Default true, except transactional. */
  capped: boolean;
  /** Obeys quiet hours. Default true, except transactional. */
  quietHours: boolean;
}

export type CapWindow = { type: 'rolling'; ms: number; text: string } | { type: 'calendar'; period: 'day' | 'week' | 'month' };

export interface ResolvedCap {
  name: string;
  type: 'global' | 'channel' | 'category';
  channel: string | undefined;
  category: string | undefined;
  limit: number;
  window: CapWindow;
  /** Classes counted and capped; default marketing. */
  classes: readonly MessageClass[];
}

export interface ResolvedQuietHours {
  name: string;
  /** Minutes after local midnight. */
  start: number;
  end: number;
  /** Weekdays (Monday = 0) on which a quiet period begins; null: every day. */
  days: ReadonlySet<number> | null;
  scope: PolicyScope | undefined;
  outcome: 'defer' | 'drop';
  maxDeferralMs: number;
}

export interface ResolvedPause {
  name: string;
  when: CompiledCondition;
  scope: PolicyScope | undefined;
  outcome: 'drop' | 'defer';
  maxDeferralMs: number;
}

export interface ResolvedOutcomePause {
  name: string;
  ignored: number;
  ignoredAfterMs: number;
  pauseMs: number;
  scope: PolicyScope | undefined;
  when: CompiledCondition | undefined;
}

export interface ResolvedExcludeItem {
  name: string;
  event: string;
  path: readonly string[];
  itemKey: string;
  windowMs: number | undefined;
  when: CompiledCondition | undefined;
}

export interface ResolvedChannel {
  name: string;
  type: ChannelType;
  availability: 'live' | 'paused' | 'planned';
  liveFromPhase: string | undefined;
  audience: CompiledCondition | undefined;
  whenUnavailable: 'fallback' | 'defer' | 'drop';
  maxDeferralMs: number;
  /** The adapter name: provider.name, else the channel type (in_app, service_desk …). */
  provider: string;
  settings: Readonly<Record<string, string | number | boolean>>;
}

export interface ResolvedPhase {
  name: string;
  index: number;
  /** Local midnight of the start date in the workspace time zone (epoch ms). */
  startsAt: number;
  /** Channels live in this phase; null: the phase does not restrict channels. */
  channels: ReadonlySet<string> | null;
}

export interface DeliveryPolicy {
  workspaceTimezone: string;
  /** Per class; read through classPolicy(), which answers for a class the map lacks. */
  classes: Readonly<Record<string, ClassPolicy>>;
  caps: readonly ResolvedCap[];
  quietHours: readonly ResolvedQuietHours[];
  pauses: readonly ResolvedPause[];
  outcomePauses: readonly ResolvedOutcomePause[];
  excludeItems: readonly ResolvedExcludeItem[];
  channels: ReadonlyMap<string, ResolvedChannel>;
  /** Rollout phases in date order; empty when the blueprint has no rollout. */
  phases: readonly ResolvedPhase[];
  /** Offer name → its item_key, for matching exclude_item rules to requests. */
  offerItemKeys: ReadonlyMap<string, string>;
  model: WorkspaceModel;
}

export const DEFAULT_QUIET_MAX_DEFERRAL = 12 * HOUR;
export const DEFAULT_PAUSE_MAX_DEFERRAL = 24 * HOUR;
export const DEFAULT_CHANNEL_MAX_DEFERRAL = 24 * HOUR;
export const DEFAULT_IGNORED_AFTER = 3 * DAY;

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

function dur(text: string | undefined, def: number): number {
  return text === undefined ? def : (parseDuration(text) ?? def);
}

/** Epoch ms of local midnight of a YYYY-MM-DD date in `zone`. */
export function localMidnight(date: string, zone: string): number {
  const wall = Date.parse(`${date}T00:00:00.000Z`);
  return wall - zoneOffset(zone, wall - zoneOffset(zone, wall));
}

const cache = new WeakMap<WorkspaceModel, DeliveryPolicy>();

/**
 * The delivery policy of a workspace (cached per model object, which is rebuilt whenever the
 * blueprint changes).
 *
 * @example
 *   const policy = deliveryPolicy(ws.blueprint, ws.model);
 *   policy.caps.find((c) => c.name === 'marketing_per_day')?.limit; // 1
 */
export function deliveryPolicy(bp: Blueprint, model: WorkspaceModel): DeliveryPolicy {
  const hit = cache.get(model);
  if (hit) return hit;
  const pol = bp.policies;
  const classes: Record<string, ClassPolicy> = {};
  for (const cls of ['transactional', 'service', 'marketing'] as const) {
    const rule = pol?.classes?.[cls];
    classes[cls] = { purpose: model.classPurpose[cls], capped: rule?.capped ?? cls !== 'transactional', quietHours: rule?.quiet_hours ?? cls !== 'transactional' };
  }
  const caps: ResolvedCap[] = (pol?.frequency_caps ?? []).map((c) => ({
    name: c.name,
    type: c.type as ResolvedCap['type'],
    channel: c.type === 'channel' ? c.channel : undefined,
    category: c.type === 'category' ? c.category : undefined,
    limit: c.limit,
    window: c.window.type === 'rolling' ? { type: 'rolling', ms: parseDuration(c.window.length) ?? 0, text: c.window.length } : { type: 'calendar', period: c.window.period as 'day' | 'week' | 'month' },
    classes: (c.classes ?? ['marketing']) as MessageClass[],
  }));
  const quietHours: ResolvedQuietHours[] = (pol?.quiet_hours ?? []).map((q) => ({
    name: q.name,
    start: minutes(q.start),
    end: minutes(q.end),
    days: q.days ? new Set(q.days.map((d) => WEEKDAYS.indexOf(d))) : null,
    scope: q.applies_to,
    outcome: q.outcome as 'defer' | 'drop',
    maxDeferralMs: dur(q.max_deferral, DEFAULT_QUIET_MAX_DEFERRAL),
  }));
  const pauses: ResolvedPause[] = [];
  const outcomePauses: ResolvedOutcomePause[] = [];
  const excludeItems: ResolvedExcludeItem[] = [];
  for (const s of model.suppressions) {
    const raw = pol?.suppressions?.find((r) => r.name === s.name);
    if (s.type === 'pause' && raw?.type === 'pause') {
      pauses.push({ name: s.name, when: s.when, scope: s.scope, outcome: (raw.outcome ?? 'drop') as 'drop' | 'defer', maxDeferralMs: dur(raw.max_deferral, DEFAULT_PAUSE_MAX_DEFERRAL) });
    } else if (s.type === 'outcome_pause' && raw?.type === 'outcome_pause') {
      outcomePauses.push({ name: s.name, ignored: raw.ignored, ignoredAfterMs: dur(raw.ignored_after, DEFAULT_IGNORED_AFTER), pauseMs: dur(raw.pause, 0), scope: s.scope, when: s.when });
    } else if (s.type === 'exclude_item') {
      excludeItems.push({ name: s.name, event: s.event, path: s.path, itemKey: s.itemKey, windowMs: s.windowMs, when: s.when });
    }
  }
  const channels = new Map<string, ResolvedChannel>();
  for (const c of bp.channels ?? []) {
    channels.set(c.name, {
      name: c.name,
      type: c.type as ChannelType,
      availability: (c.availability ?? 'live') as ResolvedChannel['availability'],
      liveFromPhase: c.live_from_phase,
      audience: model.channelAudiences.get(c.name),
      whenUnavailable: (c.when_unavailable ?? 'fallback') as ResolvedChannel['whenUnavailable'],
      maxDeferralMs: dur(c.max_deferral, DEFAULT_CHANNEL_MAX_DEFERRAL),
      provider: c.provider?.name ?? c.type,
      settings: c.provider?.settings ?? {},
    });
  }
  const phases: ResolvedPhase[] = (bp.rollout?.phases ?? []).map((p, index) => ({
    name: p.name,
    index,
    startsAt: localMidnight(p.start, model.timezone),
    channels: p.channels ? new Set(p.channels) : null,
  }));
  const policy: DeliveryPolicy = {
    workspaceTimezone: model.timezone,
    classes,
    caps,
    quietHours,
    pauses,
    outcomePauses,
    excludeItems,
    channels,
    phases,
    offerItemKeys: new Map(model.offers.flatMap((o) => (o.itemKey !== undefined ? [[o.name, o.itemKey] as const] : []))),
    model,
  };
  cache.set(model, policy);
  return policy;
}

const UNCONFIGURED: ClassPolicy = { purpose: undefined, capped: true, quietHours: true };

/** The rules of a message class (a class the blueprint does not know is treated like marketing). */
export function classPolicy(policy: DeliveryPolicy, cls: MessageClass): ClassPolicy {
  return policy.classes[cls] ?? policy.classes.marketing ?? UNCONFIGURED;
}

/**
 * The rollout phase in force at `now`: the last phase whose start date (local midnight in the
 * workspace zone) has come. A gap between phases keeps the previous phase; after the last phase
 * ends it stays in force. null before the first phase starts (or without a rollout section).
 */
export function currentPhase(policy: DeliveryPolicy, now: number): ResolvedPhase | null {
  let cur: ResolvedPhase | null = null;
  for (const p of policy.phases) if (p.startsAt <= now) cur = p;
  return cur;
}
