import { DAY, HOUR, MINUTE } from '../core/index.js';
import { customerZone, zoneOffset, type ComparisonOp, type CompiledCondition } from '../conditions/index.js';
import { inChunks, insertRows, type Store, type Trx } from '../store/index.js';
import type { ResolvedComputedTrait, WorkspaceModel } from '../blueprint/index.js';
import type { ProfileRow } from './unit.js';
import { scopeParts, type CustomerScope } from './scope.js';

/**
 * When can a customer's segments or stages next change with no new event? Membership is a pure
 * function of the profile and the time (segments.ts), so between two events only the time-dependent
 * inputs of the conditions can move it. Every time a profile is evaluated (ingest, recompute, sweep)
 * its "due" instant is computed here and stored (segment_sweep); the sweeper (sweep.ts) re-evaluates
 * it then.
 *
 * The invariant: no condition of the model can change value strictly between the evaluation time t
 * and due(t). An earlier due is always correct (the sweep re-evaluates, finds nothing, reschedules);
 * a later one would be a missed change. What each time-dependent input contributes:
 *
 * - Windowed count()/sum() (and declared windowed computed traits a condition reads): the value
 *   changes only when a non-empty bucket leaves the window, exactly at (bucket + span) × width —
 *   the oldest non-empty bucket still inside decides. Empty counters contribute nothing.
 * - days_since(event) when every use of it, in every segment and stage, is a comparison with a
 *   numeric literal (`days_since("X") > 45`, `0.5 >= days_since("X")`; found on the checked syntax
 *   tree, conditions/analyze.ts): exact. A comparison with threshold N days can flip only at
 *   last_ts + N·DAY (`>=`, `<`, `==`) or 1 ms later (`>`, `<=`, `==`, `!=`) — precisely, at the
 *   first whole ms whose quotient reaches or passes N (flipOffsets). The due is the earliest of
 *   those strictly after t; none once all have passed, and none while the event never happened
 *   (+Infinity, until an event re-evaluates). Times are whole milliseconds.
 * - days_since(event) used in any other way (arithmetic, compared with an expression or with
 *   another days_since, passed on, bound), or with a threshold beyond ±1e8 days: continuous, so it
 *   is checked on a grid anchored at the event's last time — every whole hour after it, and 1 ms
 *   after each — where a threshold in whole hours (`days_since("X") * 24.0 > 36.0`) is seen at the
 *   exact instant, any other within the hour (TIME_GRID_MS). One such use puts every use of that
 *   event on the grid; other events stay exact.
 * - now(), days_since(timestamp) and time-dependent functions registered by others: the same grid,
 *   anchored at whole UTC hours (a threshold that is not on it is seen within the hour).
 * - local_hour(), local_weekday(): the next hour (or midnight) boundary in the customer's zone; when
 *   the zone's offset changes before it (a DST switch), the next quarter hour instead, re-checked.
 * - Anything else (traits, consent, exists(), lifetime counts, stage(), in_segment()) changes only
 *   with an event, which re-evaluates on ingest anyway. in_segment() of a time-dependent segment is
 *   covered because every segment of the profile is re-evaluated when any one is due.
 *
 * Customers none of whose inputs are time-dependent get no due at all (no row).
 */

/** Resolution of continuous time (days_since, now()): a change is seen at most this late when its threshold is off the grid. */
export const TIME_GRID_MS = HOUR;
const QUARTER = 15 * MINUTE;

/** The functions Cairn registers whose time dependence the plan handles precisely (or that have none). */
const HANDLED = new Set(['count', 'sum', 'last', 'exists', 'opened', 'in_segment', 'stage', 'consent', 'reachable', 'visits', 'days_since', 'local_hour', 'local_weekday', 'now']);

/**
 * Thresholds (days) beyond this are left to the grid: up to it, the instant a comparison flips is a
 * safe integer of milliseconds after the event (1e8 days ≈ 8.64e15 ms, the whole Date range).
 */
const MAX_THRESHOLD_DAYS = 1e8;

/** What in a model's segment and stage conditions depends on time; computed once per model. */
export interface TimePlan {
  /** Windowed count/sum states a condition reads: their oldest non-empty bucket's expiry. */
  readonly windowed: readonly ResolvedComputedTrait[];
  /**
   * last_seen counters of events whose days_since(event) is only ever compared with numeric
   * literals: the offsets from the event's time (ms, ascending) at which one of those comparisons
   * can flip.
   */
  readonly thresholds: readonly { readonly counter: ResolvedComputedTrait; readonly offsets: readonly number[] }[];
  /** last_seen counters read by days_since(event) in any other way: the grid anchored at the event's time. */
  readonly anchored: readonly ResolvedComputedTrait[];
  /** now(), days_since(timestamp) or another registry's time function: the UTC hour grid. */
  readonly utcGrid: boolean;
  readonly localHour: boolean;
  readonly localDay: boolean;
  /** Some condition depends on time: profiles may need a due. */
  readonly any: boolean;
}

