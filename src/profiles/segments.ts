import { sql } from 'kysely';
import { uuidv7 } from '../core/index.js';
import { chunkRows, insertRows, type Db, type Store, type Trx } from '../store/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { currentConsent, type ConsentEntry, type ConsentState } from './consent.js';
import type { ProfileUnit, ProfileRow } from './unit.js';
import type { Traits } from './traits.js';
import type { ComputedState } from './computed.js';
import { buildEvalInput } from './view.js';
import { evaluateStages, hasAnyStage, stageForConditions, stagesReadConsent, storedStagesOf, writeStageDiff, type StoredStages } from './stages.js';
// A cycle with repository.ts (which calls updateSegmentMemberships); only functions cross it.
import { profileLockKey } from './repository.js';

/**
 * Segment membership, kept in real time. Membership is a pure function of the profile (traits,
 * computed states and counters, identities, consent) and the time: segments are evaluated in the
 * model's dependency order, each reading with in_segment() the memberships decided before it in
 * the same pass (a segment in an in_segment cycle reads a not-yet-evaluated member as false).
 * Previous membership is never an input, so the incremental path (on each ingest batch) and a bulk
 * recompute give the same memberships for the same profiles at the same `now`.
 *
 * A segment whose condition holds only because of time (windows sliding, days_since) changes
 * without an event; only recomputeSegments picks that up (see its comment).
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

/** The stored stages of these customers, when stages are declared or some are stored (else empty). */
async function storedStagesIfAny(trx: Trx, model: WorkspaceModel, workspaceId: string, ids: readonly string[], maxP: number): Promise<StoredStages> {
  if (ids.length === 0 || (model.stages.length === 0 && !(await hasAnyStage(trx, workspaceId)))) return new Map();
  return storedStagesOf(trx, workspaceId, ids, maxP);
}

async function consentOf(trx: Trx | Db, workspaceId: string, ids: readonly string[], maxP: number): Promise<Map<string, ConsentState[]>> {
  const ledger = new Map<string, ConsentEntry[]>();
  for (const chunk of chunkRows([...ids], 1, maxP - 1)) {
    const rows = await trx.selectFrom('consent').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute();
    for (const r of rows) {
      const list = ledger.get(r.customer_id) ?? [];
      list.push({ id: r.id, purpose: r.purpose, channel: r.channel, status: r.status, source: r.source, occurredAt: Number(r.occurred_at), recordedAt: Number(r.recorded_at), wordingVersion: r.wording_version, messageId: r.message_id });
      ledger.set(r.customer_id, list);
    }
  }
  return new Map([...ledger].map(([id, entries]) => [id, currentConsent(entries)]));
}

async function membershipsOf(trx: Trx, workspaceId: string, ids: readonly string[], maxP: number): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  for (const chunk of chunkRows([...ids], 1, maxP - 1)) {
    const rows = await trx.selectFrom('segment_membership').select(['customer_id', 'segment', 'entered_at']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute();
    for (const r of rows) {
      const m = out.get(r.customer_id) ?? new Map<string, number>();
      m.set(r.segment, Number(r.entered_at));
      out.set(r.customer_id, m);
    }
  }
  return out;
}

export interface SegmentChange {
  customerId: string;
  segment: string;
  change: 'entered' | 'exited';
  at: number;
}

/**
 * Writes the difference between stored and wanted memberships of the given customers (every
 * customer listed; an absent or empty wanted set exits everything) with one history row per change.
 */
async function writeDiff(trx: Trx, store: Store, workspaceId: string, wanted: ReadonlyMap<string, ReadonlySet<string>>, now: number): Promise<SegmentChange[]> {
  const maxP = store.dialect.capabilities.maxParameters;
  const stored = await membershipsOf(trx, workspaceId, [...wanted.keys()], maxP);
  const changes: SegmentChange[] = [];
  for (const [customerId, want] of wanted) {
    const have = stored.get(customerId) ?? new Map<string, number>();
    for (const s of have.keys()) if (!want.has(s)) changes.push({ customerId, segment: s, change: 'exited', at: now });
    for (const s of want) if (!have.has(s)) changes.push({ customerId, segment: s, change: 'entered', at: now });
  }
  if (changes.length === 0) return changes;
  const exits = new Map<string, string[]>();
  for (const c of changes) if (c.change === 'exited') exits.set(c.customerId, [...(exits.get(c.customerId) ?? []), c.segment]);
  for (const [customerId, segments] of exits) {
    for (const chunk of chunkRows(segments, 1, maxP - 2)) {
      await trx.deleteFrom('segment_membership').where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).where('segment', 'in', chunk).execute();
    }
  }
  const entries = changes.filter((c) => c.change === 'entered').map((c) => [workspaceId, c.customerId, c.segment, now]);
  await insertRows(trx, store.dialect, 'segment_membership', ['workspace_id', 'customer_id', 'segment', 'entered_at'], entries);
  const history = changes.map((c) => [workspaceId, c.customerId, uuidv7(now), c.segment, c.change, now]);
  await insertRows(trx, store.dialect, 'segment_history', ['workspace_id', 'customer_id', 'id', 'segment', 'change', 'at'], history);
  return changes;
}

