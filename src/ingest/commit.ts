import { inChunks, type Store, type Trx } from '../store/index.js';
import type { WorkspaceRegistry } from '../governance/index.js';
import { applyProfileEvents, profileLockKey, type CommittedUnit, type ProfileEvent } from '../profiles/index.js';

export type { CommittedUnit } from '../profiles/index.js';

export type ItemOutcome = 'accepted' | 'duplicate';

/** The events of one request, as the group commit takes them. */
export interface CommitRequest {
  workspaceId: string;
  events: ProfileEvent[];
}

export interface CommittedWorkspace {
  workspaceId: string;
  accepted: number;
  duplicates: number;
  unit: CommittedUnit;
}

export interface CommitResult {
  /** One outcome per event, per request, in order. */
  outcomes: ItemOutcome[][];
  committed: CommittedWorkspace[];
}

/** Applies a group of requests in one transaction; the writer (inline or thread) runs this. */
export interface Committer {
  commit(take: readonly CommitRequest[], now: number): Promise<CommitResult>;
  close(): Promise<void>;
}

/**
 * The group commit itself: dedupe, identities, profiles, timeline, consent, segments and stages of
 * every request in `take`, in one transaction holding each workspace's profile lock. Pure in the
 * sense that everything it touches comes from its arguments, so it runs the same in the request
 * thread and in the writer thread.
 */
export async function commitGroup(store: Store, workspaces: WorkspaceRegistry, take: readonly CommitRequest[], now: number, dedupeWindowMs: number): Promise<CommitResult> {
  const byWorkspace = new Map<string, { p: number; i: number; e: ProfileEvent }[]>();
  take.forEach((p, pi) =>
    p.events.forEach((e, i) => {
      const list = byWorkspace.get(p.workspaceId);
      if (list) list.push({ p: pi, i, e });
      else byWorkspace.set(p.workspaceId, [{ p: pi, i, e }]);
    }),
  );
  const outcomes: ItemOutcome[][] = take.map((p) => new Array<ItemOutcome>(p.events.length).fill('duplicate'));
  const models = new Map<string, Awaited<ReturnType<WorkspaceRegistry['get']>>['model']>();
  for (const ws of byWorkspace.keys()) models.set(ws, (await workspaces.get(ws)).model);
  const committed: CommittedWorkspace[] = [];

  await store.transaction(async (trx) => {
    for (const [ws, items] of byWorkspace) {
      const fresh = await dedupe(trx, store, ws, items, now, dedupeWindowMs);
      for (const x of fresh) (outcomes[x.p] as ItemOutcome[])[x.i] = 'accepted';
      const unit = await applyProfileEvents(trx, store, ws, models.get(ws) as Parameters<typeof applyProfileEvents>[3], fresh.map((x) => x.e), now);
      committed.push({ workspaceId: ws, accepted: fresh.length, duplicates: items.length - fresh.length, unit: unit.summary() });
    }
  }, [...byWorkspace.keys()].map(profileLockKey));
  return { outcomes, committed };
}

/**
 * Keeps the first event of each (source, messageId) that no event received within the window
 * already carries. The lookup runs on the events_message index inside the writing transaction,
 * and writers of a workspace are serialized (SQLite's single writer, the workspace advisory lock
 * on PostgreSQL), so nothing can slip in between the check and the insert. An event received
 * before the window counts as forgotten: a very late retry is stored again.
 */
async function dedupe<T extends { e: ProfileEvent }>(trx: Trx, store: Store, workspaceId: string, items: T[], now: number, windowMs: number): Promise<T[]> {
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
  const cutoff = now - windowMs;
  const seen = new Set<string>();
  const maxP = store.dialect.capabilities.maxParameters;
  for (const [source, ids] of bySource) {
    for (const chunk of inChunks(ids, Math.min(500, maxP - 3))) {
      // The window is applied here, not in SQL: with `received_at >= ?` in the query, SQLite's
      // planner took the arrival index (events_received) and read every event of the window.
      const rows = await trx.selectFrom('events').select(['message_id', 'received_at']).where('workspace_id', '=', workspaceId).where('source', '=', source).where('message_id', 'in', chunk).execute();
      for (const r of rows) if (Number(r.received_at) >= cutoff) seen.add(`${source}\u0000${r.message_id}`);
    }
  }
  if (seen.size === 0) return [...firstByKey.values()];
  const fresh: T[] = [];
  for (const [k, x] of firstByKey) if (!seen.has(k)) fresh.push(x);
  return fresh;
}

/** The writer in the request thread: the default for PostgreSQL and in-memory SQLite. */
export function inlineCommitter(store: Store, workspaces: WorkspaceRegistry, dedupeWindowMs: number): Committer {
  return {
    commit: (take, now) => commitGroup(store, workspaces, take, now, dedupeWindowMs),
    close: async () => undefined,
  };
}
