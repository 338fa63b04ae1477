import { assertUnreachable } from '../core/index.js';
import { formatPath } from './load.js';
import { Vocabulary } from './references.js';
import type { Blueprint, Content, JourneyStep } from './schema.js';

/**
 * Hooks for the languages embedded in a blueprint. The blueprint stores conditions (CEL) and
 * templates (Liquid) as strings; these functions list every one with its YAML path, so the
 * condition language and the renderer can compile them once at load and report errors at the right
 * line (BlueprintLocator.position(path) gives where the string starts and how it is quoted).
 */

type Path = (string | number)[];

/** Where a condition sits, which says what it may read. */
export type ConditionKind =
  | 'segment'
  | 'stage'
  | 'offer'
  | 'context_weight'
  | 'channel_audience'
  | 'suppression'
  | 'item_exclusion'
  | 'journey_entry'
  | 'journey_exit'
  | 'branch'
  | 'wait_for_event'
  | 'goal'
  | 'kpi'
  | 'pilot';

export interface BlueprintCondition {
  /** YAML path, e.g. ['offers', 2, 'condition']. */
  path: Path;
  /** The same path as text, e.g. offers[2].condition. */
  where: string;
  /** The CEL source. */
  source: string;
  kind: ConditionKind;
  /** When the condition is about one event (entry on an event, wait for an event…), its name; the event is in scope as `event`. */
  event?: string;
}

/**
 * Every condition in the blueprint, in document order of sections.
 *
 * @example
 * for (const c of collectConditions(bp)) compile(c.source, { at: locator.position(c.path) });
 */
export function collectConditions(bp: Blueprint): BlueprintCondition[] {
  const out: BlueprintCondition[] = [];
  const add = (path: Path, source: string | undefined, kind: ConditionKind, event?: string): void => {
    if (source === undefined) return;
    out.push({ path, where: formatPath(path), source, kind, ...(event !== undefined ? { event } : {}) });
  };
  bp.channels?.forEach((ch, i) => add(['channels', i, 'audience'], ch.audience, 'channel_audience'));
  bp.policies?.suppressions?.forEach((s, i) => {
    switch (s.type) {
      case 'pause':
      case 'outcome_pause':
        add(['policies', 'suppressions', i, 'when'], s.when, 'suppression');
        break;
      case 'exclude_item':
        add(['policies', 'suppressions', i, 'when'], s.when, 'item_exclusion', s.event);
        break;
      default:
        assertUnreachable(s);
    }
  });
  bp.segments?.forEach((s, i) => add(['segments', i, 'condition'], s.condition, 'segment'));
  bp.stages?.forEach((s, i) => add(['stages', i, 'condition'], s.condition, 'stage'));
  bp.offers?.forEach((o, i) => {
    add(['offers', i, 'condition'], o.condition, 'offer');
    o.context_weights?.forEach((w, j) => add(['offers', i, 'context_weights', j, 'when'], w.when, 'context_weight'));
  });
  bp.journeys?.forEach((j, ji) => {
    const at: Path = ['journeys', ji];
    const entry = j.entry;
    switch (entry.type) {
      case 'event':
        add([...at, 'entry', 'condition'], entry.condition, 'journey_entry', entry.event);
        break;
      case 'segment':
      case 'schedule':
      case 'api':
        add([...at, 'entry', 'condition'], entry.condition, 'journey_entry');
        break;
      default:
        assertUnreachable(entry);
    }
    j.steps.forEach((s, si) => stepConditions(s, [...at, 'steps', si], add));
    j.exit?.forEach((e, ei) => {
      switch (e.type) {
        case 'condition':
          add([...at, 'exit', ei, 'condition'], e.condition, 'journey_exit');
          break;
        case 'event':
          add([...at, 'exit', ei, 'condition'], e.condition, 'journey_exit', e.event);
          break;
        default:
          assertUnreachable(e);
      }
    });
  });
  bp.experiments?.tests?.forEach((t, ti) =>
    t.goals.forEach((g, gi) => {
      if (g.type === 'conversion') add(['experiments', 'tests', ti, 'goals', gi, 'condition'], g.condition, 'goal', g.event);
    }),
  );
  bp.rollout?.phases.forEach((p, i) => add(['rollout', 'phases', i, 'pilot', 'condition'], p.pilot?.condition, 'pilot'));
  bp.kpis?.forEach((k, i) => {
    if (k.metric.type === 'event_rate') add(['kpis', i, 'metric', 'condition'], k.metric.condition, 'kpi', k.metric.event);
  });
  return out;
}

