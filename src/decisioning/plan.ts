import type { ResolvedOffer, ResolvedPlacement, WorkspaceModel } from '../blueprint/index.js';
import type { CompiledContent } from '../templates/index.js';
import { offerBlock } from './content.js';

/**
 * What a decide reads from the blueprint, prepared once per workspace model (a WeakMap entry, so a
 * new blueprint version gets a new plan and the old one is collected): offers indexed by placement
 * and by channel in declaration order, content blocks compiled, and flags saying which inputs any
 * candidate needs, so a decision loads and computes nothing it will not read.
 */
export interface DecisionPlan {
  readonly model: WorkspaceModel;
  readonly byPlacement: ReadonlyMap<string, readonly ResolvedOffer[]>;
  readonly byChannel: ReadonlyMap<string, readonly ResolvedOffer[]>;
  readonly offersByName: ReadonlyMap<string, ResolvedOffer>;
  /** Some condition calls reachable(): the profile's identities must be loaded. */
  readonly needsIdentities: boolean;
  /** Some offer has an item_key and some exclude_item rule names that key. */
  readonly itemRules: boolean;
  /** Offers with at least one total cap counting impressions or clicks (for the ingest listener). */
  readonly countsExposures: boolean;
  /** Compiled content for an offer under a key (placement or channel name); undefined when it has none. */
  content(offer: ResolvedOffer, key: string): CompiledContent | undefined;
}

const plans = new WeakMap<WorkspaceModel, DecisionPlan>();

export function planOf(model: WorkspaceModel): DecisionPlan {
  let plan = plans.get(model);
  if (!plan) {
    plan = buildPlan(model);
    plans.set(model, plan);
  }
  return plan;
}

function buildPlan(model: WorkspaceModel): DecisionPlan {
  const byPlacement = new Map<string, ResolvedOffer[]>();
  const byChannel = new Map<string, ResolvedOffer[]>();
  for (const p of model.placements.keys()) byPlacement.set(p, []);
  for (const c of model.channels.keys()) byChannel.set(c, []);
  let needsIdentities = false;
  for (const o of model.offers) {
    for (const p of o.placements) byPlacement.get(p)?.push(o);
    for (const c of o.channels) byChannel.get(c)?.push(o);
    const conds = [o.condition, ...o.contextWeights.map((w) => w.when)];
    for (const c of conds) if (c?.references.functions.includes('reachable')) needsIdentities = true;
  }
  const itemKeys = new Set(model.suppressions.flatMap((s) => (s.type === 'exclude_item' ? [s.itemKey] : [])));
  const compiled = new Map<string, CompiledContent | null>();
  return {
    model,
    byPlacement,
    byChannel,
    offersByName: new Map(model.offers.map((o) => [o.name, o])),
    needsIdentities,
    itemRules: model.offers.some((o) => o.itemKey !== undefined && itemKeys.has(o.itemKey)),
    countsExposures: model.offers.some((o) => o.caps.some((c) => c.per === 'total' && c.count !== 'decision')),
    content(offer: ResolvedOffer, key: string): CompiledContent | undefined {
      const id = `${offer.index}\u0000${key}`;
      let c = compiled.get(id);
      if (c === undefined) {
        c = offerBlock(offer, key) ?? null;
        compiled.set(id, c);
      }
      return c ?? undefined;
    },
  };
}

/** The offers a request may choose from: by placement (and channel when both are given), else by channel. */
export function candidatesFor(plan: DecisionPlan, placement: ResolvedPlacement | null, channel: string | null): readonly ResolvedOffer[] {
  if (placement) {
    const list = plan.byPlacement.get(placement.name) ?? [];
    return channel === null ? list : list.filter((o) => o.channels.includes(channel));
  }
  return channel === null ? [] : plan.byChannel.get(channel) ?? [];
}
