import { MINUTE } from '../core/index.js';
import { zoneOffset, type EvalInput } from '../conditions/index.js';
import { periodStart } from '../decisioning/index.js';
import { isReachable, type ProfileRow } from '../profiles/index.js';
import type { MessageClass, PolicyScope } from '../blueprint/index.js';
import { classPolicy, currentPhase, type DeliveryPolicy, type ResolvedCap, type ResolvedChannel, type ResolvedQuietHours } from './policy.js';
import type { GateOutcome, MessageRequest, NotSentReason } from './types.js';

/**
 * The contact policy gate: pure, so the live path, the re-gate of deferred messages and the unit
 * tests run the same code. Everything it reads is in its arguments.
 *
 * Per request, in this order (the first check that stops a request gives its reason):
 *  1. exclude_item suppressions: a promoted item the customer returned        → drop SUPPRESSED
 *  2. channel choice along request.channels: declared, live in the rollout phase, not paused or
 *     down (CHANNEL_UNAVAILABLE), reachable and in the channel's audience (UNREACHABLE) — each per
 *     the channel's when_unavailable: fallback to the next, defer, or drop — and consent for the
 *     class's purpose on that channel (NO_CONSENT: always falls back)
 *  3. pause suppressions on the chosen channel                               → drop or defer SUPPRESSED
 *  4. outcome pauses (N ignored messages → pause D)                          → drop SUPPRESSED
 *  5. quiet hours in the customer's zone                                     → defer to the end, or drop QUIET_HOURS
 *  6. frequency caps, after arbitration (below)                              → CAP_REACHED / LOWER_PRIORITY
 * A deferral that would end later than requestedAt + the rule's max_deferral is DEFERRAL_EXPIRED.
 *
 * Arbitration before capping: every request of the call that reaches step 6, together with the
 * customer's still-displaceable queued messages (queued within the arbitration window and not yet
 * dispatched), is ranked by priority (desc), then request time, then key. In that order each takes
 * a slot when every cap it is subject to has room. A loser is CAP_REACHED when one of its caps was
 * already full with messages that are no longer displaceable, and LOWER_PRIORITY when the slot it
 * needed went to a higher-ranked competitor. A displaced queued message is reported in `displaced`.
 */

/** What the gate knows about the customer. */
export interface CustomerState {
  customerId: string;
  /** Condition input (traits, counters, consent, segments, stage) at the gate's now. */
  input: EvalInput;
  /** For reachability: identities held by the profile. */
  row: Pick<ProfileRow, 'identities'>;
  /** The customer's time zone (traits.timezone when valid, else the workspace zone). */
  zone: string;
  /** exclude_item rule name → item ids the customer must not be sent. */
  excludedItems: ReadonlyMap<string, ReadonlySet<string>>;
  /** Channel types reachable through addresses stored outside the profile (web push subscriptions). */
  storedAddresses?: ReadonlySet<string>;
}

/** A message that counts towards caps (status queued, sending or sent), from the ledger. */
export interface DispatchEntry {
  key: string;
  channel: string;
  category: string | undefined;
  messageClass: MessageClass;
  priority: number;
  requestedAt: number;
  decidedAt: number;
  /** Queued within the arbitration window and not yet claimed: a higher-priority request may take its slot. */
  displaceable: boolean;
}

/** A sent message and whether the customer engaged with it, for outcome pauses. */
export interface SentEntry {
  channel: string;
  category: string | undefined;
  messageClass: MessageClass;
  sentAt: number;
  /** When it was first opened or clicked; null if never. */
  engagedAt: number | null;
}

export interface LedgerView {
  dispatched: readonly DispatchEntry[];
  /** Oldest first. */
  sent: readonly SentEntry[];
}

export interface GateOptions {
  /** Channels whose provider is down right now (CHANNEL_UNAVAILABLE). */
  isDown?: (channel: string) => boolean;
  /** When a deferral has no known end (a pause, a paused channel), re-check after this. Default 1h. */
  recheckMs?: number;
}

export interface Displaced {
  key: string;
  reason: NotSentReason;
  rule: string;
  detail: string;
}

export interface GateResult {
  /** One per request, in request order. */
  outcomes: GateOutcome[];
  /** Queued messages (from the ledger) that lost their slot to a higher-priority request. */
  displaced: Displaced[];
}

const DEFAULT_RECHECK = 60 * MINUTE;