const plans = new WeakMap<WorkspaceModel, TimePlan>();

/** The time plan of a model's segments and stages. */
export function timePlan(model: WorkspaceModel): TimePlan {
  let plan = plans.get(model);
  if (plan) return plan;
  const byName = new Map(model.computed.map((d) => [d.name, d]));
  const windowed = new Set<ResolvedComputedTrait>();
  // Per last_seen counter read by days_since(event): the flip offsets, or null for the grid.
  const elapsed = new Map<ResolvedComputedTrait, Set<number> | null>();
  let utcGrid = false;
  let localHour = false;
  let localDay = false;
  const conditions: CompiledCondition[] = [...model.segments.map((s) => s.condition), ...model.stages.map((s) => s.condition)];
  for (const c of conditions) {
    for (const name of c.references.computed) {
      const d = byName.get(name);
      if (d && d.implicit !== true && d.windowMs !== undefined && (d.kind === 'count' || d.kind === 'sum')) windowed.add(d);
    }
    for (const spec of c.counters) {
      const d = byName.get(spec.key);
      if (d && d.windowMs !== undefined && (d.kind === 'count' || d.kind === 'sum')) windowed.add(d);
    }
    if (!c.references.dependsOnTime) continue;
    const fns = c.references.functions;
    if (fns.includes('local_hour')) localHour = true;
    if (fns.includes('local_weekday')) localDay = true;
    if (fns.includes('now')) utcGrid = true;
    if (c.daysSince.unanchored) utcGrid = true;
    for (const use of c.daysSince.events) {
      const d = byName.get(use.key);
      if (!d || d.kind !== 'last_seen') continue;
      let offsets = elapsed.get(d);
      if (offsets === null) continue;
      if (offsets === undefined) elapsed.set(d, (offsets = new Set()));
      // One use that is not a comparison with a literal (or a threshold out of range): the grid.
      const flips = use.comparisons?.map((cmp) => flipOffsets(cmp.op, cmp.days));
      if (flips === undefined || flips.some((f) => f === undefined)) elapsed.set(d, null);
      else for (const f of flips) for (const o of f ?? []) offsets.add(o);
    }
    if (fns.some((f) => !HANDLED.has(f))) utcGrid = true;
  }
  const thresholds: { counter: ResolvedComputedTrait; offsets: number[] }[] = [];
  const anchored: ResolvedComputedTrait[] = [];
  for (const [counter, offsets] of elapsed) {
    if (offsets === null) anchored.push(counter);
    else if (offsets.size > 0) thresholds.push({ counter, offsets: [...offsets].sort((a, b) => a - b) });
  }
  plan = Object.freeze({
    windowed: [...windowed],
    thresholds,
    anchored,
    utcGrid,
    localHour,
    localDay,
    any: windowed.size > 0 || thresholds.length > 0 || anchored.length > 0 || utcGrid || localHour || localDay,
  });
  plans.set(model, plan);
  return plan;
}

/**
 * The offsets from an event's time (whole ms) at which `days_since(event) op days` can change value,
 * for days_since = (now − ts) / DAY in doubles, as builtins.ts computes it: it is monotonic in the
 * elapsed ms, so `>=`/`<` flip at the first offset whose quotient reaches the threshold, `>`/`<=` at
 * the first that passes it (1 ms later for a threshold in whole ms), `==`/`!=` at both. Undefined
 * when the threshold is not a finite number within MAX_THRESHOLD_DAYS (left to the grid).
 */
export function flipOffsets(op: ComparisonOp, days: number): number[] | undefined {
  if (!Number.isFinite(days) || Math.abs(days) > MAX_THRESHOLD_DAYS) return undefined;
  // days × DAY may be rounded: step to the exact first offset by the same division evaluation does.
  let reached = Math.ceil(days * DAY);
  while (reached / DAY < days) reached++;
  while ((reached - 1) / DAY >= days) reached--;
  let passed = reached;
  while (passed / DAY <= days) passed++;
  switch (op) {
    case '>=':
    case '<':
      return [reached];
    case '>':
    case '<=':
      return [passed];
    case '==':
    case '!=':
      return reached === passed ? [reached] : [reached, passed];
  }
}

/** The first instant after t on the grid {anchor + k·GRID, anchor + k·GRID + 1 ms}. */
function nextGridPoint(anchor: number, t: number): number {
  const base = anchor + Math.floor((t - anchor) / TIME_GRID_MS) * TIME_GRID_MS;
  return t === base ? base + 1 : base + TIME_GRID_MS;
}

