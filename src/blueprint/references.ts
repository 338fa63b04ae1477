import { assertUnreachable, closest, parseCron, parseDuration } from '../core/index.js';
import { isValidTimeZone } from '../conditions/index.js';
import { PRESET_NAMES, PRESET_RULES } from './presets.js';
import type { BlueprintIssue, BlueprintLocator } from './load.js';
import type { Blueprint, Content, ContentBlock, Journey, JourneyStep, MappingRule, PolicyScope, Source } from './schema.js';

/**
 * Checks that run after the schema: names are unique where they are declared, and every name used
 * elsewhere (an offer's stage, a journey's offer, a phase's channel…) is declared. Each problem
 * points at the referencing value and suggests the closest declared name.
 *
 * Events are checked against data contracts: when any source declares its events, an event named
 * in a journey, goal, KPI or rule must be declared (an error); when no source has a contract, an
 * event that no mapping produces gets a warning instead, since there is nothing to check it against.
 */

type Path = (string | number)[];

export interface ReferenceReport {
  errors: BlueprintIssue[];
  warnings: BlueprintIssue[];
}

const CODE = 'CAIRN_ERR_BLUEPRINT_REFERENCE' as const;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 12).map((n) => `"${n}"`);
  return shown.join(', ') + (names.length > shown.length ? `, … (${names.length} in all)` : '');
}

/** "unknown stage "onbording" — did you mean "onboarding"? (declared: …)". */
export function unknownName(what: string, name: string, declared: readonly string[], where: string): string {
  if (declared.length === 0) return `unknown ${what} "${name}": no ${what} is declared (declare it under ${where})`;
  const guess = closest(name, declared);
  return `unknown ${what} "${name}"${guess ? ` — did you mean "${guess}"?` : ''} (declared: ${listNames(declared)})`;
}

/** Real calendar date (rejects 2026-02-30). */
function isDate(text: string): boolean {
  const d = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === text;
}

const literalEvent = (e: string | undefined): e is string => e !== undefined && !e.includes('${');

class Checker {
  readonly errors: BlueprintIssue[] = [];
  readonly warnings: BlueprintIssue[] = [];
  private readonly warned = new Set<string>();

  constructor(private readonly loc: BlueprintLocator) {}

  error(path: Path, message: string, atKey = false): void {
    this.errors.push(this.loc.issue(CODE, path, message, atKey));
  }

  warn(path: Path, message: string, once?: string): void {
    if (once !== undefined) {
      if (this.warned.has(once)) return;
      this.warned.add(once);
    }
    this.warnings.push({ ...this.loc.issue(CODE, path, message), severity: 'warning' });
  }

  /**
   * Each `key` in the list is unique; the second occurrence is the error, at `keyName` of the item
   * (or at the item itself for a list of names, keyName null).
   */
  unique<T>(list: readonly T[] | undefined, at: Path, key: (item: T) => string | undefined, what: string, keyName: string | null = 'name'): void {
    const seen = new Map<string, number>();
    list?.forEach((item, i) => {
      const k = key(item);
      if (k === undefined) return;
      const first = seen.get(k);
      if (first !== undefined) this.error(keyName === null ? [...at, i] : [...at, i, keyName], `${what} "${k}" is ${keyName === null ? 'listed' : 'declared'} twice (first at item ${first + 1})`);
      else seen.set(k, i);
    });
  }

  /** True when `name` is declared; otherwise reports it at `path`. */
  ref(name: string, declared: Declared, path: Path): boolean {
    if (declared.has(name)) return true;
    this.error(path, unknownName(declared.what, name, declared.names, declared.where));
    return false;
  }
}

/** Names declared in one section. */
class Declared {
  readonly set: Set<string>;
  constructor(
    readonly what: string,
    readonly where: string,
    readonly names: string[],
  ) {
    this.set = new Set(names);
  }
  has(name: string): boolean {
    return this.set.has(name);
  }
}

interface EventDecl {
  source: string;
  properties?: Record<string, { type: string }>;
  closedProperties: boolean;
}

/**
 * Events and traits as the blueprint declares them: events from source contracts, and for sources
 * without a contract the events their mappings produce; traits from contracts, mappings, computed
 * traits and journey update steps.
 */
export class Vocabulary {
  readonly events = new Map<string, EventDecl>();
  readonly traits = new Set<string>();
  readonly contractTraits = new Set<string>();
  readonly anyEventContract: boolean;
  readonly anyTraitContract: boolean;

