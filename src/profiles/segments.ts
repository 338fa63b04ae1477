import { sql } from 'kysely';
import { uuidv7 } from '../core/index.js';
import { inChunks, insertRows, type Db, type Store, type Trx } from '../store/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { currentConsent, type ConsentEntry, type ConsentState } from './consent.js';
import { profileRowOf, type CustomerRecord, type ProfileUnit, type ProfileRow } from './unit.js';
import { buildEvalInput } from './view.js';
import { evaluateStages, hasAnyStage, stageForConditions, stagesReadConsent, storedStagesOf, writeStageDiff, type StageChange, type StoredStages } from './stages.js';
import { nextChange, storedDue, timePlan, writeDue } from './due.js';
import { scopeParts, type CustomerScope } from './scope.js';
// A cycle with repository.ts (which calls updateSegmentMemberships); only functions cross it.
import { profileLockKey } from './repository.js';

/**
 * Segment membership, kept in real time. Membership is a pure function of the profile (traits,
 * computed states and counters, identities, consent) and the time: segments are evaluated in the
 * model's dependency order, each reading with in_segment() the memberships decided before it in
 * the same pass (in_segment() cycles are refused when the blueprint loads, so that order exists).
 * Previous membership is never an input, so the incremental path (on each ingest batch) and a bulk
 * recompute give the same memberships for the same profiles at the same `now`.
 *
 * A segment whose condition holds only because of time (windows sliding, days_since) changes
 * without an event. Every evaluation therefore also stores when the profile can next change with
 * time alone (due.ts), and the sweeper (sweep.ts) re-evaluates it then through this same pass.
 */

/**
 * The segments a profile belongs to at `now`, in evaluation order. `stage` is what stage() reads:
 * the customer's stored stage from before this pass (stages are evaluated after segments; see stages.ts).
 */
export function evaluateSegments(model: WorkspaceModel, row: ProfileRow, consent: readonly ConsentState[], now: number, stage: string | null = null): Set<string> {
  const members = new Set<string>();
  const input = buildEvalInput(model, row, { now, segments: members, stage, consent });
  for (const s of model.segments) if (s.condition.evaluate(input)) members.add(s.name);
  return members;
}

/** Whether any segment or stage reads consent, so the ledger must be loaded to evaluate. */
function readsConsent(model: WorkspaceModel): boolean {
  return stagesReadConsent(model) || model.segments.some((s) => s.condition.references.purposes.length > 0 || s.condition.references.functions.includes('consent'));
}

/**
 * The stored stages of the customers in scope, when stages are declared or some are stored (else
 * empty). `anyStored` is the answer to hasAnyStage when the caller knows it (a recompute asks once).
 */
async function storedStagesIfAny(trx: Trx, model: WorkspaceModel, workspaceId: string, scope: CustomerScope, maxP: number, anyStored?: boolean): Promise<StoredStages> {
  if ('ids' in scope && scope.ids.length === 0) return new Map();
  if (model.stages.length === 0 && !(anyStored ?? (await hasAnyStage(trx, workspaceId)))) return new Map();
  return storedStagesOf(trx, workspaceId, scope, maxP);
}

async function consentOf(trx: Trx | Db, workspaceId: string, scope: CustomerScope, maxP: number): Promise<Map<string, ConsentState[]>> {
  const ledger = new Map<string, ConsentEntry[]>();
  for (const part of scopeParts(scope, maxP)) {
    let q = trx.selectFrom('consent').select(['customer_id', 'id', 'purpose', 'channel', 'status', 'source', 'occurred_at', 'recorded_at', 'wording_version', 'message_id']).where('workspace_id', '=', workspaceId);
    q = 'ids' in part ? q.where('customer_id', 'in', part.ids) : q.where('customer_id', '>', part.after).where('customer_id', '<=', part.last);
    const rows = await q.execute();
    for (const r of rows) {
      const entry: ConsentEntry = { id: r.id, purpose: r.purpose, channel: r.channel, status: r.status, source: r.source, occurredAt: Number(r.occurred_at), recordedAt: Number(r.recorded_at), wordingVersion: r.wording_version, messageId: r.message_id };
      const list = ledger.get(r.customer_id);
      if (list === undefined) ledger.set(r.customer_id, [entry]);
      else list.push(entry);
    }
  }
  const out = new Map<string, ConsentState[]>();
  for (const [id, entries] of ledger) out.set(id, currentConsent(entries));
  return out;
}