/** Whether a policy scope covers a message (classes default to marketing only). */
export function inScope(scope: PolicyScope | undefined, messageClass: MessageClass, channel: string | undefined, category: string | undefined): boolean {
  const classes = scope?.classes ?? ['marketing'];
  if (!classes.includes(messageClass)) return false;
  if (scope?.channels && (channel === undefined || !scope.channels.includes(channel))) return false;
  if (scope?.categories && (category === undefined || !scope.categories.includes(category))) return false;
  return true;
}

const iso = (t: number): string => new Date(t).toISOString();

const HOUR_MS = 3_600_000;

/**
 * Converts a local wall-clock instant (ms, as if UTC) in `zone` to epoch ms. The offsets 14 hours
 * before and after are tried (any DST change in between is one of them): a repeated wall time
 * (fall-back night) gives its first occurrence; one in a spring-forward gap does not exist and
 * maps past the gap — never to an instant before it, which would end a quiet period in the past
 * and have the dispatcher re-gate the message on every pass until the gap.
 */
function wallToUtc(wall: number, zone: string): number {
  const a = wall - zoneOffset(zone, wall - 14 * HOUR_MS);
  const b = wall - zoneOffset(zone, wall + 14 * HOUR_MS);
  const valid = [a, b].filter((c) => c + zoneOffset(zone, c) === wall);
  return valid.length > 0 ? Math.min(...valid) : Math.max(a, b);
}

/**
 * The end (epoch ms) of the quiet period of `rule` that `now` falls in, in `zone`; null when `now`
 * is outside it. A period begins at `start` on each listed day and ends at `end`, the next day when
 * end ≤ start (so 21:00–08:00 runs overnight; equal times mean 24 hours).
 */
export function quietPeriodEnd(rule: ResolvedQuietHours, now: number, zone: string): number | null {
  const offset = zoneOffset(zone, now);
  const wall = now + offset;
  const dayStart = Math.floor(wall / 86_400_000) * 86_400_000;
  const dow = (new Date(dayStart).getUTCDay() + 6) % 7;
  const overnight = rule.end <= rule.start;
  const periodOf = (startDay: number): [number, number] => [startDay + rule.start * MINUTE, startDay + (overnight ? 86_400_000 : 0) + rule.end * MINUTE];
  const starts: [number, number][] = [[dayStart, dow]];
  if (overnight) starts.push([dayStart - 86_400_000, (dow + 6) % 7]);
  for (const [day, weekday] of starts) {
    if (rule.days !== null && !rule.days.has(weekday)) continue;
    const [s, e] = periodOf(day);
    if (wall >= s && wall < e) return wallToUtc(e, zone);
  }
  return null;
}

function capWindowStart(cap: ResolvedCap, now: number, zone: string): number {
  return cap.window.type === 'rolling' ? now - cap.window.ms : periodStart(now, zone, cap.window.period);
}

function capCovers(cap: ResolvedCap, policy: DeliveryPolicy, m: { messageClass: MessageClass; channel: string; category: string | undefined }): boolean {
  if (!classPolicy(policy, m.messageClass).capped || !cap.classes.includes(m.messageClass)) return false;
  if (cap.type === 'channel') return m.channel === cap.channel;
  if (cap.type === 'category') return m.category !== undefined && m.category === cap.category;
  return true;
}

function capText(cap: ResolvedCap): string {
  const w = cap.window.type === 'rolling' ? `in the last ${cap.window.text}` : `this calendar ${cap.window.period}`;
  const what = cap.type === 'global' ? 'messages' : cap.type === 'channel' ? `${cap.channel} messages` : `${cap.category} messages`;
  return `${cap.limit} ${what} ${w}`;
}