  constructor(bp: Blueprint) {
    const sources = bp.sources ?? [];
    this.anyEventContract = sources.some((s) => s.contract?.events !== undefined);
    this.anyTraitContract = sources.some((s) => s.contract?.traits !== undefined);
    for (const s of sources) {
      if (s.contract?.events) {
        for (const e of s.contract.events) this.events.set(e.name, { source: s.name, properties: e.properties, closedProperties: e.additional_properties === false });
      } else {
        for (const r of rulesOf(s)) if (r.type === 'track' && literalEvent(r.event) && !this.events.has(r.event)) this.events.set(r.event, { source: s.name, closedProperties: false });
      }
      for (const t of Object.keys(s.contract?.traits ?? {})) {
        this.traits.add(t);
        this.contractTraits.add(t);
      }
      for (const r of rulesOf(s)) for (const t of Object.keys(r.traits ?? {})) this.traits.add(t);
    }
    for (const c of bp.computed_traits ?? []) this.traits.add(c.name);
    for (const j of bp.journeys ?? []) for (const st of j.steps) if (st.type === 'update_trait') this.traits.add(st.trait);
  }
}

function rulesOf(s: Source): MappingRule[] {
  return s.mapping ?? (s.preset ? (PRESET_RULES[s.preset] ?? []) : []);
}

/** Where a step goes next, with the path of the key that says so (none for an implicit next). */
interface Edge {
  target: string;
  path: Path | undefined;
}

function successors(step: JourneyStep, following: string | undefined, at: Path): Edge[] {
  const implicit = (key: string, explicit: string | undefined): Edge[] => (explicit !== undefined ? [{ target: explicit, path: [...at, key] }] : following !== undefined ? [{ target: following, path: undefined }] : []);
  switch (step.type) {
    case 'wait':
    case 'wait_until':
    case 'send':
    case 'update_trait':
    case 'move_stage':
    case 'webhook':
      return implicit('next', step.next);
    case 'wait_for_event':
      return [...implicit('next', step.next), ...implicit('on_timeout', step.on_timeout)];
    case 'branch':
      return [...step.branches.map((b, i) => ({ target: b.next, path: [...at, 'branches', i, 'next'] })), ...(step.otherwise !== undefined ? [{ target: step.otherwise, path: [...at, 'otherwise'] }] : [])];
    case 'split':
      return step.variants.map((v, i) => ({ target: v.next, path: [...at, 'variants', i, 'next'] }));
    case 'exit':
      return [];
    default:
      return assertUnreachable(step);
  }
}

const isWait = (s: JourneyStep): boolean => s.type === 'wait' || s.type === 'wait_until' || s.type === 'wait_for_event';

/** What each kind of channel needs in its content block. */
function missingContent(kind: string, block: ContentBlock): string | undefined {
  const need = (keys: (keyof ContentBlock)[], all: boolean): string | undefined => {
    const have = keys.filter((k) => block[k] !== undefined);
    if (all ? have.length === keys.length : have.length > 0) return undefined;
    return all ? keys.filter((k) => block[k] === undefined).join(' and ') : keys.join(' or ');
  };
  switch (kind) {
    case 'email':
      return need(['subject', 'body'], true);
    case 'sms':
    case 'webhook':
      return need(['body'], true);
    case 'push':
      return need(['headline'], true);
    case 'in_app':
    case 'service_desk':
      return need(['headline', 'body'], false);
    case 'placement':
      return need(['headline', 'body', 'image'], false);
    default:
      return undefined;
  }
}

