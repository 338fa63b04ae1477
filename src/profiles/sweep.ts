import { PeriodicRunner, type Clock } from '../core/index.js';
import { inChunks, type Store } from '../store/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { profileLockKey } from './repository.js';
import { evaluateProfiles, loadProfiles } from './segments.js';

/**
 * The time sweep: segments and stages that change because time passes, for customers who send no
 * event. Every evaluation (ingest, recompute, this sweep) stores when the profile can next change
 * with time alone (due.ts, table segment_sweep); the sweep claims the rows that are due and
 * re-evaluates those profiles through the same pass as ingest (segments.ts evaluateProfiles:
 * segments, stages, history, next due), so live, swept and recomputed memberships agree.
 *
 * - Ordering: each batch is one transaction under the workspace's profile lock, the lock every
 *   ingest commit takes, so a sweep never interleaves with an ingest of the same workspace. On
 *   PostgreSQL the due rows are also claimed FOR UPDATE SKIP LOCKED; on SQLite the single writer
 *   serializes. A claimed row is deleted and rewritten with the next due, in the same transaction.
 * - Late timers fire on start: a due_at in the past is simply due.
 * - History time: an overdue customer is evaluated at its due instant, not at the sweep's clock,
 *   so the history row says when the window actually emptied (due instants are exact for windows
 *   and local time; see due.ts) and a sweep that runs late — or the first one after a restart —
 *   records what a punctual one would have. While the next due is still past it is replayed again,
 *   in the same transaction, up to `maxReplays` instants; then it is evaluated at the clock's now.
 *   Since a profile only changes through evaluations that reschedule it, its stored state is exactly
 *   what it was at the due instant (never evaluated before its last update, as a guard).
 * - Invariant: after a sweep at T no customer has a due ≤ T, and since no condition can change
 *   before a customer's due, every membership equals what recomputeSegments at T would give.
 */

export interface SweepOptions {
  /** Customers claimed and re-evaluated per transaction (the workspace lock is held that long). Default 500. */
  batchSize?: number;
  /** Due instants of one overdue customer replayed in order before it is evaluated at now (see above). Default 24. */
  maxReplays?: number;
  /** Batches per workspace in one run at most; the rest waits for the next run. Default 10,000. */
  maxBatches?: number;
}

export interface SweepResult {
  /** Workspaces that had due customers. */
  workspaces: number;
  /** Profile evaluations (a customer replayed through several due instants counts each time). */
  evaluated: number;
  entered: number;
  exited: number;
  /** Stage moves written. */
  stageMoves: number;
  ms: number;
}

/** The slice of a logger the sweeper uses (pino fits). */
export interface SweepLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const DEFAULTS = { batchSize: 500, maxReplays: 24, maxBatches: 10_000 };

function emptyResult(): SweepResult {
  return { workspaces: 0, evaluated: 0, entered: 0, exited: 0, stageMoves: 0, ms: 0 };
}

/**
 * Re-evaluates every customer of one workspace whose due instant is at or before the clock's now,
 * batch by batch, until none is due. Returns what it did.
 *
 * @example
 *   clock.advance(31 * DAY);
 *   await sweepWorkspace(store, 'ws1', model, clock); // the 30-day buyers whose window emptied exit
 */