/** Why a channel cannot be used right now, or null when it can. */
function channelProblem(ch: ResolvedChannel | undefined, name: string, policy: DeliveryPolicy, state: CustomerState, now: number, opts: GateOptions): { reason: NotSentReason; detail: string; retryAt: number | null } | null {
  if (!ch) return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: not declared in the blueprint`, retryAt: null };
  if (ch.availability === 'planned') return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: planned, never sends`, retryAt: null };
  if (ch.availability === 'paused') return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: paused`, retryAt: null };
  const phase = currentPhase(policy, now);
  if (ch.liveFromPhase !== undefined) {
    const from = policy.phases.find((p) => p.name === ch.liveFromPhase);
    if (from && (phase === null || phase.index < from.index)) {
      return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: live from rollout phase ${from.name} (starts ${iso(from.startsAt)}); current phase ${phase?.name ?? '(none: the rollout has not started)'}`, retryAt: from.startsAt };
    }
  }
  if (phase !== null && phase.channels !== null && !phase.channels.has(name)) {
    const next = policy.phases.find((p) => p.index > phase.index && (p.channels === null || p.channels.has(name)));
    return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: not among the channels of rollout phase ${phase.name}`, retryAt: next ? next.startsAt : null };
  }
  if (opts.isDown?.(name)) return { reason: 'CHANNEL_UNAVAILABLE', detail: `${name}: provider ${ch.provider} is down`, retryAt: null };
  const viaAddress = ch.type === 'email' || ch.type === 'sms' || ch.type === 'push';
  const subscribed = state.storedAddresses?.has(ch.type) === true || (ch.type === 'push' && Array.isArray(state.input.traits.push_subscriptions) && state.input.traits.push_subscriptions.length > 0);
  if (viaAddress && !subscribed && !isReachable(state.row, state.input.traits, ch.type)) return { reason: 'UNREACHABLE', detail: `${name}: the profile has no ${ch.type === 'email' ? 'email address' : ch.type === 'sms' ? 'phone number' : 'push subscription'}`, retryAt: null };
  if (ch.audience && !ch.audience.evaluate(state.input)) return { reason: 'UNREACHABLE', detail: `${name}: outside the channel audience (${ch.audience.source} is false)`, retryAt: null };
  return null;
}

/** Consent for the class's purpose on the channel, when the purpose covers the channel. */
function consentProblem(ch: ResolvedChannel, req: MessageRequest, policy: DeliveryPolicy, state: CustomerState): string | null {
  const purposeName = classPolicy(policy, req.messageClass).purpose;
  if (purposeName === undefined) return null;
  const purpose = policy.model.consent.purposes.get(purposeName);
  const covers = !purpose?.channels || purpose.channels.includes(ch.name) || purpose.channels.includes(ch.type);
  if (!covers) return null;
  return state.input.consent(purposeName, ch.name) ? null : `${ch.name}: no ${purposeName} consent`;
}

type Stop = { outcome: 'defer' | 'drop'; reason: NotSentReason; rule?: string; detail: string; until?: number; maxDeferralMs?: number };

function finish(stop: Stop, req: MessageRequest): GateOutcome {
  if (stop.outcome === 'defer') {
    const until = stop.until as number;
    const max = stop.maxDeferralMs ?? Infinity;
    if (until - req.requestedAt > max) {
      return { outcome: 'drop', reason: 'DEFERRAL_EXPIRED', ...(stop.rule !== undefined ? { rule: stop.rule } : {}), detail: `${stop.detail}; would wait until ${iso(until)}, past the maximum deferral of ${Math.round(max / MINUTE)} min from the request at ${iso(req.requestedAt)}` };
    }
    return { outcome: 'defer', until, reason: stop.reason, ...(stop.rule !== undefined ? { rule: stop.rule } : {}), detail: stop.detail };
  }
  return { outcome: 'drop', reason: stop.reason, ...(stop.rule !== undefined ? { rule: stop.rule } : {}), detail: stop.detail };
}

/** When an outcome pause holds: walks sent messages in scope oldest first (see docs/contact-policy.md). */
export function outcomePauseUntil(rule: { ignored: number; ignoredAfterMs: number; pauseMs: number; scope: PolicyScope | undefined }, sent: readonly SentEntry[], now: number): number | null {
  let run = 0;
  let pausedUntil = -Infinity;
  for (const m of sent) {
    if (!inScope(rule.scope, m.messageClass, m.channel, m.category)) continue;
    if (m.sentAt < pausedUntil) continue;
    const settledAt = m.sentAt + rule.ignoredAfterMs;
    const engaged = m.engagedAt !== null && m.engagedAt <= settledAt;
    if (engaged) {
      run = 0;
      continue;
    }
    if (settledAt > now) break; // not yet known whether it is ignored
    run++;
    if (run >= rule.ignored) {
      pausedUntil = settledAt + rule.pauseMs;
      run = 0;
    }
  }
  return pausedUntil > now ? pausedUntil : null;
}

interface Candidate {
  index: number; // request index, or -1 for a ledger entry
  key: string;
  priority: number;
  requestedAt: number;
  messageClass: MessageClass;
  channel: string;
  category: string | undefined;
}

/**
 * Runs the contact policy for requests of one customer at `now`.
 *
 * @example
 *   const { outcomes } = evaluateGate(policy, state, { dispatched: [], sent: [] }, [req], now);
 *   outcomes[0]; // { outcome: 'send', channel: 'email', channelType: 'email' }
 */
export function evaluateGate(policy: DeliveryPolicy, state: CustomerState, ledger: LedgerView, requests: readonly MessageRequest[], now: number, opts: GateOptions = {}): GateResult {
  const recheck = opts.recheckMs ?? DEFAULT_RECHECK;
  const outcomes: (GateOutcome | undefined)[] = new Array(requests.length).fill(undefined);
  const capped: Candidate[] = [];
  const chosen: { channel: ResolvedChannel; detail: string }[] = [];

  requests.forEach((req, i) => {
    const cls = classPolicy(policy, req.messageClass);
    const stop = (s: Stop): void => {
      outcomes[i] = finish(s, req);
    };

    // 1. Items the customer returned (exclude_item), matched by the offer's item_key.
    if (req.items && req.items.length > 0) {
      const key = req.offer !== undefined ? policy.offerItemKeys.get(req.offer) : undefined;
      for (const rule of policy.excludeItems) {
        if (key !== undefined && rule.itemKey !== key) continue;
        const excluded = state.excludedItems.get(rule.name);
        const hit = req.items.find((it) => excluded?.has(it));
        if (hit !== undefined) return stop({ outcome: 'drop', reason: 'SUPPRESSED', rule: rule.name, detail: `item ${hit} was named by a ${rule.event} event` });
      }
    }

    // 2. Channel choice with graceful degradation.
    const passed: string[] = [];
    let channel: ResolvedChannel | undefined;
    let firstProblem: Stop | undefined;
    let firstConsent: Stop | undefined;
    for (const name of req.channels) {
      const ch = policy.channels.get(name);
      const p = channelProblem(ch, name, policy, state, now, opts);
      if (p) {
        const mode = ch?.whenUnavailable ?? 'fallback';
        if (ch && mode === 'defer') {
          const until = p.retryAt !== null && p.retryAt > now ? p.retryAt : now + recheck;
          return stop({ outcome: 'defer', reason: p.reason, rule: name, detail: `${[...passed, p.detail].join('; ')}; deferred (when_unavailable: defer)`, until, maxDeferralMs: ch.maxDeferralMs });
        }
        if (ch && mode === 'drop') return stop({ outcome: 'drop', reason: p.reason, rule: name, detail: `${[...passed, p.detail].join('; ')} (when_unavailable: drop)` });
        passed.push(p.detail);
        firstProblem ??= { outcome: 'drop', reason: p.reason, rule: name, detail: '' };
        continue;
      }
      const c = consentProblem(ch as ResolvedChannel, req, policy, state);
      if (c) {
        passed.push(c);
        firstConsent ??= { outcome: 'drop', reason: 'NO_CONSENT', rule: name, detail: '' };
        firstProblem ??= firstConsent;
        continue;
      }
      channel = ch;
      break;
    }
    if (!channel) {
      // A channel that works but lacks the customer's consent says more than one that is planned or
      // down: NO_CONSENT is reported when any channel failed on consent (the detail lists them all).
      const first = firstConsent ?? firstProblem ?? { outcome: 'drop' as const, reason: 'CHANNEL_UNAVAILABLE' as const, detail: '' };
      return stop({ ...first, detail: passed.length > 0 ? passed.join('; ') : 'the request names no channel' });
    }
    chosen[i] = { channel, detail: passed.join('; ') };

    // 3. Pause suppressions.
    for (const rule of policy.pauses) {
      if (!inScope(rule.scope, req.messageClass, channel.name, req.category)) continue;
      if (!rule.when.evaluate(state.input)) continue;
      const detail = `${rule.when.source} holds`;
      if (rule.outcome === 'defer') return stop({ outcome: 'defer', reason: 'SUPPRESSED', rule: rule.name, detail, until: now + recheck, maxDeferralMs: rule.maxDeferralMs });
      return stop({ outcome: 'drop', reason: 'SUPPRESSED', rule: rule.name, detail });
    }

    // 4. Outcome pauses.
    for (const rule of policy.outcomePauses) {
      if (!inScope(rule.scope, req.messageClass, channel.name, req.category)) continue;
      if (rule.when && !rule.when.evaluate(state.input)) continue;
      const until = outcomePauseUntil(rule, ledger.sent, now);
      if (until !== null) return stop({ outcome: 'drop', reason: 'SUPPRESSED', rule: rule.name, detail: `${rule.ignored} messages in a row were ignored; paused until ${iso(until)}` });
    }

    // 5. Quiet hours.
    if (cls.quietHours) {
      for (const rule of policy.quietHours) {
        if (!inScope(rule.scope, req.messageClass, channel.name, req.category)) continue;
        const end = quietPeriodEnd(rule, now, state.zone);
        if (end === null) continue;
        const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
        const detail = `quiet ${hhmm(rule.start)}–${hhmm(rule.end)} in ${state.zone}`;
        if (rule.outcome === 'drop') return stop({ outcome: 'drop', reason: 'QUIET_HOURS', rule: rule.name, detail });
        return stop({ outcome: 'defer', reason: 'QUIET_HOURS', rule: rule.name, detail: `${detail}; deferred to the end of the period`, until: end, maxDeferralMs: rule.maxDeferralMs });
      }
    }

    // 6. Caps: collected for arbitration below; uncapped classes go straight through.
    const applicable = policy.caps.filter((cap) => capCovers(cap, policy, { messageClass: req.messageClass, channel: channel.name, category: req.category }));
    if (applicable.length === 0) {
      outcomes[i] = send(channel, chosen[i]?.detail ?? '');
      return;
    }
    capped.push({ index: i, key: req.key, priority: req.priority, requestedAt: req.requestedAt, messageClass: req.messageClass, channel: channel.name, category: req.category });
  });

  const displaced: Displaced[] = [];
  if (capped.length > 0) {
    // Counts that no competitor can change: dispatches that are no longer displaceable.
    const fixed = ledger.dispatched.filter((d) => !d.displaceable);
    const competitors: Candidate[] = [
      ...capped,
      ...ledger.dispatched.filter((d) => d.displaceable).map((d) => ({ index: -1, key: d.key, priority: d.priority, requestedAt: d.requestedAt, messageClass: d.messageClass, channel: d.channel, category: d.category })),
    ];
    competitors.sort((a, b) => b.priority - a.priority || a.requestedAt - b.requestedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const winners: Candidate[] = [];
    const inWindow = (cap: ResolvedCap, t: number): boolean => t >= capWindowStart(cap, now, state.zone) && t <= now;
    for (const c of competitors) {
      let lost: { reason: 'CAP_REACHED' | 'LOWER_PRIORITY'; cap: ResolvedCap; base: number; by: Candidate | undefined } | undefined;
      for (const cap of policy.caps) {
        if (!capCovers(cap, policy, c)) continue;
        const base = fixed.filter((d) => capCovers(cap, policy, d) && inWindow(cap, d.decidedAt)).length;
        if (base >= cap.limit) {
          lost = { reason: 'CAP_REACHED', cap, base, by: undefined };
          break;
        }
        const taken = winners.filter((w) => capCovers(cap, policy, w));
        if (base + taken.length >= cap.limit) lost ??= { reason: 'LOWER_PRIORITY', cap, base, by: taken[taken.length - 1] };
      }
      if (!lost) {
        winners.push(c);
        if (c.index >= 0) outcomes[c.index] = send(chosen[c.index]?.channel as ResolvedChannel, chosen[c.index]?.detail ?? '');
        continue;
      }
      const detail =
        lost.reason === 'CAP_REACHED'
          ? `cap ${lost.cap.name} (${capText(lost.cap)}) already reached: ${lost.base} dispatched`
          : `cap ${lost.cap.name} (${capText(lost.cap)}): the last slot went to ${lost.by ? `${lost.by.key} (priority ${lost.by.priority})` : 'a higher-priority message'}; this one has priority ${c.priority}`;
      if (c.index >= 0) outcomes[c.index] = { outcome: 'drop', reason: lost.reason, rule: lost.cap.name, detail };
      else displaced.push({ key: c.key, reason: lost.reason, rule: lost.cap.name, detail });
    }
  }
  return { outcomes: outcomes as GateOutcome[], displaced };
}

function send(channel: ResolvedChannel, detail: string): GateOutcome {
  return { outcome: 'send', channel: channel.name, channelType: channel.type, ...(detail ? { detail: `passed over: ${detail}` } : {}) };
}