export function checkReferences(bp: Blueprint, loc: BlueprintLocator): ReferenceReport {
  const c = new Checker(loc);
  checkFoundation(bp, c);
  if (bp.workspace.timezone !== undefined && !isValidTimeZone(bp.workspace.timezone)) {
    c.error(['workspace', 'timezone'], `"${bp.workspace.timezone}" is not an IANA time zone (e.g. Europe/Lisbon)`);
  }

  const names = <T extends { name: string }>(list: readonly T[] | undefined): string[] => (list ?? []).map((x) => x.name);
  const channels = new Declared('channel', 'channels', names(bp.channels));
  const channelType = new Map((bp.channels ?? []).map((ch) => [ch.name, ch.type]));
  const categories = new Declared('category', 'policies.categories', names(bp.policies?.categories));
  const purposes = new Declared('consent purpose', 'consent.purposes', names(bp.consent?.purposes));
  const segments = new Declared('segment', 'segments', names(bp.segments));
  const stages = new Declared('stage', 'stages', names(bp.stages));
  const placements = new Declared('placement', 'placements', names(bp.placements));
  const offers = new Declared('offer', 'offers', names(bp.offers));
  const journeys = new Declared('journey', 'journeys', names(bp.journeys));
  const experiments = new Declared('experiment', 'experiments.tests', names(bp.experiments?.tests));
  const phases = new Declared('rollout phase', 'rollout.phases', names(bp.rollout?.phases));
  const vocab = new Vocabulary(bp);
  const computed = new Set((bp.computed_traits ?? []).map((t) => t.name));

  c.unique(bp.channels, ['channels'], (x) => x.name, 'channel');
  c.unique(bp.policies?.categories, ['policies', 'categories'], (x) => x.name, 'category');
  c.unique(bp.segments, ['segments'], (x) => x.name, 'segment');
  c.unique(bp.stages, ['stages'], (x) => x.name, 'stage');
  c.unique(bp.placements, ['placements'], (x) => x.name, 'placement');
  c.unique(bp.offers, ['offers'], (x) => x.name, 'offer');
  c.unique(bp.journeys, ['journeys'], (x) => x.name, 'journey');
  c.unique(bp.experiments?.tests, ['experiments', 'tests'], (x) => x.name, 'experiment');
  c.unique(bp.rollout?.phases, ['rollout', 'phases'], (x) => x.name, 'rollout phase');
  c.unique(bp.kpis, ['kpis'], (x) => x.name, 'KPI');

  /** An event named somewhere: declared in a contract (error if contracts exist), else a warning. */
  const event = (name: string, path: Path): void => {
    if (vocab.events.has(name)) return;
    const declared = [...vocab.events.keys()];
    if (vocab.anyEventContract) {
      const guess = closest(name, declared);
      c.error(path, `event "${name}" is not declared in any source contract${guess ? ` — did you mean "${guess}"?` : ''} (declared: ${listNames(declared)})`);
    }
    else c.warn(path, `event "${name}" is not declared in a data contract and no source mapping produces it, so it cannot be checked (declare it under sources[].contract.events)`, `event:${name}`);
  };
  /** A numeric property of an event (a revenue amount), checked against the event's contract. */
  const numericProperty = (eventName: string, property: string, path: Path): void => {
    const decl = vocab.events.get(eventName);
    if (!decl?.properties) return;
    const spec = decl.properties[property];
    if (!spec) {
      const msg = unknownName(`property of "${eventName}"`, property, Object.keys(decl.properties), `the contract of source "${decl.source}"`);
      if (decl.closedProperties) c.error(path, msg);
      else c.warn(path, `${msg}; the contract does not list it`);
      return;
    }
    if (spec.type !== 'number' && spec.type !== 'integer' && spec.type !== 'any') c.error(path, `property "${property}" of "${eventName}" is declared as ${spec.type}; an amount needs a number`);
  };
  const trait = (name: string, path: Path): void => {
    if (vocab.traits.has(name)) return;
    const msg = unknownName('trait', name, [...vocab.traits], 'a source contract (sources[].contract.traits) or computed_traits');
    if (vocab.anyTraitContract) c.error(path, msg);
    else c.warn(path, msg, `trait:${name}`);
  };
  const channelRefs = (list: readonly string[] | undefined, at: Path): void => list?.forEach((ch, i) => c.ref(ch, channels, [...at, i]));
  const scope = (s: PolicyScope | undefined, at: Path): void => {
    if (!s) return;
    channelRefs(s.channels, [...at, 'channels']);
    s.categories?.forEach((cat, i) => c.ref(cat, categories, [...at, 'categories', i]));
  };
  const date = (text: string | undefined, path: Path): boolean => {
    if (text === undefined) return true;
    if (isDate(text)) return true;
    c.error(path, `"${text}" is not a calendar date`);
    return false;
  };
  const dateOrder = (from: string | undefined, to: string | undefined, at: Path, fromKey: string, toKey: string): void => {
    const ok = date(from, [...at, fromKey]) && date(to, [...at, toKey]);
    if (ok && from !== undefined && to !== undefined && to < from) c.error([...at, toKey], `${toKey} ${to} is before ${fromKey} ${from}`);
  };
  /** Content keys are channels or placements the owner lists; each block has what its channel needs. */
  const content = (blocks: Content | undefined, allowed: Map<string, string>, at: Path, owner: string): void => {
    for (const [key, block] of Object.entries(blocks ?? {})) {
      const kind = allowed.get(key);
      if (kind === undefined) {
        const known = [...allowed.keys()];
        const guess = closest(key, known);
        c.error([...at, key], `${owner} has content for "${key}", which is not one of its channels or placements${guess ? ` — did you mean "${guess}"?` : ''} (${known.length ? `listed: ${listNames(known)}` : 'it lists none'})`, true);
        continue;
      }
      const missing = missingContent(kind, block);
      if (missing) c.error([...at, key], `${owner}: content for ${kind} "${key}" needs ${missing}`, true);
      block.variants?.forEach((v, i) => {
        if (v.segment !== undefined) c.ref(v.segment, segments, [...at, key, 'variants', i, 'segment']);
      });
    }
  };

  // Consent purposes that name channels, once channels are declared.
  if (bp.channels) {
    const types = new Set(bp.channels.map((ch) => ch.type as string));
    bp.consent?.purposes.forEach((p, i) =>
      p.channels?.forEach((ch, j) => {
        if (!channels.has(ch) && !types.has(ch) && ch !== '*') c.ref(ch, channels, ['consent', 'purposes', i, 'channels', j]);
      }),
    );
  }

  // Channels
  bp.channels?.forEach((ch, i) => {
    if (ch.live_from_phase !== undefined) c.ref(ch.live_from_phase, phases, ['channels', i, 'live_from_phase']);
    if (ch.max_deferral !== undefined && ch.when_unavailable !== 'defer') c.error(['channels', i, 'max_deferral'], `channel "${ch.name}": max_deferral applies only with when_unavailable: defer`);
  });

  // Contact policies
  const pol = bp.policies;
  if (pol) {
    for (const cls of ['transactional', 'service', 'marketing'] as const) {
      const p = pol.classes?.[cls]?.consent_purpose;
      if (p !== undefined) c.ref(p, purposes, ['policies', 'classes', cls, 'consent_purpose']);
    }
    c.unique(pol.frequency_caps, ['policies', 'frequency_caps'], (x) => x.name, 'frequency cap');
    pol.frequency_caps?.forEach((cap, i) => {
      const at: Path = ['policies', 'frequency_caps', i];
      switch (cap.type) {
        case 'global':
          break;
        case 'channel':
          c.ref(cap.channel, channels, [...at, 'channel']);
          break;
        case 'category':
          c.ref(cap.category, categories, [...at, 'category']);
          break;
        default:
          assertUnreachable(cap);
      }
    });
    c.unique(pol.quiet_hours, ['policies', 'quiet_hours'], (x) => x.name, 'quiet hours rule');
    pol.quiet_hours?.forEach((q, i) => {
      const at: Path = ['policies', 'quiet_hours', i];
      if (q.start === q.end) c.error([...at, 'end'], `quiet hours "${q.name}" start and end at the same time`);
      if (q.max_deferral !== undefined && q.outcome !== 'defer') c.error([...at, 'max_deferral'], `quiet hours "${q.name}": max_deferral applies only with outcome: defer`);
      scope(q.applies_to, [...at, 'applies_to']);
    });
    c.unique(pol.suppressions, ['policies', 'suppressions'], (x) => x.name, 'suppression rule');
    pol.suppressions?.forEach((s, i) => {
      const at: Path = ['policies', 'suppressions', i];
      switch (s.type) {
        case 'pause':
          scope(s.applies_to, [...at, 'applies_to']);
          if (s.max_deferral !== undefined && s.outcome !== 'defer') c.error([...at, 'max_deferral'], `suppression "${s.name}": max_deferral applies only with outcome: defer`);
          break;
        case 'exclude_item':
          event(s.event, [...at, 'event']);
          break;
        case 'outcome_pause':
          scope(s.applies_to, [...at, 'applies_to']);
          break;
        default:
          assertUnreachable(s);
      }
    });
  }

  // Segments and stages hold only conditions (compiled by the condition language).

  // Placements
  bp.placements?.forEach((p, i) => {
    if (p.fallback_offer === undefined) return;
    if (!c.ref(p.fallback_offer, offers, ['placements', i, 'fallback_offer'])) return;
    const offer = bp.offers?.find((o) => o.name === p.fallback_offer);
    if (offer && !(offer.placements ?? []).includes(p.name)) c.error(['placements', i, 'fallback_offer'], `fallback offer "${offer.name}" does not list placement "${p.name}" under its placements`);
  });

  // Offers
  bp.offers?.forEach((o, i) => {
    const at: Path = ['offers', i];
    o.stages?.forEach((s, j) => c.ref(s, stages, [...at, 'stages', j]));
    o.placements?.forEach((p, j) => c.ref(p, placements, [...at, 'placements', j]));
    channelRefs(o.channels, [...at, 'channels']);
    if (o.category !== undefined) c.ref(o.category, categories, [...at, 'category']);
    if (!o.channels?.length && !o.placements?.length) c.error([...at, 'name'], `offer "${o.name}" has neither channels nor placements, so it can never be shown`);
    dateOrder(o.valid_from, o.valid_until, at, 'valid_from', 'valid_until');
    c.unique(o.channels, [...at, 'channels'], (x) => x, 'channel', null);
    const allowed = new Map<string, string>();
    for (const ch of o.channels ?? []) {
      const kind = channelType.get(ch);
      if (kind !== undefined) allowed.set(ch, kind);
    }
    for (const p of o.placements ?? []) if (placements.has(p)) allowed.set(p, 'placement');
    content(o.content, allowed, [...at, 'content'], `offer "${o.name}"`);
    const listed = (list: readonly string[] | undefined, key: string): void =>
      list?.forEach((name, j) => {
        if (allowed.has(name) && o.content?.[name] === undefined) c.error([...at, key, j], `offer "${o.name}" lists ${key === 'channels' ? 'channel' : 'placement'} "${name}" but has no content for it (add content.${name})`);
      });
    listed(o.channels, 'channels');
    listed(o.placements, 'placements');
  });

  // Journeys
  bp.journeys?.forEach((j, ji) => checkJourney(j, ['journeys', ji], bp, c, { offers, stages, segments, channels, channelType, categories, computed, event }));

  // Experiments
  const exp = bp.experiments;
  exp?.tests?.forEach((t, i) => {
    const at: Path = ['experiments', 'tests', i];
    let targetChannels: string[] | undefined;
    switch (t.target.type) {
      case 'journey': {
        const target = t.target;
        if (!c.ref(target.journey, journeys, [...at, 'target', 'journey'])) break;
        if (target.step === undefined) break;
        const journey = bp.journeys?.find((x) => x.name === target.journey);
        const step = journey?.steps.find((s) => s.id === target.step);
        if (!journey) break;
        if (!step) c.error([...at, 'target', 'step'], unknownName(`step of journey "${journey.name}"`, target.step, journey.steps.map((s) => s.id), `journeys.${journey.name}.steps`));
        else if (step.type !== 'send') c.error([...at, 'target', 'step'], `step "${step.id}" of journey "${journey.name}" is a ${step.type} step; experiments target send steps`);
        else targetChannels = step.channel !== undefined ? [step.channel] : (bp.offers?.find((o) => o.name === step.offer)?.channels ?? []);
        break;
      }
      case 'offer': {
        const target = t.target;
        if (c.ref(target.offer, offers, [...at, 'target', 'offer'])) {
          const offer = bp.offers?.find((o) => o.name === target.offer);
          targetChannels = [...(offer?.channels ?? []), ...(offer?.placements ?? [])];
        }
        break;
      }
      default:
        assertUnreachable(t.target);
    }
    c.unique(t.goals, [...at, 'goals'], (g) => g.name, 'goal');
    t.goals.forEach((g, gi) => {
      const gat: Path = [...at, 'goals', gi];
      switch (g.type) {
        case 'conversion':
          event(g.event, [...gat, 'event']);
          break;
        case 'revenue':
          event(g.event, [...gat, 'event']);
          numericProperty(g.event, g.property, [...gat, 'property']);
          break;
        default:
          assertUnreachable(g);
      }
    });
    if (t.primary_goal !== undefined) c.ref(t.primary_goal, new Declared('goal', `experiments.tests[${i}].goals`, t.goals.map((g) => g.name)), [...at, 'primary_goal']);
    dateOrder(t.starts, t.ends, at, 'starts', 'ends');
    switch (t.type) {
      case 'holdout':
        if (t.percent <= 0) c.error([...at, 'percent'], `holdout "${t.name}" holds out nobody; give a percent above 0`);
        break;
      case 'ab': {
        c.unique(t.variants, [...at, 'variants'], (v) => v.name, 'variant');
        if (t.control !== undefined) c.ref(t.control, new Declared('variant', `experiments.tests[${i}].variants`, t.variants.map((v) => v.name)), [...at, 'control']);
        const allowed = new Map<string, string>();
        for (const name of targetChannels ?? []) {
          const kind = channelType.get(name) ?? (placements.has(name) ? 'placement' : undefined);
          if (kind !== undefined) allowed.set(name, kind);
        }
        t.variants.forEach((v, vi) => {
          if (v.offer !== undefined) c.ref(v.offer, offers, [...at, 'variants', vi, 'offer']);
          if (v.content !== undefined && targetChannels !== undefined) content(v.content, allowed, [...at, 'variants', vi, 'content'], `variant "${v.name}"`);
        });
        break;
      }
      default:
        assertUnreachable(t);
    }
  });

  // Rollout
  const ro = bp.rollout;
  if (ro) {
    let previousStart: string | undefined;
    const phaseIndex = new Map(ro.phases.map((p, i) => [p.name, i]));
    ro.phases.forEach((p, i) => {
      const at: Path = ['rollout', 'phases', i];
      dateOrder(p.start, p.end, at, 'start', 'end');
      if (previousStart !== undefined && isDate(p.start) && p.start < previousStart) c.error([...at, 'start'], `phase "${p.name}" starts ${p.start}, before the phase listed above it (${previousStart}); list phases in date order`);
      if (isDate(p.start)) previousStart = p.start;
      p.channels?.forEach((name, j) => {
        if (!c.ref(name, channels, [...at, 'channels', j])) return;
        const from = bp.channels?.find((ch) => ch.name === name)?.live_from_phase;
        const fromIndex = from !== undefined ? phaseIndex.get(from) : undefined;
        if (fromIndex !== undefined && i < fromIndex) c.error([...at, 'channels', j], `channel "${name}" is live from phase "${from}" (channels.${name}.live_from_phase) but phase "${p.name}" comes before it`);
      });
      c.unique(p.channels, [...at, 'channels'], (x) => x, 'channel', null);
      p.journeys?.forEach((name, j) => c.ref(name, journeys, [...at, 'journeys', j]));
      if (p.pilot?.segment !== undefined) c.ref(p.pilot.segment, segments, [...at, 'pilot', 'segment']);
    });
    c.unique(ro.raci, ['rollout', 'raci'], (x) => x.area, 'RACI area', 'area');
    ro.assumptions?.forEach((a, i) => date(a.validate_by, ['rollout', 'assumptions', i, 'validate_by']));
    ro.open_questions?.forEach((q, i) => {
      date(q.due, ['rollout', 'open_questions', i, 'due']);
      if (q.blocks_phase !== undefined) c.ref(q.blocks_phase, phases, ['rollout', 'open_questions', i, 'blocks_phase']);
    });
    ro.standardize_before_scaling?.forEach((s, i) => {
      if (s.before_phase !== undefined) c.ref(s.before_phase, phases, ['rollout', 'standardize_before_scaling', i, 'before_phase']);
    });
  }

  // KPIs
  bp.kpis?.forEach((k, i) => {
    const at: Path = ['kpis', i];
    const m = k.metric;
    switch (m.type) {
      case 'event_rate':
        event(m.event, [...at, 'metric', 'event']);
        break;
      case 'revenue_per_customer':
        event(m.event, [...at, 'metric', 'event']);
        numericProperty(m.event, m.property, [...at, 'metric', 'property']);
        break;
      case 'message':
        if (m.channel !== undefined) c.ref(m.channel, channels, [...at, 'metric', 'channel']);
        if (m.journey !== undefined) c.ref(m.journey, journeys, [...at, 'metric', 'journey']);
        if (m.offer !== undefined) c.ref(m.offer, offers, [...at, 'metric', 'offer']);
        break;
      case 'experiment_lift': {
        if (!c.ref(m.experiment, experiments, [...at, 'metric', 'experiment'])) break;
        const goals = bp.experiments?.tests?.find((t) => t.name === m.experiment)?.goals ?? [];
        c.ref(m.goal, new Declared('goal', `the goals of experiment "${m.experiment}"`, goals.map((g) => g.name)), [...at, 'metric', 'goal']);
        break;
      }
      case 'trait_average':
        trait(m.trait, [...at, 'metric', 'trait']);
        break;
      case 'external':
        break;
      default:
        assertUnreachable(m);
    }
    if (k.cohort !== undefined) c.ref(k.cohort, segments, [...at, 'cohort']);
    if (k.by === undefined && k.within === undefined) c.error([...at, 'name'], `KPI "${k.name}" needs a deadline: give by (a date) or within (a duration)`);
    if (k.by !== undefined && k.within !== undefined) c.error([...at, 'within'], `KPI "${k.name}" gives both by and within; keep one`);
    date(k.by, [...at, 'by']);
    if (k.from_phase !== undefined) {
      if (k.within === undefined) c.error([...at, 'from_phase'], `KPI "${k.name}": from_phase applies only with within`);
      c.ref(k.from_phase, phases, [...at, 'from_phase']);
    } else if (k.within !== undefined && !ro) c.error([...at, 'within'], `KPI "${k.name}" counts within from the first rollout phase, but there is no rollout section; give by (a date) instead`);
  });

  // Events in computed traits and source contracts.
  bp.computed_traits?.forEach((t, i) => {
    if (t.event !== undefined && (t.types === undefined || t.types.includes('track'))) event(t.event, ['computed_traits', i, 'event']);
  });
  bp.sources?.forEach((s, i) => {
    const contract = s.contract;
    if (!contract?.events) return;
    c.unique(contract.events, ['sources', i, 'contract', 'events'], (e) => e.name, 'event');
    const own = contract.events.map((e) => e.name);
    const where = `sources[${i}].contract.events`;
    if (s.mapping) {
      s.mapping.forEach((r, j) => {
        if (r.type === 'track' && literalEvent(r.event) && !own.includes(r.event)) c.error(['sources', i, 'mapping', j, 'event'], `${unknownName('event', r.event, own, where)} — source "${s.name}" has a contract, so its mapping may only produce declared events`);
      });
    } else if (s.preset) {
      for (const r of PRESET_RULES[s.preset] ?? []) {
        if (r.type === 'track' && literalEvent(r.event) && !own.includes(r.event)) c.error(['sources', i, 'preset'], `preset "${s.preset}" produces event "${r.event}", which the contract of source "${s.name}" does not declare`);
      }
    }
  });

  const byPosition = (a: BlueprintIssue, b: BlueprintIssue): number => a.line - b.line || a.column - b.column;
  return { errors: [...c.errors].sort(byPosition), warnings: [...c.warnings].sort(byPosition) };
}