/**
 * The stored segments of the customers in scope, one comma-separated list per customer (customers
 * without memberships are absent; the order within a list is unspecified). One aggregated row per
 * customer rather than one row per membership: a recompute page reads ~4 memberships per customer,
 * and materializing each as a row object cost more than evaluating the segments. `string_agg` is
 * both PostgreSQL's and SQLite's (3.44+) name; segment names match ^[a-z][a-z0-9_]*$ (blueprint
 * schema), so ',' never occurs inside one.
 */
async function membershipsOf(trx: Trx, workspaceId: string, scope: CustomerScope, maxP: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const part of scopeParts(scope, maxP)) {
    let q = trx.selectFrom('segment_membership').select(['customer_id', sql<string>`string_agg(segment, ',')`.as('segments')]).where('workspace_id', '=', workspaceId);
    q = 'ids' in part ? q.where('customer_id', 'in', part.ids) : q.where('customer_id', '>', part.after).where('customer_id', '<=', part.last);
    for (const r of await q.groupBy('customer_id').execute()) out.set(r.customer_id, r.segments);
  }
  return out;
}

/** Whether a stored list (membershipsOf) holds exactly the wanted segments, in any order. */
function sameMembers(stored: string | undefined, want: ReadonlySet<string>): boolean {
  if (stored === undefined || stored === '') return want.size === 0;
  const have = stored.split(',');
  if (have.length !== want.size) return false;
  for (const s of have) if (!want.has(s)) return false;
  return true;
}

export interface SegmentChange {
  customerId: string;
  segment: string;
  change: 'entered' | 'exited';
  at: number;
}

/**
 * Writes the difference between `stored` (membershipsOf these customers) and wanted memberships
 * (every customer listed; an absent or empty wanted set exits everything) with one history row per
 * change, dated `timeOf(customer)`: the evaluation time (`now`, or the due instant a sweep evaluated
 * at). Unchanged memberships write nothing; they are recognized from the stored list without
 * building a set (most customers of a recompute change nothing).
 */
async function writeDiff(trx: Trx, store: Store, workspaceId: string, wanted: ReadonlyMap<string, ReadonlySet<string>>, stored: ReadonlyMap<string, string>, timeOf: (customerId: string) => number): Promise<SegmentChange[]> {
  const maxP = store.dialect.capabilities.maxParameters;
  const changes: SegmentChange[] = [];
  for (const [customerId, want] of wanted) {
    const list = stored.get(customerId);
    if (sameMembers(list, want)) continue;
    const have = new Set(list === undefined || list === '' ? [] : list.split(','));
    const at = timeOf(customerId);
    for (const s of have) if (!want.has(s)) changes.push({ customerId, segment: s, change: 'exited', at });
    for (const s of want) if (!have.has(s)) changes.push({ customerId, segment: s, change: 'entered', at });
  }
  if (changes.length === 0) return changes;
  const exits = new Map<string, string[]>();
  for (const c of changes) if (c.change === 'exited') exits.set(c.customerId, [...(exits.get(c.customerId) ?? []), c.segment]);
  for (const [customerId, segments] of exits) {
    for (const chunk of inChunks(segments, maxP - 2)) {
      await trx.deleteFrom('segment_membership').where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).where('segment', 'in', chunk).execute();
    }
  }
  const entries = changes.filter((c) => c.change === 'entered').map((c) => [workspaceId, c.customerId, c.segment, c.at]);
  await insertRows(trx, store.dialect, 'segment_membership', ['workspace_id', 'customer_id', 'segment', 'entered_at'], entries);
  const history = changes.map((c) => [workspaceId, c.customerId, uuidv7(c.at), c.segment, c.change, c.at]);
  await insertRows(trx, store.dialect, 'segment_history', ['workspace_id', 'customer_id', 'id', 'segment', 'change', 'at'], history);
  return changes;
}

/** What one evaluation pass wrote. */
export interface EvaluationChanges {
  segments: SegmentChange[];
  stages: StageChange[];
  /** Each evaluated profile's next due instant (due.ts); undefined: none. Empty when the model has no time dependence. */
  due: ReadonlyMap<string, number | undefined>;
}

