import type { Logger } from 'pino';
import { CairnError, EventBus, type Clock } from '../core/index.js';
import { chunkRows, type Store, type Trx } from '../store/index.js';
import type { WorkspaceRegistry } from '../governance/index.js';
import { applyProfileEvents, profileLockKey, type ProfileEvent, type ProfileUnit } from '../profiles/index.js';

export type ItemOutcome = 'accepted' | 'duplicate';

export interface IngestEvents {
  /** A group commit finished: these events are durable and applied to profiles. */
  'ingest:committed': { workspaceId: string; accepted: number; duplicates: number; unit: ProfileUnit };
  'ingest:failed': { requests: number; events: number; error: unknown };
  'listener:error': { event: unknown; error: unknown };
}

interface Pending {
  workspaceId: string;
  events: ProfileEvent[];
  resolve: (r: ItemOutcome[]) => void;
  reject: (e: unknown) => void;
}

export interface PipelineOptions {
  /** Most events applied in one transaction. */
  maxBatch: number;
  dedupeWindowMs: number;
}

/**
 * Durable ingest with group commit. Requests enqueue their events and wait; one writer takes
 * everything queued, applies it in a single transaction (dedupe, identities, profiles, timeline,
 * consent) and only then resolves the requests, so an acknowledged event is always committed and
 * many concurrent requests share one commit.
 *
 * Work for one workspace is applied in arrival order by the single writer; across processes
 * (PostgreSQL) a transaction-scoped advisory lock per workspace keeps that order.
 */
export class IngestPipeline {
  readonly events = new EventBus<IngestEvents>();
  private queue: Pending[] = [];
  private queued = 0;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly workspaces: WorkspaceRegistry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: PipelineOptions,
  ) {}

  /** Resolves once the events are committed, with one outcome per event in order. */
  submit(workspaceId: string, events: ProfileEvent[]): Promise<ItemOutcome[]> {
    if (this.closed) return Promise.reject(new CairnError('CAIRN_ERR_SHUTTING_DOWN'));
    if (events.length === 0) return Promise.resolve([]);
    return new Promise<ItemOutcome[]>((resolve, reject) => {
      this.queue.push({ workspaceId, events, resolve, reject });
      this.queued += events.length;
      this.kick();
    });
  }

  get depth(): number {
    return this.queued;
  }

  private kick(): void {
    if (this.running) return;
    // setImmediate lets requests that arrive in the same turn of the event loop join this commit.
    this.running = new Promise<void>((done) => setImmediate(() => void this.drainLoop().finally(done)));
    void this.running.then(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drainLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const take: Pending[] = [];
      let n = 0;
      while (this.queue.length > 0 && (n === 0 || n + (this.queue[0] as Pending).events.length <= this.opts.maxBatch)) {
        const p = this.queue.shift() as Pending;
        take.push(p);
        n += p.events.length;
      }
      this.queued -= n;
      try {
        const outcomes = await this.commit(take);
        take.forEach((p, i) => p.resolve(outcomes[i] as ItemOutcome[]));
      } catch (err) {
        if (take.length > 1) {
          // Isolate a poison request: retry each alone so one bad request fails only itself.
          for (const p of take) {
            try {
              const [o] = await this.commit([p]);
              p.resolve(o as ItemOutcome[]);
            } catch (e) {
              this.fail([p], e);
            }
          }
        } else this.fail(take, err);
      }
    }
  }

  private fail(take: Pending[], err: unknown): void {
    this.events.emit('ingest:failed', { requests: take.length, events: take.reduce((a, p) => a + p.events.length, 0), error: err });
    this.log.error({ err }, 'ingest commit failed; nothing in it was acknowledged');
    for (const p of take) p.reject(err);
  }

  private async commit(take: Pending[]): Promise<ItemOutcome[][]> {
    const now = this.clock.now();
    const byWorkspace = new Map<string, { p: number; i: number; e: ProfileEvent }[]>();
    take.forEach((p, pi) =>
      p.events.forEach((e, i) => {
        const list = byWorkspace.get(p.workspaceId) ?? [];
        list.push({ p: pi, i, e });
        byWorkspace.set(p.workspaceId, list);
      }),
    );
    const outcomes: ItemOutcome[][] = take.map((p) => new Array<ItemOutcome>(p.events.length).fill('duplicate'));
    const models = new Map<string, Awaited<ReturnType<WorkspaceRegistry['get']>>>();
    for (const ws of byWorkspace.keys()) models.set(ws, await this.workspaces.get(ws));
    const committed: IngestEvents['ingest:committed'][] = [];

    await this.store.transaction(async (trx) => {
      for (const [ws, items] of byWorkspace) {
        const fresh = await this.dedupe(trx, ws, items, now);
        const events = fresh.map((x) => x.e);
        for (const x of fresh) (outcomes[x.p] as ItemOutcome[])[x.i] = 'accepted';
        const unit = await applyProfileEvents(trx, this.store, ws, (models.get(ws) as { model: Parameters<typeof applyProfileEvents>[3] }).model, events, now);
        committed.push({ workspaceId: ws, accepted: fresh.length, duplicates: items.length - fresh.length, unit });
      }
    }, [...byWorkspace.keys()].map(profileLockKey));

    for (const c of committed) this.events.emit('ingest:committed', c);
    return outcomes;
  }

  /**
   * Keeps the first event of each (source, messageId) that no event received within the window
   * already carries. The lookup runs on the events_message index inside the writing transaction,
   * and writers of a workspace are serialized (SQLite's single writer, the workspace advisory lock
   * on PostgreSQL), so nothing can slip in between the check and the insert. An event received
   * before the window counts as forgotten: a very late retry is stored again.
   */
  private async dedupe<T extends { e: ProfileEvent }>(trx: Trx, workspaceId: string, items: T[], now: number): Promise<T[]> {
    const firstByKey = new Map<string, T>();
    const bySource = new Map<string, string[]>();
    for (const x of items) {
      const k = `${x.e.source}\u0000${x.e.messageId}`;
      if (firstByKey.has(k)) continue;
      firstByKey.set(k, x);
      const ids = bySource.get(x.e.source);
      if (ids) ids.push(x.e.messageId);
      else bySource.set(x.e.source, [x.e.messageId]);
    }
    const cutoff = now - this.opts.dedupeWindowMs;
    const seen = new Set<string>();
    const maxP = this.store.dialect.capabilities.maxParameters;
    for (const [source, ids] of bySource) {
      for (const chunk of chunkRows(ids, 1, Math.min(500, maxP - 3))) {
        const rows = await trx
          .selectFrom('events')
          .select('message_id')
          .where('workspace_id', '=', workspaceId)
          .where('source', '=', source)
          .where('message_id', 'in', chunk)
          .where('received_at', '>=', cutoff)
          .execute();
        for (const r of rows) seen.add(`${source}\u0000${r.message_id}`);
      }
    }
    if (seen.size === 0) return [...firstByKey.values()];
    const fresh: T[] = [];
    for (const [k, x] of firstByKey) if (!seen.has(k)) fresh.push(x);
    return fresh;
  }

  /** Stops taking new work and waits until everything queued is committed. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.kick();
      await this.running;
    }
  }
}