/** The checks on the sections the engine ran first: identity, consent, sources, computed traits. */
function checkFoundation(bp: Blueprint, c: Checker): void {
  c.unique(bp.identity?.keys, ['identity', 'keys'], (x) => x.name, 'identity.keys:');
  c.unique(bp.consent?.purposes, ['consent', 'purposes'], (x) => x.name, 'consent.purposes:');
  c.unique(bp.sources, ['sources'], (x) => x.name, 'sources:');
  c.unique(bp.computed_traits, ['computed_traits'], (x) => x.name, 'computed_traits:');

  bp.sources?.forEach((s, i) => {
    if (s.type === 'webhook' && !s.preset && !s.mapping) c.error(['sources', i], `source "${s.name}" is a webhook but has neither preset nor mapping`);
    if (s.preset && !PRESET_NAMES.includes(s.preset)) {
      const guess = closest(s.preset, PRESET_NAMES);
      c.error(['sources', i, 'preset'], `unknown preset "${s.preset}"${guess ? ` — did you mean "${guess}"?` : ''} (shipped: ${PRESET_NAMES.join(', ')})`);
    }
    s.mapping?.forEach((r, j) => {
      if (r.type === 'track' && !r.event) c.error(['sources', i, 'mapping', j], 'a track rule needs "event"');
      if (!r.userId && !r.anonymousId) c.error(['sources', i, 'mapping', j], 'a rule needs "userId" or "anonymousId"');
    });
  });
  bp.computed_traits?.forEach((t, i) => {
    if ((t.kind === 'sum' || t.kind === 'last') && !t.property) c.error(['computed_traits', i], `computed trait "${t.name}" of kind ${t.kind} needs "property"`);
    if (t.window && (parseDuration(t.window) ?? 0) < 60 * 60 * 1000) c.error(['computed_traits', i, 'window'], `window ${t.window} is shorter than the 1h bucket size`);
    if ((t.kind === 'last' || t.kind === 'first_seen' || t.kind === 'last_seen') && t.window) c.error(['computed_traits', i, 'window'], `a ${t.kind} trait takes no window`);
  });
}