export interface EvaluateOptions {
  /** Skip the membership diff when the model has no segments and none are stored (the ingest fast path). */
  checkEmpty?: boolean;
  /**
   * Per-customer evaluation time overriding `now`: the sweep evaluates a late customer at its due
   * instant, so that history carries the time the change happened. Customers not listed use `now`.
   */
  at?: ReadonlyMap<string, number>;
  /** How the stored state of these profiles is read: by their ids (default) or a recompute page's key range. */
  scope?: CustomerScope;
  /** Whether the workspace stores any stage, when the caller already knows (saves a query per call). */
  anyStageStored?: boolean;
}

/**
 * Segments, then stages, of the given profiles (merged-away ones leave every segment and stage),
 * then each profile's next due instant (due.ts): one pass, shared by the live path, the bulk
 * recompute and the sweep, so that they agree.
 */
export async function evaluateProfiles(trx: Trx, store: Store, workspaceId: string, model: WorkspaceModel, rows: readonly ProfileRow[], now: number, opts: EvaluateOptions = {}): Promise<EvaluationChanges> {
  const live = rows.filter((r) => r.mergedInto === null).map((r) => r.id);
  return evaluatePass(trx, store, workspaceId, model, { ids: rows.map((r) => r.id), live, row: (i) => rows[i] as ProfileRow }, now, opts);
}

/**
 * The profiles of one pass: `ids` in evaluation order, `live` those not merged away, and `row(i)`
 * the profile with id `ids[i]`, called once, when its turn comes. A recompute page parses each
 * stored record there rather than all of them up front, so that its parsed traits and computed
 * states are garbage by the next profile instead of surviving (and being copied by) the young
 * generation collections of the whole page.
 */
interface PassRows {
  readonly ids: readonly string[];
  readonly live: readonly string[];
  row(i: number): ProfileRow;
}

/** The stages of every profile when the model declares none (evaluateStages would allocate one empty map per profile). */
const NO_STAGES: ReadonlyMap<string, string> = new Map();

async function evaluatePass(trx: Trx, store: Store, workspaceId: string, model: WorkspaceModel, rows: PassRows, now: number, opts: EvaluateOptions): Promise<EvaluationChanges> {
  const maxP = store.dialect.capabilities.maxParameters;
  const scope: CustomerScope = opts.scope ?? { ids: rows.ids };
  const consent = readsConsent(model) && rows.live.length > 0 ? await consentOf(trx, workspaceId, opts.scope ?? { ids: rows.live }, maxP) : new Map<string, ConsentState[]>();
  const stored = await storedStagesIfAny(trx, model, workspaceId, scope, maxP, opts.anyStageStored);
  const plan = timePlan(model);
  const at = opts.at;
  const timeOf = at === undefined || at.size === 0 ? () => now : (id: string) => at.get(id) ?? now;
  const wanted = new Map<string, ReadonlySet<string>>();
  const wantedStages = new Map<string, ReadonlyMap<string, string>>();
  const due = new Map<string, number | undefined>();
  const noConsent: readonly ConsentState[] = [];
  for (let i = 0; i < rows.ids.length; i++) {
    const row = rows.row(i);
    if (row.mergedInto !== null) {
      wanted.set(row.id, new Set());
      wantedStages.set(row.id, NO_STAGES);
      due.set(row.id, undefined);
      continue;
    }
    const t = timeOf(row.id);
    const stage = stageForConditions(model, stored.get(row.id));
    const c = consent.get(row.id) ?? noConsent;
    const members = evaluateSegments(model, row, c, t, stage);
    wanted.set(row.id, members);
    wantedStages.set(row.id, model.stages.length === 0 ? NO_STAGES : evaluateStages(model, row, members, c, stage, t));
    if (plan.any) due.set(row.id, nextChange(plan, model, row, t));
  }
  const stages = stored.size > 0 || model.stages.length > 0 ? await writeStageDiff(trx, store, workspaceId, wantedStages, stored, timeOf) : [];
  // Only rows that change are written: most evaluations move neither the due nor a membership.
  if (plan.any) await writeDue(trx, store, workspaceId, due, await storedDue(trx, store, workspaceId, scope));
  if (opts.checkEmpty === true && model.segments.length === 0 && !(await hasAnyMembership(trx, workspaceId))) return { segments: [], stages, due };
  return { segments: await writeDiff(trx, store, workspaceId, wanted, await membershipsOf(trx, workspaceId, scope, maxP), timeOf), stages, due };
}

/**
 * Re-evaluates the segments, then the stages (see stages.ts), of every profile a unit touched,
 * inside the unit's transaction and after it was saved (so this batch's consent entries are read).
 * Profiles merged away leave every segment and stage. Returns the segment changes written.
 */
