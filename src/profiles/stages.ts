import { sql } from 'kysely';
import { uuidv7 } from '../core/index.js';
import { inChunks, insertRows, type Db, type Store, type Trx } from '../store/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import type { ConsentState } from './consent.js';
import type { ProfileRow } from './unit.js';
import { buildEvalInput } from './view.js';
import { scopeParts, type CustomerScope } from './scope.js';

/**
 * Each customer's current stage, per lifecycle: the LAST listed stage of the lifecycle whose
 * condition holds, or none. Stages without a `lifecycle` share the default lifecycle, stored as ''.
 *
 * Order within a batch (ingest transaction, and each recompute page): segments first, then stages,
 * so stage conditions read this batch's memberships with in_segment(). `stage()` — in a segment
 * condition or in a stage condition — reads the customer's STORED stage from before the batch (in
 * the lifecycle of the first listed stage); it is never refused at load. That keeps one pass per
 * profile and makes the live path and recomputeSegments agree, since both read the same stored
 * stage at the same `now`. (A stage condition that tests stage() therefore sees the previous stage,
 * which is what "stay in Customer once there" rules want.)
 *
 * Changes only are written, each with one stage_history row (from_stage null: first stage in the
 * lifecycle; to_stage null: no stage holds any more, or the profile was merged away).
 */

export interface StoredStage {
  stage: string;
  enteredAt: number;
}

/** Stored stages by customer, then lifecycle. */
export type StoredStages = Map<string, Map<string, StoredStage>>;

/** The lifecycle `stage()` reads: that of the first listed stage ('' without stages). */
export function primaryLifecycle(model: WorkspaceModel): string {
  return model.stages[0]?.lifecycle ?? '';
}

/** What `stage()` returns for a customer with these stored stages (null: none yet). */
export function stageForConditions(model: WorkspaceModel, stored: ReadonlyMap<string, StoredStage> | undefined): string | null {
  return stored?.get(primaryLifecycle(model))?.stage ?? null;
}

/**
 * The stage a profile is in per lifecycle at `now`, given its memberships of this pass and the
 * stage `stage()` reads (the stored one). Lifecycles where no condition holds are absent.
 */
export function evaluateStages(model: WorkspaceModel, row: ProfileRow, segments: ReadonlySet<string>, consent: readonly ConsentState[], stage: string | null, now: number): Map<string, string> {
  const out = new Map<string, string>();
  if (model.stages.length === 0) return out;
  const input = buildEvalInput(model, row, { now, segments, stage, consent });
  // Later stages win: the last listed stage whose condition holds.
  for (const s of model.stages) if (s.condition.evaluate(input)) out.set(s.lifecycle, s.name);
  return out;
}

/** Whether any stage condition reads consent. */
export function stagesReadConsent(model: WorkspaceModel): boolean {
  return model.stages.some((s) => s.condition.references.purposes.length > 0 || s.condition.references.functions.includes('consent'));
}

/** Stored stages of the customers in scope (a list of ids or a recompute page's key range). */
export async function storedStagesOf(trx: Trx | Db, workspaceId: string, ids: readonly string[] | CustomerScope, maxP: number): Promise<StoredStages> {
  const out: StoredStages = new Map();
  for (const part of scopeParts(Array.isArray(ids) ? { ids } : (ids as CustomerScope), maxP)) {
    let q = trx.selectFrom('customer_stage').select(['customer_id', 'lifecycle', 'stage', 'entered_at']).where('workspace_id', '=', workspaceId);
    q = 'ids' in part ? q.where('customer_id', 'in', part.ids) : q.where('customer_id', '>', part.after).where('customer_id', '<=', part.last);
    const rows = await q.execute();
    for (const r of rows) {
      const m = out.get(r.customer_id) ?? new Map<string, StoredStage>();
      m.set(r.lifecycle, { stage: r.stage, enteredAt: Number(r.entered_at) });
      out.set(r.customer_id, m);
    }
  }
  return out;
}

export async function hasAnyStage(trx: Trx | Db, workspaceId: string): Promise<boolean> {
  return (await trx.selectFrom('customer_stage').select('customer_id').where('workspace_id', '=', workspaceId).limit(1).executeTakeFirst()) !== undefined;
}