interface JourneyContext {
  offers: Declared;
  stages: Declared;
  segments: Declared;
  channels: Declared;
  channelType: Map<string, string>;
  categories: Declared;
  computed: Set<string>;
  event: (name: string, path: Path) => void;
}

function checkJourney(j: Journey, at: Path, bp: Blueprint, c: Checker, x: JourneyContext): void {
  if (j.stage !== undefined) c.ref(j.stage, x.stages, [...at, 'stage']);
  const entry = j.entry;
  switch (entry.type) {
    case 'event':
      x.event(entry.event, [...at, 'entry', 'event']);
      // Every event arrives after its own time, so a zero age refuses them all; `none` is the way to lift the limit.
      if (entry.max_event_age !== undefined && entry.max_event_age !== 'none' && (parseDuration(entry.max_event_age) ?? 0) <= 0) {
        c.error([...at, 'entry', 'max_event_age'], `max_event_age ${entry.max_event_age} refuses every event; give a positive duration, or none for no limit`);
      }
      break;
    case 'segment':
      c.ref(entry.segment, x.segments, [...at, 'entry', 'segment']);
      break;
    case 'schedule':
      if (entry.segment !== undefined) c.ref(entry.segment, x.segments, [...at, 'entry', 'segment']);
      try {
        parseCron(entry.cron);
      } catch (e) {
        c.error([...at, 'entry', 'cron'], e instanceof Error ? e.message : String(e));
      }
      if (entry.timezone !== undefined && entry.timezone !== 'customer' && !isValidTimeZone(entry.timezone)) {
        c.error([...at, 'entry', 'timezone'], `"${entry.timezone}" is not an IANA time zone (e.g. Europe/Lisbon) or "customer"`);
      }
      break;
    case 'api':
      break;
    default:
      assertUnreachable(entry);
  }
  j.exit?.forEach((e, i) => {
    switch (e.type) {
      case 'condition':
        break;
      case 'event':
        x.event(e.event, [...at, 'exit', i, 'event']);
        break;
      default:
        assertUnreachable(e);
    }
  });

  c.unique(j.steps, [...at, 'steps'], (s) => s.id, 'step', 'id');
  const ids = j.steps.map((s) => s.id);
  const stepNames = new Declared(`step of journey "${j.name}"`, `journeys[].steps`, ids);
  const index = new Map(ids.map((id, i) => [id, i]));
  const edges: Edge[][] = j.steps.map((s, i) => successors(s, j.steps[i + 1]?.id, [...at, 'steps', i]));

  j.steps.forEach((s, i) => {
    const sat: Path = [...at, 'steps', i];
    for (const e of edges[i] ?? []) if (e.path) c.ref(e.target, stepNames, e.path);
    switch (s.type) {
      case 'wait':
      case 'wait_until':
      case 'branch':
      case 'exit':
        break;
      case 'wait_for_event':
        x.event(s.event, [...sat, 'event']);
        break;
      case 'split':
        c.unique(s.variants, [...sat, 'variants'], (v) => v.name, 'variant');
        break;
      case 'send': {
        if ((s.offer === undefined) === (s.message === undefined)) {
          c.error([...sat, 'id'], `send step "${s.id}" needs exactly one of offer or message`);
          break;
        }
        if (s.channel !== undefined) c.ref(s.channel, x.channels, [...sat, 'channel']);
        if (s.offer !== undefined) {
          if (!c.ref(s.offer, x.offers, [...sat, 'offer'])) break;
          const offer = bp.offers?.find((o) => o.name === s.offer);
          const offerChannels = offer?.channels ?? [];
          if (s.channel !== undefined && x.channels.has(s.channel) && !offerChannels.includes(s.channel)) c.error([...sat, 'channel'], `offer "${s.offer}" has no channel "${s.channel}" (its channels: ${offerChannels.length ? offerChannels.join(', ') : 'none'})`);
          if (s.channel === undefined && offerChannels.length === 0) c.error([...sat, 'offer'], `offer "${s.offer}" has no channels to send on; give the step a channel the offer lists`);
        } else if (s.message !== undefined) {
          if (s.channel === undefined) {
            c.error([...sat, 'id'], `send step "${s.id}" sends a message and needs a channel`);
            break;
          }
          if (s.message.category !== undefined) c.ref(s.message.category, x.categories, [...sat, 'message', 'category']);
          const kind = x.channelType.get(s.channel);
          const blocks = Object.keys(s.message.content);
          for (const key of blocks) {
            if (key !== s.channel) c.error([...sat, 'message', 'content', key], `the message is sent on "${s.channel}" but has content for "${key}"`, true);
          }
          const block = s.message.content[s.channel];
          if (kind !== undefined && !block) c.error([...sat, 'message', 'content'], `the message has no content for channel "${s.channel}"`, true);
          const missing = kind !== undefined && block ? missingContent(kind, block) : undefined;
          if (missing) c.error([...sat, 'message', 'content', s.channel], `content for ${kind} "${s.channel}" needs ${missing}`, true);
          block?.variants?.forEach((v, vi) => {
            if (v.segment !== undefined) c.ref(v.segment, x.segments, [...sat, 'message', 'content', s.channel as string, 'variants', vi, 'segment']);
          });
        }
        break;
      }
      case 'update_trait':
        if (x.computed.has(s.trait)) c.error([...sat, 'trait'], `trait "${s.trait}" is a computed trait; Cairn keeps it up to date from events, a journey cannot set it`);
        break;
      case 'move_stage':
        c.ref(s.stage, x.stages, [...sat, 'stage']);
        break;
      case 'webhook':
        if (!/^(https?:\/\/|\{\{)/.test(s.url)) c.error([...sat, 'url'], `webhook URL "${s.url}" must start with https:// (or be a template)`);
        break;
      default:
        assertUnreachable(s);
    }
  });

  // Every step is reachable from the first.
  const reached = new Set<number>([0]);
  const queue = [0];
  while (queue.length) {
    const i = queue.shift() as number;
    for (const e of edges[i] ?? []) {
      const t = index.get(e.target);
      if (t !== undefined && !reached.has(t)) {
        reached.add(t);
        queue.push(t);
      }
    }
  }
  j.steps.forEach((s, i) => {
    if (!reached.has(i)) c.error([...at, 'steps', i, 'id'], `step "${s.id}" of journey "${j.name}" can never be reached: no step leads to it`);
  });

  // A loop must wait somewhere, or a customer would spin through it at once.
  const state = new Map<number, 'open' | 'done'>();
  const visit = (i: number): void => {
    state.set(i, 'open');
    const step = j.steps[i];
    if (step && !isWait(step)) {
      for (const e of edges[i] ?? []) {
        const t = index.get(e.target);
        if (t === undefined) continue;
        const target = j.steps[t];
        if (!target || isWait(target)) continue;
        if (state.get(t) === 'open') c.error(e.path ?? [...at, 'steps', i, 'id'], `steps of journey "${j.name}" loop back to "${e.target}" without a wait step in the loop`);
        else if (!state.has(t)) visit(t);
      }
    }
    state.set(i, 'done');
  };
  j.steps.forEach((_, i) => {
    if (!state.has(i)) visit(i);
  });
}
