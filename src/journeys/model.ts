import { HOUR, parseDuration } from '../core/index.js';
import type { CompiledCondition } from '../conditions/index.js';
import type { Blueprint, Journey, JourneyStep, WorkspaceModel } from '../blueprint/index.js';
import { parseCron, type Cron } from '../core/index.js';

/**
 * A journey ready to run: steps by id with their successor resolved, durations in ms, conditions
 * compiled (taken from the model's compiled conditions by YAML path, so they are the ones the
 * blueprint load checked). Built once per blueprint version and cached on the model.
 */
export interface ResolvedJourney {
  name: string;
  index: number;
  raw: Journey;
  entry: Journey['entry'];
  entryCondition: CompiledCondition | undefined;
  /** For schedule entries: the parsed cron (undefined when it does not parse; `cronError` says why). */
  cron: Cron | undefined;
  cronError: string | undefined;
  first: string;
  steps: Map<string, ResolvedStep>;
  exits: ResolvedExit[];
  reEntry: { type: 'never' } | { type: 'after_exit' | 'always'; cooldownMs: number };
  maxConcurrent: number;
  /** Event entries: how far back (ms) an event's own time may lie for it to enter; null: no limit (and for other entries). */
  maxEventAgeMs: number | null;
}

/** `entry.max_event_age` when the blueprint gives none: as far back as a delayed live event plausibly arrives, short of history. */
export const DEFAULT_MAX_EVENT_AGE_MS = 72 * HOUR;

/**
 * Whether an event timed `ts` is too old to enter journey `j` at `now` (both epoch ms): older than
 * `now - max_event_age`. An event exactly at the limit still enters.
 */
export function isStaleEntryEvent(j: ResolvedJourney, ts: number, now: number): boolean {
  return j.maxEventAgeMs !== null && ts < now - j.maxEventAgeMs;
}

export type ResolvedExit =
  | { type: 'condition'; name: string; condition: CompiledCondition }
  | { type: 'event'; name: string; event: string; condition: CompiledCondition | undefined };

export interface ResolvedStep {
  id: string;
  index: number;
  step: JourneyStep;
  /** The following step in the list, or null after the last. */
  following: string | null;
  /** Where a step with a plain `next` goes (next ?? following). */
  next: string | null;
  durationMs?: number;
  timeoutMs?: number;
  /** wait_for_event condition / branch conditions (in order). */
  condition?: CompiledCondition | undefined;
  branches?: { name: string; condition: CompiledCondition | undefined; next: string }[];
}

export interface ResolvedJourneys {
  list: ResolvedJourney[];
  byName: Map<string, ResolvedJourney>;
  /** Track-event names any journey reacts to (entry, exit, wait_for_event). */
  eventNames: Set<string>;
  /** Track-event names an active instance reacts to (exit, wait_for_event). */
  instanceEventNames: Set<string>;
  /** Event-entry journeys by their event, in blueprint order. */
  entriesByEvent: Map<string, ResolvedJourney[]>;
  /** Whether any journey has an exit condition (checked on every event of a customer in a journey). */
  anyConditionExit: boolean;
  /** Segments whose entry enters a journey. */
  entrySegments: Set<string>;
  /** What conditions read beyond traits and counters, so the engine loads only that. */
  needs: { segments: boolean; stage: boolean; consent: boolean };
}

const cache = new WeakMap<WorkspaceModel, ResolvedJourneys>();