/**
 * The earliest instant after `t` at which a segment or stage of this profile could change with no
 * new event, or undefined when none can. Pure; `t` is the time the profile was evaluated at.
 *
 * @example
 *   // one order today, segment count("Order Completed", "30d") > 0 → due when that day's bucket leaves the window
 *   nextChange(timePlan(model), model, row, now);
 */
export function nextChange(plan: TimePlan, model: WorkspaceModel, row: ProfileRow, t: number): number | undefined {
  if (!plan.any || row.mergedInto !== null) return undefined;
  let due = Infinity;
  for (const d of plan.windowed) {
    const s = row.computed[d.name];
    if (s === undefined || !('b' in s)) continue;
    const span = Math.ceil((d.windowMs as number) / d.bucketMs);
    const first = Math.floor(t / d.bucketMs) - span + 1;
    let oldest = Infinity;
    const b = s.b;
    for (const k in b) {
      const i = Number(k);
      if (i >= first && i < oldest && b[k] !== 0) oldest = i;
    }
    // Bucket i counts while floor(t / width) - span + 1 <= i, i.e. until (i + span) × width.
    if (oldest !== Infinity) due = Math.min(due, (oldest + span) * d.bucketMs);
  }
  for (const { counter, offsets } of plan.thresholds) {
    const s = row.computed[counter.name];
    if (s === undefined || !('ts' in s) || typeof s.ts !== 'number') continue;
    // Never happened: days_since is +Infinity and no comparison with a literal flips until it does.
    const since = t - s.ts;
    for (const o of offsets) {
      if (o > since) {
        due = Math.min(due, s.ts + o);
        break;
      }
    }
  }
  for (const d of plan.anchored) {
    const s = row.computed[d.name];
    if (s !== undefined && 'ts' in s && typeof s.ts === 'number') due = Math.min(due, nextGridPoint(s.ts, t));
  }
  if (plan.utcGrid) due = Math.min(due, nextGridPoint(0, t));
  if (plan.localHour || plan.localDay) {
    const zone = customerZone(Object.hasOwn(row.traits, 'timezone') ? row.traits.timezone?.v : undefined, model.timezone);
    const offset = zoneOffset(zone, t);
    const step = plan.localHour ? HOUR : DAY;
    let next = (Math.floor((t + offset) / step) + 1) * step - offset;
    // The offset changes before the boundary (DST): step a quarter hour at a time past the switch.
    if (zoneOffset(zone, next) !== offset) next = Math.min(next, (Math.floor(t / QUARTER) + 1) * QUARTER);
    due = Math.min(due, next);
  }
  if (due === Infinity) return undefined;
  return due > t ? due : t + 1;
}

/** The stored due instants of the customers in scope. */
export async function storedDue(trx: Trx, store: Store, workspaceId: string, scope: CustomerScope): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const part of scopeParts(scope, store.dialect.capabilities.maxParameters)) {
    let q = trx.selectFrom('segment_sweep').select(['customer_id', 'due_at']).where('workspace_id', '=', workspaceId);
    q = 'ids' in part ? q.where('customer_id', 'in', part.ids) : q.where('customer_id', '>', part.after).where('customer_id', '<=', part.last);
    for (const r of await q.execute()) out.set(r.customer_id, Number(r.due_at));
  }
  return out;
}

/**
 * Stores the due instants of the given customers and removes the rows of those that have none
 * (time-independent now, or merged away). With `stored` (what storedDue read in this transaction),
 * only the rows that differ are written. Callers skip this when the model has no time dependence at
 * all: a stale row left from an older blueprint only costs the sweeper one evaluation, which removes it.
 */
export async function writeDue(trx: Trx, store: Store, workspaceId: string, due: ReadonlyMap<string, number | undefined>, stored?: ReadonlyMap<string, number>): Promise<void> {
  const rows: (readonly unknown[])[] = [];
  const none: string[] = [];
  for (const [customerId, at] of due) {
    if (stored !== undefined && stored.get(customerId) === at) continue;
    if (at === undefined) {
      if (stored === undefined || stored.has(customerId)) none.push(customerId);
    } else rows.push([workspaceId, customerId, at]);
  }
  if (rows.length > 0) {
    // In due order: each row moves an entry of the (workspace_id, due_at) index, so ordered rows walk
    // that index's pages in order instead of jumping between them (a recompute moves most of them).
    rows.sort((a, b) => (a[2] as number) - (b[2] as number));
    await insertRows(trx, store.dialect, 'segment_sweep', ['workspace_id', 'customer_id', 'due_at'], rows, {
      suffix: 'on conflict ("workspace_id", "customer_id") do update set "due_at" = excluded."due_at"',
    });
  }
  if (none.length > 0) {
    for (const chunk of inChunks(none, store.dialect.capabilities.maxParameters - 1)) {
      await trx.deleteFrom('segment_sweep').where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute();
    }
  }
}