export async function updateSegmentMemberships(trx: Trx, store: Store, workspaceId: string, unit: ProfileUnit): Promise<SegmentChange[]> {
  const touched = [...unit.dirty];
  if (touched.length === 0) return [];
  return (await evaluateProfiles(trx, store, workspaceId, unit.model, touched, unit.now, { checkEmpty: true })).segments;
}

/**
 * Re-evaluates the given customers at `now` (segments, stages, sweep due), in one transaction under
 * the workspace's profile lock: after their computed traits were rebuilt, say. Unknown ids are skipped.
 */
export async function reevaluateProfiles(store: Store, workspaceId: string, model: WorkspaceModel, ids: readonly string[], now: number): Promise<EvaluationChanges> {
  return store.transaction(async (trx) => evaluateProfiles(trx, store, workspaceId, model, await loadProfiles(trx, store, workspaceId, ids), now), [profileLockKey(workspaceId)]);
}

async function hasAnyMembership(trx: Trx, workspaceId: string): Promise<boolean> {
  return (await trx.selectFrom('segment_membership').select('customer_id').where('workspace_id', '=', workspaceId).limit(1).executeTakeFirst()) !== undefined;
}


/** The identity keys (identityKey(kind, value)) of the customers in scope that hold any: reachable() reads them. */
async function identitiesOf(trx: Trx, workspaceId: string, scope: CustomerScope, maxP: number): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const part of scopeParts(scope, maxP)) {
    let q = trx.selectFrom('identities').select(['kind', 'value', 'customer_id']).where('workspace_id', '=', workspaceId);
    q = 'ids' in part ? q.where('customer_id', 'in', part.ids) : q.where('customer_id', '>', part.after).where('customer_id', '<=', part.last);
    for (const i of await q.execute()) {
      const key = `${i.kind}\u0000${i.value}`;
      const keys = out.get(i.customer_id);
      if (keys === undefined) out.set(i.customer_id, new Set([key]));
      else keys.add(key);
    }
  }
  return out;
}

