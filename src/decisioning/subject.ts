import { sql } from 'kysely';
import type { WorkspaceModel } from '../blueprint/index.js';
import type { EvalInput } from '../conditions/index.js';
import { collectIdsAt } from '../core/index.js';
import type { Db } from '../store/index.js';
import { buildEvalInput, currentConsent, loadCustomerFacts, type ConsentEntry, type Identity, type ProfileRow } from '../profiles/index.js';
import type { ComputedState, Traits } from '../profiles/index.js';
import type { DecisionPlan } from './plan.js';
import type { Subject } from './engine.js';
import type { ResolvedOffer } from '../blueprint/index.js';

/**
 * Loads what a decision knows about a customer with two queries: the profile row through the first
 * identity that resolves, then segments, stages and the consent ledger in one UNION ALL. An
 * unknown identity gives an empty profile (no traits, no history); nothing is created.
 */
type CustomerRecord = { id: string; merged_into: string | null; traits: string; computed: string; first_seen: number | string; last_seen: number | string; created_at: number | string; updated_at: number | string };

/** A way to find the customer: an identity, or the profile id itself. */
export type SubjectRef = Identity | { id: string };

async function loadRow(db: Db, workspaceId: string, refs: readonly SubjectRef[]): Promise<CustomerRecord | undefined> {
  for (const i of refs) {
    const r =
      'id' in i
        ? await sql<CustomerRecord>`select id, merged_into, traits, computed, first_seen, last_seen, created_at, updated_at from customers where workspace_id = ${workspaceId} and id = ${i.id}`.execute(db)
        : await sql<CustomerRecord>`select c.id, c.merged_into, c.traits, c.computed, c.first_seen, c.last_seen, c.created_at, c.updated_at from identities i join customers c on c.workspace_id = i.workspace_id and c.id = i.customer_id where i.workspace_id = ${workspaceId} and i.kind = ${i.kind} and i.value = ${i.value}`.execute(db);
    let row = r.rows[0];
    // Merges move identities to the survivor; follow a pointer left by a concurrent merge anyway.
    for (let hops = 0; row && row.merged_into !== null && hops < 100; hops++) {
      const next = await sql<CustomerRecord>`select id, merged_into, traits, computed, first_seen, last_seen, created_at, updated_at from customers where workspace_id = ${workspaceId} and id = ${row.merged_into}`.execute(db);
      row = next.rows[0];
    }
    if (row) return row;
  }
  return undefined;
}

export interface LoadedSubject extends Subject {
  row: ProfileRow;
}

/** What a decision reads from storage about one customer; cached by SubjectCache. */
interface SubjectState {
  rec: CustomerRecord | undefined;
  row: ProfileRow | undefined;
  segments: Set<string>;
  stages: Set<string>;
  stage: string | null;
  ledger: ConsentEntry[];
}

async function loadState(db: Db, workspaceId: string, model: WorkspaceModel, plan: DecisionPlan, identities: readonly SubjectRef[]): Promise<SubjectState> {
  const rec = await loadRow(db, workspaceId, identities);
  let segments = new Set<string>();
  let stages = new Set<string>();
  let stage: string | null = null;
  let ledger: ConsentEntry[] = [];
  let row: ProfileRow | undefined;
  if (rec) {
    row = {
      id: rec.id,
      createdAt: Number(rec.created_at),
      updatedAt: Number(rec.updated_at),
      mergedInto: null,
      traits: JSON.parse(rec.traits) as Traits,
      computed: JSON.parse(rec.computed) as Record<string, ComputedState>,
      firstSeen: Number(rec.first_seen),
      lastSeen: Number(rec.last_seen),
      identities: new Set(),
    };
    ({ segments, stages, stage, ledger } = await loadCustomerFacts(db, workspaceId, model, rec.id));
    if (plan.needsIdentities) {
      const ids = await sql<{ kind: string; value: string }>`select kind, value from identities where workspace_id = ${workspaceId} and customer_id = ${rec.id}`.execute(db);
      for (const i of ids.rows) row.identities.add(`${i.kind}\u0000${i.value}`);
    }
  }
  return { rec, row, segments, stages, stage, ledger };
}

const refKey = (r: SubjectRef): string => ('id' in r ? `#${r.id}` : `${r.kind}\u0000${r.value}`);

/**
 * A short-lived cache of what decisions read about a customer (profile row, segments, stages,
 * consent), so a visitor whose page asks for several placements costs one load. Entries are dropped
 * at once when this process commits events for the customer or any of the identities it was looked
 * up by (`ingest:committed`, merges included), and expire after `ttlMs` otherwise — the bound on how
 * stale a decision can be after a change made elsewhere (another process, the segment sweep, a
 * journey's stage move). `ttlMs` 0 turns it off.
 */
