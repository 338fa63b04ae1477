import type { ResolvedOffer, ResolvedPlacement, ResolvedSuppression, WorkspaceModel } from '../blueprint/index.js';
import { customerZone, zoneOffset, type EvalInput, type Explanation } from '../conditions/index.js';
import type { CapCounts } from './caps.js';

/**
 * The decision engine: one pass over the candidate offers of a placement or channel, then
 * arbitration. Pure: everything it reads is in its arguments (profile, counts, clock), so the same
 * code decides a live request, a dry run (`cairn explain`) and a test.
 *
 * Per candidate, in order, stopping at the first step that fails (later steps could not change the
 * outcome): valid dates → stage → eligibility condition → consent → suppression. Survivors are
 * scored, ranked (priority desc, score desc, declaration order, name) and walked in rank order:
 * a candidate over a cap is CAP_REACHED, the first `max_offers` others are SELECTED, the rest
 * LOWER_PRIORITY. With `explain`, every step is recorded with what it saw; conditions record their
 * operands through `compiled.explain`, the same compiled closure that `evaluate` runs.
 */

export type ReasonCode = 'SELECTED' | 'NOT_ELIGIBLE' | 'NO_CONSENT' | 'SUPPRESSED' | 'CAP_REACHED' | 'LOWER_PRIORITY' | 'NO_ACTION';
export const REASON_CODES: readonly ReasonCode[] = ['SELECTED', 'NOT_ELIGIBLE', 'NO_CONSENT', 'SUPPRESSED', 'CAP_REACHED', 'LOWER_PRIORITY', 'NO_ACTION'];

export type StepName = 'valid_dates' | 'stage' | 'condition' | 'consent' | 'suppression' | 'cap' | 'score' | 'fallback';

export interface Step {
  step: StepName;
  passed: boolean;
  detail: string;
  /** For `condition` (and context weights under `score`): every comparison and call with its values. */
  condition?: Explanation;
  /** Step-specific values: the score's factors, the cap's count and limit… */
  values?: Record<string, unknown>;
}

export interface CandidateExplanation {
  offer: string;
  outcome: ReasonCode;
  priority: number;
  /** null when the candidate was removed before scoring. */
  score: number | null;
  rank?: number;
  steps: Step[];
}

/** Whatever estimates the probability that a customer takes an offer; 1 until a model is plugged in. */
export interface Propensity {
  estimate(offer: ResolvedOffer, input: EvalInput): number;
}
export const NO_PROPENSITY: Propensity = { estimate: () => 1 };