/** The stored profiles with these ids (live or merged; unknown ids are absent), identities included, for evaluation. */
export async function loadProfiles(trx: Trx, store: Store, workspaceId: string, ids: readonly string[]): Promise<ProfileRow[]> {
  const maxP = store.dialect.capabilities.maxParameters;
  const profiles = new Map<string, ProfileRow>();
  for (const chunk of inChunks([...ids], maxP - 1)) {
    const rows = (await trx.selectFrom('customers').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', chunk).execute()) as CustomerRecord[];
    for (const r of rows) profiles.set(r.id, profileRowOf(r));
  }
  for (const [id, keys] of await identitiesOf(trx, workspaceId, { ids: [...profiles.keys()] }, maxP)) {
    const p = profiles.get(id);
    if (p !== undefined) p.identities = keys;
  }
  return [...profiles.values()];
}

/** The columns of a CustomerRecord (every one but workspace_id, which the query fixes). */
const CUSTOMER_COLUMNS = ['id', 'created_at', 'updated_at', 'merged_into', 'traits', 'computed', 'first_seen', 'last_seen'] as const;

/**
 * Evaluates every segment, then every stage (stages.ts), for every live profile of a workspace at `now` and writes the changes,
 * a page of profiles per transaction under the workspace's profile lock (the one ingest takes, so
 * a page never interleaves with an ingest commit). Memberships of merged-away
 * profiles are exited too. Stages are recomputed in the same pass (recomputeStages is this
 * function), so the bulk and live paths agree, and every profile's sweep due instant is rewritten
 * (run it after changing segment definitions). Returns the number of profiles evaluated.
 *
 * Pages default to 4,000 profiles (about 0.1 s of lock per page). Most of a recompute's writes are
 * sweep due instants, which land all over the (workspace_id, due_at) index, so a commit rewrites
 * about one index page per changed due however few profiles the page holds: fewer, larger commits
 * rewrite fewer pages (1M profiles, steady state: 5.7 GB written with pages of 1,000, 3.8 GB with
 * 4,000). Pass a smaller `pageSize` to hold the lock for shorter turns.
 */
export async function recomputeSegments(store: Store, workspaceId: string, model: WorkspaceModel, now: number, opts: { pageSize?: number } = {}): Promise<number> {
  const pageSize = opts.pageSize ?? 4000;
  const maxP = store.dialect.capabilities.maxParameters;
  const locks = [profileLockKey(workspaceId)];
  const anyStageStored = model.stages.length > 0 || (await hasAnyStage(store.db, workspaceId));
  let after = '';
  let done = 0;
  for (;;) {
    const n = await store.transaction(async (trx) => {
      const rows = (await trx.selectFrom('customers').select(CUSTOMER_COLUMNS).where('workspace_id', '=', workspaceId).where('merged_into', 'is', null).where('id', '>', after).orderBy('id').limit(pageSize).execute()) as CustomerRecord[];
      if (rows.length === 0) return 0;
      // The page is a key range: its identities, consent, memberships, stages and due rows are read
      // with one range scan each (the (workspace_id, customer_id) indexes), not one probe per id.
      const scope: CustomerScope = { after, last: (rows[rows.length - 1] as CustomerRecord).id };
      const identities = await identitiesOf(trx, workspaceId, scope, maxP);
      const ids = rows.map((r) => r.id);
      // Each record is parsed when the pass reaches it (see PassRows). Every row is live (the query
      // keeps merged_into null), and the scope covers exactly these ids among the live profiles.
      const row = (i: number): ProfileRow => {
        const p = profileRowOf(rows[i] as CustomerRecord);
        p.identities = identities.get(p.id) ?? p.identities;
        return p;
      };
      await evaluatePass(trx, store, workspaceId, model, { ids, live: ids, row }, now, { scope, anyStageStored });
      after = scope.last;
      return rows.length;
    }, locks);
    if (n === 0) break;
    done += n;
  }
  // Members that are no longer live profiles (merged away) leave every segment.
  await store.transaction(async (trx) => {
    const stale = await trx
      .selectFrom('segment_membership as m')
      .innerJoin('customers as c', (j) => j.onRef('c.workspace_id', '=', 'm.workspace_id').onRef('c.id', '=', 'm.customer_id'))
      .select('m.customer_id')
      .distinct()
      .where('m.workspace_id', '=', workspaceId)
      .where('c.merged_into', 'is not', null)
      .execute();
    if (stale.length > 0) {
      const ids = stale.map((s) => s.customer_id);
      await writeDiff(trx, store, workspaceId, new Map(ids.map((id) => [id, new Set<string>()])), await membershipsOf(trx, workspaceId, { ids }, maxP), () => now);
    }
    // Likewise their stages.
    const staleStages = await trx
      .selectFrom('customer_stage as s')
      .innerJoin('customers as c', (j) => j.onRef('c.workspace_id', '=', 's.workspace_id').onRef('c.id', '=', 's.customer_id'))
      .select('s.customer_id')
      .distinct()
      .where('s.workspace_id', '=', workspaceId)
      .where('c.merged_into', 'is not', null)
      .execute();
    if (staleStages.length > 0) {
      const ids = staleStages.map((s) => s.customer_id);
      await writeStageDiff(trx, store, workspaceId, new Map(ids.map((id) => [id, new Map<string, string>()])), await storedStagesOf(trx, workspaceId, ids, maxP), now);
    }
  }, locks);
  return done;
}

/** The bulk path for stages: segments and stages are recomputed in one pass. */
export const recomputeStages = recomputeSegments;

/** Current members per segment (segments without members are absent). */
export async function segmentSizes(db: Db, workspaceId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('segment_membership').select(['segment', sql<number>`count(*)`.as('n')]).where('workspace_id', '=', workspaceId).groupBy('segment').orderBy('segment').execute();
  return Object.fromEntries(rows.map((r) => [r.segment, Number(r.n)]));
}

/** A customer's current segments with when each was entered, by segment name. */
export async function getSegmentMemberships(db: Db, workspaceId: string, customerId: string): Promise<{ segment: string; enteredAt: string }[]> {
  const rows = await db.selectFrom('segment_membership').select(['segment', 'entered_at']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('segment').execute();
  return rows.map((r) => ({ segment: r.segment, enteredAt: new Date(Number(r.entered_at)).toISOString() }));
}

/** A customer's entries and exits, oldest first. */
export async function getSegmentHistory(db: Db, workspaceId: string, customerId: string): Promise<{ segment: string; change: 'entered' | 'exited'; at: string }[]> {
  const rows = await db.selectFrom('segment_history').select(['segment', 'change', 'at', 'id']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('at').orderBy('id').execute();
  return rows.map((r) => ({ segment: r.segment, change: r.change, at: new Date(Number(r.at)).toISOString() }));
}