function stepConditions(s: JourneyStep, at: Path, add: (path: Path, source: string | undefined, kind: ConditionKind, event?: string) => void): void {
  switch (s.type) {
    case 'branch':
      s.branches.forEach((b, i) => add([...at, 'branches', i, 'condition'], b.condition, 'branch'));
      break;
    case 'wait_for_event':
      add([...at, 'condition'], s.condition, 'wait_for_event', s.event);
      break;
    case 'wait':
    case 'wait_until':
    case 'split':
    case 'send':
    case 'update_trait':
    case 'move_stage':
    case 'webhook':
    case 'exit':
      break;
    default:
      assertUnreachable(s);
  }
}

export interface BlueprintTemplate {
  path: Path;
  where: string;
  /** The Liquid source. */
  source: string;
  /** The channel or placement the content is for (content key); undefined for webhook steps. */
  target: string | undefined;
}

/** Every Liquid template: offer, message and variant content, and webhook steps. */
export function collectTemplates(bp: Blueprint): BlueprintTemplate[] {
  const out: BlueprintTemplate[] = [];
  const add = (path: Path, source: string | undefined, target: string | undefined): void => {
    if (source !== undefined) out.push({ path, where: formatPath(path), source, target });
  };
  const content = (c: Content | undefined, at: Path): void => {
    for (const [key, block] of Object.entries(c ?? {})) {
      const fields = (b: { subject?: string; preheader?: string; headline?: string; body?: string; image?: string; image_alt?: string; cta?: { label: string; url: string } }, bat: Path): void => {
        for (const f of ['subject', 'preheader', 'headline', 'body', 'image', 'image_alt'] as const) add([...bat, f], b[f], key);
        if (b.cta) {
          add([...bat, 'cta', 'label'], b.cta.label, key);
          add([...bat, 'cta', 'url'], b.cta.url, key);
        }
      };
      fields(block, [...at, key]);
      block.variants?.forEach((v, i) => fields(v, [...at, key, 'variants', i]));
    }
  };
  bp.offers?.forEach((o, i) => content(o.content, ['offers', i, 'content']));
  bp.journeys?.forEach((j, ji) =>
    j.steps.forEach((s, si) => {
      const at: Path = ['journeys', ji, 'steps', si];
      if (s.type === 'send') content(s.message?.content, [...at, 'message', 'content']);
      if (s.type === 'webhook') {
        add([...at, 'url'], s.url, undefined);
        add([...at, 'body'], s.body, undefined);
        for (const [h, v] of Object.entries(s.headers ?? {})) add([...at, 'headers', h], v, undefined);
      }
    }),
  );
  bp.experiments?.tests?.forEach((t, ti) => {
    if (t.type === 'ab') t.variants.forEach((v, vi) => content(v.content, ['experiments', 'tests', ti, 'variants', vi, 'content']));
  });
  return out;
}

/** The names a condition may refer to, for the condition language's reference checks. */
export interface BlueprintSymbols {
  /** Events declared in contracts, or produced by the mappings of sources without one. */
  events: string[];
  /** True when some source declares its events: an event outside `events` is then an error, else a warning. */
  eventsChecked: boolean;
  traits: string[];
  segments: string[];
  stages: string[];
  channels: string[];
  offers: string[];
  placements: string[];
  journeys: string[];
  categories: string[];
  consentPurposes: string[];
}

export function blueprintSymbols(bp: Blueprint): BlueprintSymbols {
  const vocab = new Vocabulary(bp);
  const names = (list: readonly { name: string }[] | undefined): string[] => (list ?? []).map((x) => x.name);
  return {
    events: [...vocab.events.keys()],
    eventsChecked: vocab.anyEventContract,
    traits: [...vocab.traits],
    segments: names(bp.segments),
    stages: names(bp.stages),
    channels: names(bp.channels),
    offers: names(bp.offers),
    placements: names(bp.placements),
    journeys: names(bp.journeys),
    categories: names(bp.policies?.categories),
    consentPurposes: names(bp.consent?.purposes),
  };
}