export async function sweepWorkspace(store: Store, workspaceId: string, model: WorkspaceModel, clock: Clock, options: SweepOptions = {}, shouldStop: () => boolean = () => false): Promise<SweepResult> {
  const opts = { ...DEFAULTS, ...options };
  const result = emptyResult();
  const started = performance.now();
  const maxP = store.dialect.capabilities.maxParameters;
  for (let batch = 0; batch < opts.maxBatches && !shouldStop(); batch++) {
    const now = clock.now();
    const claimed = await store.transaction(async (trx) => {
      let q = trx.selectFrom('segment_sweep').select(['customer_id', 'due_at']).where('workspace_id', '=', workspaceId).where('due_at', '<=', now).orderBy('due_at').orderBy('customer_id').limit(opts.batchSize);
      if (store.dialect.capabilities.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const due = await q.execute();
      if (due.length === 0) return 0;
      const ids = due.map((d) => d.customer_id);
      // Rewritten by the evaluation below (or left out: merged away, gone, or no longer time-dependent).
      for (const chunk of inChunks(ids, maxP - 1)) await trx.deleteFrom('segment_sweep').where('workspace_id', '=', workspaceId).where('customer_id', 'in', chunk).execute();
      const live = (await loadProfiles(trx, store, workspaceId, ids)).filter((p) => p.mergedInto === null);
      const dueAt = new Map(due.map((d) => [d.customer_id, Number(d.due_at)]));
      // Evaluation time per customer; absent means now.
      let at = new Map<string, number>();
      for (const p of live) {
        const t = Math.min(now, Math.max(dueAt.get(p.id) ?? now, p.updatedAt));
        if (t < now) at.set(p.id, t);
      }
      let pending = live;
      for (let round = 1; pending.length > 0; round++) {
        const changes = await evaluateProfiles(trx, store, workspaceId, model, pending, now, { at });
        result.evaluated += pending.length;
        for (const c of changes.segments) {
          if (c.change === 'entered') result.entered++;
          else result.exited++;
        }
        result.stageMoves += changes.stages.length;
        // Replay those evaluated in the past whose next due has passed too; the last round is at now.
        const again: typeof pending = [];
        const next = new Map<string, number>();
        for (const p of pending) {
          const d = changes.due.get(p.id);
          if (!at.has(p.id) || d === undefined || d > now) continue;
          again.push(p);
          if (round < opts.maxReplays && d < now) next.set(p.id, d);
        }
        pending = again;
        at = next;
      }
      return due.length;
    }, [profileLockKey(workspaceId)]);
    if (claimed === 0) break;
    if (batch === 0) result.workspaces = 1;
  }
  result.ms = performance.now() - started;
  return result;
}

export interface SegmentSweeperDeps {
  store: Store;
  clock: Clock;
  log: SweepLogger;
  /** The model a workspace runs now; undefined when the workspace is gone (its rows are left alone). */
  model(workspaceId: string): Promise<WorkspaceModel | undefined>;
}

/**
 * Runs the sweep over every workspace, periodically when started (a timer that never keeps the
 * process alive, and never overlaps itself), or on demand with runOnce() — what tests do after
 * advancing a VirtualClock. Logs one line per run that changed something.
 */
export class SegmentSweeper {
  readonly #runner: PeriodicRunner<SweepResult>;

  constructor(
    private readonly deps: SegmentSweeperDeps,
    private readonly options: SweepOptions & { intervalMs?: number } = {},
  ) {
    this.#runner = new PeriodicRunner(() => this.#run(), { intervalMs: options.intervalMs ?? 0, onError: (err) => deps.log.error({ err }, 'segment sweep failed') });
  }

  /** Starts the periodic sweep; the first run is immediate, so timers that fell due while stopped fire on start. No-op when intervalMs is 0. */
  start(): void {
    this.#runner.start();
  }

  /** Stops the timer and waits for a run in flight (which ends after its current batch). */
  stop(): Promise<void> {
    return this.#runner.close();
  }

  /** One sweep of every workspace with due customers, after any run in flight. */
  runOnce(): Promise<SweepResult> {
    return this.#runner.runOnce();
  }

  async #run(): Promise<SweepResult> {
    const { store, clock, log } = this.deps;
    const total = emptyResult();
    const started = performance.now();
    // The workspaces holding sweep rows, one index probe each (a loose scan of the primary key).
    let after = '';
    for (;;) {
      const next = await store.db.selectFrom('segment_sweep').select('workspace_id').where('workspace_id', '>', after).orderBy('workspace_id').limit(1).executeTakeFirst();
      if (next === undefined) break;
      after = next.workspace_id;
      const model = await this.deps.model(after);
      if (model === undefined) continue;
      let r: SweepResult;
      try {
        r = await sweepWorkspace(store, after, model, clock, this.options, () => this.#runner.closing);
      } catch (err) {
        // One workspace that fails (a bad blueprint version, a storage error) must not stop the
        // sweep of the others; it is tried again on the next run.
        log.error({ err, workspaceId: after }, 'segment sweep of a workspace failed');
        continue;
      }
      if (this.#runner.closing) break;
      total.workspaces += r.workspaces;
      total.evaluated += r.evaluated;
      total.entered += r.entered;
      total.exited += r.exited;
      total.stageMoves += r.stageMoves;
    }
    total.ms = performance.now() - started;
    if (total.entered + total.exited + total.stageMoves > 0) {
      log.info({ workspaces: total.workspaces, evaluated: total.evaluated, entered: total.entered, exited: total.exited, stageMoves: total.stageMoves, ms: Math.round(total.ms) }, 'segment sweep');
    }
    return total;
  }
}