export class SubjectCache {
  private readonly entries = new Map<string, { state: SubjectState; at: number }>();
  /** workspace + customer id or identity → the cache keys that depend on it. */
  private readonly deps = new Map<string, Set<string>>();
  /**
   * Bumped by every invalidation. A load that overlapped one (a commit landed between its queries,
   * or after it read and before it stored) may hold pre-commit data, so it is returned but not kept.
   */
  private epoch = 0;

  constructor(
    readonly ttlMs: number,
    private readonly max = 20_000,
  ) {}

  async load(db: Db, workspaceId: string, model: WorkspaceModel, plan: DecisionPlan, refs: readonly SubjectRef[], now: number): Promise<SubjectState> {
    if (this.ttlMs <= 0) return loadState(db, workspaceId, model, plan, refs);
    // What is loaded depends on the blueprint (identities only when a condition calls reachable()),
    // so the entry is keyed by that too: a blueprint change never serves an entry loaded without them.
    const key = `${workspaceId}\u0001${plan.needsIdentities ? 'i' : '-'}\u0001${refs.map(refKey).join('\u0001')}`;
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs && now >= hit.at) return hit.state;
    const epoch = this.epoch;
    const state = await loadState(db, workspaceId, model, plan, refs);
    if (epoch !== this.epoch) return state;
    if (this.entries.size >= this.max) this.clear();
    this.entries.set(key, { state, at: now });
    for (const r of refs) this.depend(`${workspaceId}\u0001${refKey(r)}`, key);
    if (state.rec) this.depend(`${workspaceId}\u0001#${state.rec.id}`, key);
    return state;
  }

  /** Drops what depends on these customers or identities. */
  invalidate(workspaceId: string, customerIds: Iterable<string>, identities: Iterable<{ kind: string; value: string }>): void {
    // Before the early return: a load in flight has not stored its entry yet.
    this.epoch++;
    if (this.entries.size === 0) return;
    const drop = (dep: string): void => {
      const keys = this.deps.get(dep);
      if (!keys) return;
      this.deps.delete(dep);
      for (const k of keys) this.entries.delete(k);
    };
    for (const id of customerIds) drop(`${workspaceId}\u0001#${id}`);
    for (const i of identities) drop(`${workspaceId}\u0001${i.kind}\u0000${i.value}`);
  }

  clear(): void {
    this.entries.clear();
    this.deps.clear();
  }

  private depend(dep: string, key: string): void {
    const set = this.deps.get(dep);
    if (set) set.add(key);
    else this.deps.set(dep, new Set([key]));
  }
}

export async function loadSubject(db: Db, workspaceId: string, model: WorkspaceModel, plan: DecisionPlan, identities: readonly SubjectRef[], context: Readonly<Record<string, unknown>>, now: number, cache?: SubjectCache): Promise<LoadedSubject> {
  const { rec, row: loaded, segments, stages, stage, ledger } = cache ? await cache.load(db, workspaceId, model, plan, identities, now) : await loadState(db, workspaceId, model, plan, identities);
  const row: ProfileRow = loaded ?? { id: '', createdAt: now, updatedAt: now, mergedInto: null, traits: {}, computed: {}, firstSeen: now, lastSeen: now, identities: new Set() };
  // wordingVersion only breaks ties between entries whose status is identical; it is not loaded.
  const input = buildEvalInput(model, row, { now, context, segments, stage, consent: currentConsent(ledger) });
  return { customerId: rec ? rec.id : null, stages, input, excludedItems: new Map(), row };
}

/**
 * exclude_item rules: the item ids the customer's `event` events named (within the rule's window,
 * and where the rule's `when` holds for the event). Read only when a candidate promotes an item of
 * the rule's key and the request context names one.
 */
export async function loadExcludedItems(db: Db, workspaceId: string, model: WorkspaceModel, subject: LoadedSubject, candidates: readonly ResolvedOffer[], now: number): Promise<void> {
  if (subject.customerId === null) return;
  const out = subject.excludedItems as Map<string, Set<string>>;
  for (const rule of model.suppressions) {
    if (rule.type !== 'exclude_item') continue;
    if (!candidates.some((o) => o.itemKey === rule.itemKey)) continue;
    const item = subject.input.context[rule.itemKey];
    if (typeof item !== 'string' && typeof item !== 'number') continue;
    const since = rule.windowMs === undefined ? 0 : now - rule.windowMs;
    const rows = await sql<{ ts: number | string; payload: string }>`select ts, payload from events where workspace_id = ${workspaceId} and customer_id = ${subject.customerId} and ts >= ${since} and type = 'track' and name = ${rule.event}`.execute(db);
    const ids = new Set<string>();
    for (const r of rows.rows) {
      const msg = JSON.parse(r.payload) as { properties?: Record<string, unknown> };
      const properties = msg.properties ?? {};
      if (rule.when) {
        const input: EvalInput = { ...subject.input, event: { type: 'track', name: rule.event, properties, timestamp: Number(r.ts) } };
        if (!rule.when.evaluate(input)) continue;
      }
      collectIdsAt(properties, rule.path, ids);
    }
    out.set(rule.name, ids);
  }
}