export interface StageChange {
  customerId: string;
  lifecycle: string;
  from: string | null;
  to: string | null;
  at: number;
}

/**
 * Writes the difference between the stored and wanted stages of the given customers (every
 * customer listed; a lifecycle absent from the wanted map leaves its stage). `now` dates the moves:
 * one time, or the evaluation time per customer (a sweep evaluates a late customer at its due instant).
 */
export async function writeStageDiff(trx: Trx, store: Store, workspaceId: string, wanted: ReadonlyMap<string, ReadonlyMap<string, string>>, stored: StoredStages, now: number | ((customerId: string) => number)): Promise<StageChange[]> {
  const maxP = store.dialect.capabilities.maxParameters;
  const changes: StageChange[] = [];
  for (const [customerId, want] of wanted) {
    const have = stored.get(customerId) ?? new Map<string, StoredStage>();
    const at = typeof now === 'number' ? now : now(customerId);
    for (const [lifecycle, s] of have) if (want.get(lifecycle) !== s.stage) changes.push({ customerId, lifecycle, from: s.stage, to: want.get(lifecycle) ?? null, at });
    for (const [lifecycle, s] of want) if (!have.has(lifecycle)) changes.push({ customerId, lifecycle, from: null, to: s, at });
  }
  if (changes.length === 0) return changes;
  // A move is one upsert; only leaving every stage of a lifecycle deletes, one statement per
  // lifecycle for all such customers (a per-customer delete cost a round trip per move).
  const leaving = new Map<string, string[]>();
  for (const c of changes) if (c.to === null) leaving.set(c.lifecycle, [...(leaving.get(c.lifecycle) ?? []), c.customerId]);
  for (const [lifecycle, customerIds] of leaving) {
    for (const chunk of inChunks(customerIds, maxP - 2)) {
      await trx.deleteFrom('customer_stage').where('workspace_id', '=', workspaceId).where('lifecycle', '=', lifecycle).where('customer_id', 'in', chunk).execute();
    }
  }
  const entries = changes.filter((c) => c.to !== null).map((c) => [workspaceId, c.customerId, c.lifecycle, c.to, c.at]);
  await insertRows(trx, store.dialect, 'customer_stage', ['workspace_id', 'customer_id', 'lifecycle', 'stage', 'entered_at'], entries, {
    suffix: 'on conflict ("workspace_id", "customer_id", "lifecycle") do update set "stage" = excluded."stage", "entered_at" = excluded."entered_at"',
  });
  const history = changes.map((c) => [workspaceId, c.customerId, uuidv7(c.at), c.lifecycle, c.from, c.to, c.at]);
  await insertRows(trx, store.dialect, 'stage_history', ['workspace_id', 'customer_id', 'id', 'lifecycle', 'from_stage', 'to_stage', 'at'], history);
  return changes;
}

/** Current customers per stage (stages without customers are absent). Stage names are unique across lifecycles. */
export async function stageSizes(db: Db, workspaceId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('customer_stage').select(['stage', sql<number>`count(*)`.as('n')]).where('workspace_id', '=', workspaceId).groupBy('stage').orderBy('stage').execute();
  return Object.fromEntries(rows.map((r) => [r.stage, Number(r.n)]));
}

/** A customer's current stage per lifecycle, with when it was entered. */
export async function getCustomerStages(db: Db, workspaceId: string, customerId: string): Promise<{ lifecycle: string; stage: string; enteredAt: string }[]> {
  const rows = await db.selectFrom('customer_stage').select(['lifecycle', 'stage', 'entered_at']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('lifecycle').execute();
  return rows.map((r) => ({ lifecycle: r.lifecycle, stage: r.stage, enteredAt: new Date(Number(r.entered_at)).toISOString() }));
}

/** A customer's stage moves, oldest first. */
export async function getStageHistory(db: Db, workspaceId: string, customerId: string): Promise<{ lifecycle: string; from: string | null; to: string | null; at: string }[]> {
  const rows = await db.selectFrom('stage_history').select(['lifecycle', 'from_stage', 'to_stage', 'at', 'id']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).orderBy('at').orderBy('id').execute();
  return rows.map((r) => ({ lifecycle: r.lifecycle, from: r.from_stage, to: r.to_stage, at: new Date(Number(r.at)).toISOString() }));
}
