import type { Logger } from 'pino';
import { CairnError, EventBus, type Clock } from '../core/index.js';
import type { Store } from '../store/index.js';
import type { WorkspaceRegistry } from '../governance/index.js';
import type { ProfileEvent } from '../profiles/index.js';
import { inlineCommitter, type CommittedUnit, type Committer, type ItemOutcome } from './commit.js';

export type { ItemOutcome } from './commit.js';

export interface IngestEvents {
  /** A group commit finished: these events are durable and applied to profiles. */
  'ingest:committed': { workspaceId: string; accepted: number; duplicates: number; unit: CommittedUnit };
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
  /** Who applies a group: inline (default) or the SQLite writer thread (see writer.ts). */
  committer?: Committer;
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
  private readonly committer: Committer;

  constructor(
    private readonly store: Store,
    private readonly workspaces: WorkspaceRegistry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: PipelineOptions,
  ) {
    this.committer = opts.committer ?? inlineCommitter(store, workspaces, opts.dedupeWindowMs);
  }

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
    const { outcomes, committed } = await this.committer.commit(
      take.map((p) => ({ workspaceId: p.workspaceId, events: p.events })),
      this.clock.now(),
    );
    for (const c of committed) this.events.emit('ingest:committed', c);
    return outcomes;
  }

  /** Stops taking new work and waits until everything queued is committed. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.kick();
      await this.running;
    }
    await this.committer.close();
  }
}