/**
 * Segments, then stages, of the given profiles (merged-away ones leave every segment and stage):
 * one pass, shared by the live and the bulk path so that they agree.
 */
async function evaluateAndWrite(trx: Trx, store: Store, workspaceId: string, model: WorkspaceModel, rows: readonly ProfileRow[], now: number, checkEmpty: boolean): Promise<SegmentChange[]> {
  const maxP = store.dialect.capabilities.maxParameters;
  const live = rows.filter((r) => r.mergedInto === null);
  const consent = readsConsent(model) && live.length > 0 ? await consentOf(trx, workspaceId, live.map((r) => r.id), maxP) : new Map<string, ConsentState[]>();
  const stored = await storedStagesIfAny(trx, model, workspaceId, rows.map((r) => r.id), maxP);
  const wanted = new Map<string, ReadonlySet<string>>();
  const wantedStages = new Map<string, ReadonlyMap<string, string>>();
  for (const row of rows) {
    if (row.mergedInto !== null) {
      wanted.set(row.id, new Set());
      wantedStages.set(row.id, new Map());
      continue;
    }
    const stage = stageForConditions(model, stored.get(row.id));
    const c = consent.get(row.id) ?? [];
    const members = evaluateSegments(model, row, c, now, stage);
    wanted.set(row.id, members);
    wantedStages.set(row.id, evaluateStages(model, row, members, c, stage, now));
  }
  if (stored.size > 0 || model.stages.length > 0) await writeStageDiff(trx, store, workspaceId, wantedStages, stored, now);
  if (checkEmpty && model.segments.length === 0 && !(await hasAnyMembership(trx, workspaceId))) return [];
  return writeDiff(trx, store, workspaceId, wanted, now);
}

/**
 * Re-evaluates the segments, then the stages (see stages.ts), of every profile a unit touched,
 * inside the unit's transaction and after it was saved (so this batch's consent entries are read).
 * Profiles merged away leave every segment and stage. Returns the segment changes written.
 */
export async function updateSegmentMemberships(trx: Trx, store: Store, workspaceId: string, unit: ProfileUnit): Promise<SegmentChange[]> {
  const touched = [...unit.dirty];
  if (touched.length === 0) return [];
  return evaluateAndWrite(trx, store, workspaceId, unit.model, touched, unit.now, true);
}

async function hasAnyMembership(trx: Trx, workspaceId: string): Promise<boolean> {
  return (await trx.selectFrom('segment_membership').select('customer_id').where('workspace_id', '=', workspaceId).limit(1).executeTakeFirst()) !== undefined;
}

type CustomerRecord = { id: string; created_at: number; updated_at: number; merged_into: string | null; traits: string; computed: string; first_seen: number; last_seen: number };

/**
 * Evaluates every segment, then every stage (stages.ts), for every live profile of a workspace at `now` and writes the changes,
 * a page of profiles per transaction under the workspace's profile lock (the one ingest takes, so
 * a page never interleaves with an ingest commit). Memberships of merged-away
 * profiles are exited too. This is also how exits caused by time alone (a rolling window emptying)
 * are found: run it periodically. Stages are recomputed in the same pass (recomputeStages is this
 * function), so the bulk and live paths agree. Returns the number of profiles evaluated.
 */
export async function recomputeSegments(store: Store, workspaceId: string, model: WorkspaceModel, now: number, opts: { pageSize?: number } = {}): Promise<number> {
  const pageSize = opts.pageSize ?? 500;
  const maxP = store.dialect.capabilities.maxParameters;
  const locks = [profileLockKey(workspaceId)];
  let after = '';
  let done = 0;
  for (;;) {
    const n = await store.transaction(async (trx) => {
      const rows = (await trx.selectFrom('customers').selectAll().where('workspace_id', '=', workspaceId).where('merged_into', 'is', null).where('id', '>', after).orderBy('id').limit(pageSize).execute()) as CustomerRecord[];
      if (rows.length === 0) return 0;
      const ids = rows.map((r) => r.id);
      const idRows: { kind: string; value: string; customer_id: string }[] = [];
      for (const chunk of chunkRows(ids, 1, maxP - 1)) idRows.push(...(await trx.selectFrom('identities').select(['kind', 'value', 'customer_id']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute()));
      const profiles = new Map<string, ProfileRow>(
        rows.map((r) => [
          r.id,
          { id: r.id, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), mergedInto: null, traits: JSON.parse(r.traits) as Traits, computed: JSON.parse(r.computed) as Record<string, ComputedState>, firstSeen: Number(r.first_seen), lastSeen: Number(r.last_seen), identities: new Set<string>() },
        ]),
      );
      for (const i of idRows) profiles.get(i.customer_id)?.identities.add(`${i.kind}\u0000${i.value}`);
      await evaluateAndWrite(trx, store, workspaceId, model, [...profiles.values()], now, false);
      after = ids[ids.length - 1] as string;
      return ids.length;
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
    if (stale.length > 0) await writeDiff(trx, store, workspaceId, new Map(stale.map((s) => [s.customer_id, new Set<string>()])), now);
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