/** The journeys of a workspace's blueprint, resolved once per model. */
export function resolveJourneys(bp: Blueprint, model: WorkspaceModel): ResolvedJourneys {
  const hit = cache.get(model);
  if (hit) return hit;
  const conditions = model.conditions;
  const cond = (path: string): CompiledCondition | undefined => conditions?.get(path)?.compiled;
  const out: ResolvedJourneys = { list: [], byName: new Map(), eventNames: new Set(), instanceEventNames: new Set(), entriesByEvent: new Map(), anyConditionExit: false, entrySegments: new Set(), needs: { segments: false, stage: false, consent: false } };
  const all: CompiledCondition[] = [];
  const note = (c: CompiledCondition | undefined): CompiledCondition | undefined => {
    if (c) all.push(c);
    return c;
  };
  (bp.journeys ?? []).forEach((j, ji) => {
    const at = `journeys[${ji}]`;
    const steps = new Map<string, ResolvedStep>();
    j.steps.forEach((s, si) => {
      const following = j.steps[si + 1]?.id ?? null;
      const next = 'next' in s && typeof s.next === 'string' ? s.next : following;
      const r: ResolvedStep = { id: s.id, index: si, step: s, following, next };
      const sp = `${at}.steps[${si}]`;
      switch (s.type) {
        case 'wait':
          r.durationMs = parseDuration(s.duration) ?? 0;
          break;
        case 'wait_for_event':
          r.timeoutMs = parseDuration(s.timeout) ?? 0;
          r.condition = note(cond(`${sp}.condition`));
          out.eventNames.add(s.event);
          out.instanceEventNames.add(s.event);
          break;
        case 'branch':
          r.branches = s.branches.map((b, bi) => ({ name: b.name ?? `branch_${bi + 1}`, condition: note(cond(`${sp}.branches[${bi}].condition`)), next: b.next }));
          r.next = s.otherwise ?? null;
          break;
        default:
          break;
      }
      steps.set(s.id, r);
    });
    const exits: ResolvedExit[] = (j.exit ?? []).flatMap((e, ei): ResolvedExit[] => {
      const c = note(cond(`${at}.exit[${ei}].condition`));
      if (e.type === 'condition') {
        out.anyConditionExit = true;
        return c ? [{ type: 'condition', name: e.name ?? `exit_${ei + 1}`, condition: c }] : [];
      }
      out.eventNames.add(e.event);
      out.instanceEventNames.add(e.event);
      return [{ type: 'event', name: e.name ?? e.event, event: e.event, condition: c }];
    });
    let cron: Cron | undefined;
    let cronError: string | undefined;
    if (j.entry.type === 'schedule') {
      try {
        cron = parseCron(j.entry.cron);
      } catch (e) {
        cronError = (e as Error).message;
      }
    }
    if (j.entry.type === 'event') out.eventNames.add(j.entry.event);
    if (j.entry.type === 'segment') out.entrySegments.add(j.entry.segment);
    const re = j.re_entry ?? { type: 'never' as const };
    const resolved: ResolvedJourney = {
      name: j.name,
      index: ji,
      raw: j,
      entry: j.entry,
      entryCondition: note(cond(`${at}.entry.condition`)),
      cron,
      cronError,
      first: (j.steps[0] as JourneyStep).id,
      steps,
      exits,
      reEntry: re.type === 'never' ? { type: 'never' } : { type: re.type, cooldownMs: re.cooldown ? parseDuration(re.cooldown) ?? 0 : 0 },
      maxConcurrent: j.max_concurrent ?? 1,
      maxEventAgeMs: j.entry.type !== 'event' || j.entry.max_event_age === 'none' ? null : j.entry.max_event_age === undefined ? DEFAULT_MAX_EVENT_AGE_MS : parseDuration(j.entry.max_event_age) ?? DEFAULT_MAX_EVENT_AGE_MS,
    };
    out.list.push(resolved);
    if (j.entry.type === 'event') out.entriesByEvent.set(j.entry.event, [...(out.entriesByEvent.get(j.entry.event) ?? []), resolved]);
    out.byName.set(j.name, resolved);
  });
  for (const c of all) {
    const r = c.references;
    if (r.segments.length > 0 || r.functions.includes('in_segment')) out.needs.segments = true;
    if (r.stages.length > 0 || r.functions.includes('stage')) out.needs.stage = true;
    if (r.purposes.length > 0 || r.functions.includes('consent')) out.needs.consent = true;
  }
  cache.set(model, out);
  return out;
}