/** What a decision knows about the customer. */
export interface Subject {
  /** null: the identity is unknown; the decision runs on an empty profile and is not counted per profile. */
  customerId: string | null;
  /** Every current stage, across lifecycles. */
  stages: ReadonlySet<string>;
  input: EvalInput;
  /** exclude_item rule name → item ids the customer must not be offered. */
  excludedItems: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface DecideContext {
  model: WorkspaceModel;
  placement: ResolvedPlacement | null;
  channel: string | null;
  /** Where caps count uses: the placement name, else the channel name. */
  slot: string;
  now: number;
  explain: boolean;
  propensity: Propensity;
}

/** A candidate after the eligibility pass. */
export interface Evaluated {
  offer: ResolvedOffer;
  /** Set when a step before caps removed it. */
  removed: ReasonCode | null;
  score: number;
  steps: Step[];
  scoreStep: Step | null;
}

const dayFormat = (now: number, zone: string): string => new Date(now + zoneOffset(zone, now)).toISOString().slice(0, 10);

/** Whether a scope (policies applies_to) covers an offer decided for `channel`. */
function inScope(scope: { classes?: readonly string[]; channels?: readonly string[]; categories?: readonly string[] } | undefined, offer: ResolvedOffer, channel: string | null): boolean {
  const classes = scope?.classes ?? ['marketing'];
  if (!classes.includes(offer.messageClass)) return false;
  if (scope?.channels && (channel === null || !scope.channels.includes(channel))) return false;
  if (scope?.categories && (offer.category === undefined || !scope.categories.includes(offer.category))) return false;
  return true;
}

function conditionStep(step: 'condition', c: NonNullable<ResolvedOffer['condition']>, input: EvalInput, explain: boolean): Step {
  if (!explain) {
    const ok = c.evaluate(input);
    return { step, passed: ok, detail: '' };
  }
  const ex = c.explain(input);
  return { step, passed: ex.result, detail: ex.error ? `${c.source} could not be decided: ${ex.error}` : `${c.source} is ${ex.result}`, condition: ex };
}

/**
 * The eligibility pass for one candidate. Without `explain` only failing steps carry a detail, and
 * passing steps are not recorded at all.
 */
export function evaluateOffer(offer: ResolvedOffer, subject: Subject, ctx: DecideContext): Evaluated {
  const { explain, model } = ctx;
  const steps: Step[] = [];
  const input = subject.input;
  const fail = (removed: ReasonCode, s: Step): Evaluated => {
    steps.push(s);
    return { offer, removed, score: 0, steps, scoreStep: null };
  };

  // 1. Valid dates, as days in the workspace time zone, inclusive.
  if (offer.validFrom !== undefined || offer.validUntil !== undefined) {
    const today = dayFormat(ctx.now, model.timezone);
    const ok = (offer.validFrom === undefined || today >= offer.validFrom) && (offer.validUntil === undefined || today <= offer.validUntil);
    const detail = `today is ${today}; valid ${offer.validFrom ?? '…'} to ${offer.validUntil ?? '…'}`;
    if (!ok) return fail('NOT_ELIGIBLE', { step: 'valid_dates', passed: false, detail });
    if (explain) steps.push({ step: 'valid_dates', passed: true, detail });
  }

  // 2. Stage.
  if (offer.stages !== null) {
    let ok = false;
    for (const s of subject.stages) if (offer.stages.has(s)) ok = true;
    if (!ok || explain) {
      const detail = `customer stage ${subject.stages.size ? [...subject.stages].join(', ') : '(none)'}; offer stages ${[...offer.stages].join(', ')}`;
      if (!ok) return fail('NOT_ELIGIBLE', { step: 'stage', passed: false, detail });
      steps.push({ step: 'stage', passed: true, detail });
    }
  }

  // 3. Eligibility condition.
  if (offer.condition !== null) {
    const s = conditionStep('condition', offer.condition, input, explain);
    if (!s.passed) {
      if (!explain) s.detail = `${offer.condition.source} is false`;
      return fail('NOT_ELIGIBLE', s);
    }
    if (explain) steps.push(s);
  }

  // 4. Consent: the purpose the offer's message class needs, on the request's channel (or the
  // placement's type), when the purpose covers that channel.
  const purposeName = model.classPurpose[offer.messageClass];
  if (purposeName !== undefined) {
    const channel = ctx.channel ?? ctx.placement?.type ?? '*';
    const purpose = model.consent.purposes.get(purposeName);
    const channelType = model.channels.get(channel);
    const covers = !purpose?.channels || purpose.channels.includes(channel) || (channelType !== undefined && purpose.channels.includes(channelType));
    if (!covers) {
      if (explain) steps.push({ step: 'consent', passed: true, detail: `purpose ${purposeName} does not cover ${channel}` });
    } else {
      const ok = input.consent(purposeName, channel);
      const detail = `${purposeName} on ${channel}: ${ok ? 'granted' : 'not granted'}`;
      if (!ok) return fail('NO_CONSENT', { step: 'consent', passed: false, detail });
      if (explain) steps.push({ step: 'consent', passed: true, detail });
    }
  } else if (explain) steps.push({ step: 'consent', passed: true, detail: `class ${offer.messageClass} needs no consent purpose` });

  // 5. Suppression rules that apply at decision time.
  for (const rule of model.suppressions) {
    const s = suppressionStep(rule, offer, subject, ctx);
    if (s === null) continue;
    if (!s.passed) return fail('SUPPRESSED', s);
    if (explain) steps.push(s);
  }

  // Score (recorded after the cap step during arbitration): propensity × value × weights × levers.
  const propensity = ctx.propensity.estimate(offer, input);
  let score = propensity * offer.value;
  let weights: { when: string; weight: number; held: boolean; condition?: Explanation }[] | undefined;
  if (explain) weights = [];
  for (const w of offer.contextWeights) {
    let held: boolean;
    if (explain) {
      const ex = w.when.explain(input);
      held = ex.result;
      weights?.push({ when: w.when.source, weight: w.weight, held, condition: ex });
    } else held = w.when.evaluate(input);
    if (held) score *= w.weight;
  }
  for (const [, f] of offer.levers) score *= f;
  const scoreStep: Step | null = explain
    ? { step: 'score', passed: true, detail: `priority ${offer.priority}, score ${round(score)}`, values: { priority: offer.priority, propensity, value: offer.value, weights, levers: Object.fromEntries(offer.levers), score: round(score) } }
    : null;
  return { offer, removed: null, score, steps, scoreStep };
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

function suppressionStep(rule: ResolvedSuppression, offer: ResolvedOffer, subject: Subject, ctx: DecideContext): Step | null {
  switch (rule.type) {
    case 'pause': {
      if (!inScope(rule.scope, offer, ctx.channel)) return null;
      if (!ctx.explain) {
        const held = rule.when.evaluate(subject.input);
        return held ? { step: 'suppression', passed: false, detail: `${rule.name}: ${rule.when.source} holds` } : { step: 'suppression', passed: true, detail: '' };
      }
      const ex = rule.when.explain(subject.input);
      return { step: 'suppression', passed: !ex.result, detail: `${rule.name}: ${rule.when.source} is ${ex.result}`, condition: ex };
    }
    case 'exclude_item': {
      if (offer.itemKey !== rule.itemKey) return null;
      const item = subject.input.context[rule.itemKey];
      if (typeof item !== 'string' && typeof item !== 'number') return { step: 'suppression', passed: true, detail: `${rule.name}: no ${rule.itemKey} in the context` };
      const excluded = subject.excludedItems.get(rule.name)?.has(String(item)) ?? false;
      return { step: 'suppression', passed: !excluded, detail: `${rule.name}: ${rule.itemKey} ${String(item)} ${excluded ? `was named by a ${rule.event} event` : `not named by any ${rule.event} event`}` };
    }
    case 'outcome_pause':
      // Needs message outcomes (opened/clicked), which orchestration keeps; not checked at decide.
      return null;
    default:
      return null;
  }
}

/** What a cap counts, for step details: `per profile, decisions in home_hero in the last 1d`. */
function capText(cap: ResolvedOffer['caps'][number], slot: string): string {
  return `${cap.per === 'profile' ? 'per profile' : 'in total'}, ${cap.count}s${cap.placements === 'each' ? ` in ${slot}` : ''}${cap.window ? (cap.window.type === 'rolling' ? ` in the last ${cap.window.text}` : ` this ${cap.window.period}`) : ''}`;
}

/** A finished decision. */
export interface DecisionOutcome {
  outcome: 'SELECTED' | 'NO_ACTION';
  /** Returned offers in rank order (the fallback, if one was served, is flagged). */
  selected: { offer: ResolvedOffer; score: number; rank: number; fallback: boolean }[];
  /** Why each candidate that was not returned lost, by offer name. */
  reasons: Record<string, ReasonCode>;
  candidates: CandidateExplanation[] | undefined;
}

/** Rank order: priority desc, score desc, declaration order, name. Total, so ties never depend on input order. */
export function compareEvaluated(a: Evaluated, b: Evaluated): number {
  return b.offer.priority - a.offer.priority || b.score - a.score || a.offer.index - b.offer.index || (a.offer.name < b.offer.name ? -1 : a.offer.name > b.offer.name ? 1 : 0);
}

/**
 * Caps and selection. `counts` holds what is stored plus what earlier decisions of the same batch
 * added; a selected offer is recorded into it, so the next decision sees it.
 */
export function arbitrate(evaluated: readonly Evaluated[], subject: Subject, ctx: DecideContext, counts: CapCounts): DecisionOutcome {
  const { model, explain } = ctx;
  const max = ctx.placement?.maxOffers ?? 1;
  const zone = customerZone(subject.input.traits.timezone, model.timezone);
  const eligible = evaluated.filter((e) => e.removed === null).sort(compareEvaluated);
  const outcomes = new Map<Evaluated, ReasonCode>();
  const selected: DecisionOutcome['selected'] = [];
  for (const e of eligible) {
    let capped: Step | null = null;
    for (const cap of e.offer.caps) {
      const n = counts.count(e.offer, cap, ctx.slot, subject.customerId, ctx.now, zone, model.timezone);
      if (n >= cap.limit) {
        capped = { step: 'cap', passed: false, detail: `${n} of ${cap.limit} ${capText(cap, ctx.slot)}`, values: { count: n, limit: cap.limit, per: cap.per, counted: cap.count } };
        break;
      }
      if (explain) e.steps.push({ step: 'cap', passed: true, detail: `${n} of ${cap.limit} ${capText(cap, ctx.slot)}`, values: { count: n, limit: cap.limit, per: cap.per, counted: cap.count } });
    }
    if (capped) {
      e.steps.push(capped);
      outcomes.set(e, 'CAP_REACHED');
      continue;
    }
    if (e.scoreStep) e.steps.push(e.scoreStep);
    if (selected.length < max) {
      selected.push({ offer: e.offer, score: e.score, rank: selected.length + 1, fallback: false });
      outcomes.set(e, 'SELECTED');
      counts.recordDecision(e.offer, ctx.slot, subject.customerId, ctx.now, model.timezone);
    } else outcomes.set(e, 'LOWER_PRIORITY');
  }

  // Nothing selected: the placement's fallback, unless a policy (consent, suppression, cap) removed it.
  let fallbackStep: { name: string; step: Step } | null = null;
  if (selected.length === 0 && ctx.placement?.fallbackOffer !== undefined) {
    const fb = ctx.placement.fallbackOffer;
    const offer = model.offers.find((o) => o.name === fb);
    const own = evaluated.find((e) => e.offer.name === fb);
    let blocked = own !== undefined && (own.removed === 'NO_CONSENT' || own.removed === 'SUPPRESSED' || outcomes.get(own) === 'CAP_REACHED');
    // Removed by stage or condition (or not a candidate at all): the pass stopped before consent and
    // suppressions, which still apply to the default. Run them without the steps a fallback skips —
    // but not its dates: an offer past valid_until (or before valid_from) is not shown as a default either.
    if (!blocked && offer !== undefined && (own === undefined || own.removed === 'NOT_ELIGIBLE')) {
      blocked = evaluateOffer({ ...offer, stages: null, condition: null, contextWeights: [] }, subject, { ...ctx, explain: false }).removed !== null;
    }
    // A fallback that was not a candidate, or was not eligible, still obeys its caps.
    const capped = offer !== undefined && !blocked && offer.caps.some((cap) => counts.count(offer, cap, ctx.slot, subject.customerId, ctx.now, zone, model.timezone) >= cap.limit);
    if (offer && !blocked && !capped) {
      selected.push({ offer, score: 0, rank: 1, fallback: true });
      counts.recordDecision(offer, ctx.slot, subject.customerId, ctx.now, model.timezone);
      fallbackStep = { name: fb, step: { step: 'fallback', passed: true, detail: `no other offer was selected; ${fb} is the fallback of ${ctx.placement.name}` } };
    }
  }

  const reasons: Record<string, ReasonCode> = {};
  for (const e of evaluated) {
    const code = e.removed ?? outcomes.get(e) ?? 'LOWER_PRIORITY';
    if (code !== 'SELECTED' && !(fallbackStep && fallbackStep.name === e.offer.name)) reasons[e.offer.name] = code;
  }

  let candidates: CandidateExplanation[] | undefined;
  if (explain) {
    candidates = evaluated.map((e) => {
      const sel = selected.find((s) => s.offer === e.offer);
      const steps = fallbackStep?.name === e.offer.name ? [...e.steps, fallbackStep.step] : e.steps;
      return { offer: e.offer.name, outcome: sel ? 'SELECTED' : (reasons[e.offer.name] ?? 'LOWER_PRIORITY'), priority: e.offer.priority, score: e.removed === null ? round(e.score) : null, ...(sel ? { rank: sel.rank } : {}), steps };
    });
    if (fallbackStep && !evaluated.some((e) => e.offer.name === fallbackStep?.name)) {
      const offer = selected[0]?.offer as ResolvedOffer;
      candidates.push({ offer: offer.name, outcome: 'SELECTED', priority: offer.priority, score: null, rank: 1, steps: [fallbackStep.step] });
    }
  }
  const anyChosen = selected.some((s) => !s.fallback);
  return { outcome: anyChosen ? 'SELECTED' : 'NO_ACTION', selected, reasons, candidates };
}
