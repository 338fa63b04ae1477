import type { ResolvedComputedTrait, WorkspaceModel } from '../blueprint/index.js';
import type { ConditionEvent, EvalInput } from '../conditions/index.js';
import { computedValues, counterValue } from './computed.js';
import { hasConsent, type ConsentState } from './consent.js';
import { traitValues } from './traits.js';
import type { ProfileRow } from './unit.js';

/**
 * The evaluation input of the condition language for one profile: what segments, stages, offers and
 * journeys read. Pure: everything comes from the arguments (the clock included).
 */
export interface EvalInputOptions {
  /** Epoch ms. */
  now: number;
  event?: ConditionEvent;
  context?: Readonly<Record<string, unknown>>;
  /** Current segment memberships (in_segment reads this set, which the caller may keep growing). */
  segments: ReadonlySet<string>;
  /** What stage() reads: the current stage in the first listed stage's lifecycle (see stages.ts); null when none. */
  stage: string | null;
  /** The current consent state (currentConsent of the ledger); empty when none was recorded. */
  consent: readonly ConsentState[];
  messages?: { opened: readonly boolean[] };
}

const counterDefs = new WeakMap<WorkspaceModel, Map<string, ResolvedComputedTrait>>();

function countersOf(model: WorkspaceModel): Map<string, ResolvedComputedTrait> {
  let m = counterDefs.get(model);
  if (!m) {
    m = new Map(model.computed.filter((d) => d.implicit === true).map((d) => [d.name, d]));
    counterDefs.set(model, m);
  }
  return m;
}

/** Identity kinds and trait names through which a channel type reaches a customer. */
const ADDRESS: Readonly<Record<string, { kinds: readonly string[]; traits: readonly string[] }>> = {
  email: { kinds: ['email'], traits: ['email'] },
  sms: { kinds: ['phone'], traits: ['phone'] },
  whatsapp: { kinds: ['phone'], traits: ['phone'] },
  push: { kinds: [], traits: ['push_token', 'push_tokens', 'device_token'] },
};

/**
 * The identity-key prefixes (`kind` + NUL, see identityKey) of each channel's kinds. A key's kind is
 * its text before the first NUL and kinds contain none, so `key.startsWith(kind + NUL)` is exactly
 * "the key's kind is `kind`", tested without cutting a substring out of every key.
 */
const PREFIXES: Readonly<Record<string, readonly string[]>> = Object.fromEntries(Object.entries(ADDRESS).map(([channel, a]) => [channel, a.kinds.map((k) => `${k}\u0000`)]));

function present(v: unknown): boolean {
  if (typeof v === 'string') return v.trim() !== '';
  if (Array.isArray(v)) return v.length > 0;
  return v !== undefined && v !== null && v !== false;
}

/**
 * Whether a channel can reach the customer, from what the profile holds (consent is separate):
 * email — an email identity or a non-empty `email` trait; sms and whatsapp — a phone identity or
 * `phone` trait; push — a non-empty `push_token`, `push_tokens` or `device_token` trait; in_app —
 * always (it is shown when the customer shows up). Any other channel: false.
 */
export function isReachable(row: Pick<ProfileRow, 'identities'>, traits: Readonly<Record<string, unknown>>, channel: string): boolean {
  if (channel === 'in_app') return true;
  const a = ADDRESS[channel];
  if (!a) return false;
  const prefixes = PREFIXES[channel] as readonly string[];
  if (prefixes.length > 0) for (const key of row.identities) for (const p of prefixes) if (key.startsWith(p)) return true;
  return a.traits.some((t) => present(traits[t]));
}

/**
 * Builds the EvalInput of a profile. `counter(key)` reads the implicit computed states kept by
 * ingest (count/sum → number, last_seen → epoch ms, last_event → {ts, properties}, never → undefined);
 * consent falls back to the purpose's blueprint default (denied unless declared granted).
 *
 * @example
 *   const input = buildEvalInput(model, row, { now, segments: new Set(), stage: null, consent: [] });
 *   compiled.evaluate(input);
 */
export function buildEvalInput(model: WorkspaceModel, row: ProfileRow, opts: EvalInputOptions): EvalInput {
  const counters = countersOf(model);
  const { now } = opts;
  const computed = computedValues(model.computed, row.computed, now);
  // A declared computed trait is a trait too (`traits.orders_60d`, as the blueprint declares it);
  // it wins over a stored trait of the same name, and one with no value yet (null) is absent.
  const traits = traitValues(row.traits);
  for (const k in computed) {
    // computedValues returns a fresh plain object: for…in sees exactly its own keys, in order.
    const v = computed[k];
    if (v !== undefined && v !== null) traits[k] = v;
  }
  return {
    traits,
    computed,
    event: opts.event,
    context: opts.context ?? {},
    profile: { id: row.id, first_seen: row.firstSeen, last_seen: row.lastSeen },
    counter(key: string): unknown {
      const def = counters.get(key);
      return def ? counterValue(def, row.computed[key], now) : undefined;
    },
    segments: opts.segments,
    stage: opts.stage,
    consent(purpose: string, channel: string): boolean {
      return hasConsent(opts.consent, purpose, channel, model.consent.purposes.get(purpose)?.default ?? 'denied');
    },
    reachable(channel: string): boolean {
      return isReachable(row, traits, channel);
    },
    messages: opts.messages,
    now,
    timezone: model.timezone,
  };
}
