/**
 * The SQLite writer thread (see writer.ts). It owns its own connection to the database file and a
 * workspace registry, and runs `commitGroup` for each group the request thread sends, one at a
 * time, in arrival order. Messages: `{ id, take, now }` in; `{ id, result }` or `{ id, error }` out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isCairnError, type Clock } from '../core/index.js';
import { openStore } from '../store/index.js';
import { WorkspaceRegistry } from '../governance/index.js';
import { commitGroup, type CommitRequest } from './commit.js';

export interface WriterInit {
  databaseUrl: string;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  dedupeWindowMs: number;
}

export type WriterRequest = { id: number; take: CommitRequest[]; now: number } | { id: number; close: true };

export type WriterReply =
  | { id: number; result: Awaited<ReturnType<typeof commitGroup>> }
  | { id: number; error: { cairn: boolean; code?: string; params?: Record<string, unknown>; message: string; stack?: string } }
  | { id: number; closed: true };

if (parentPort) {
  const port = parentPort;
  const init = workerData as WriterInit;
  const store = openStore(init.databaseUrl, { sqliteSynchronous: init.sqliteSynchronous });
  // The registry's cache ages by the time of the group being applied (the request thread's clock).
  let now = Date.now();
  const clock: Clock = { now: () => now } as Clock;
  const workspaces = new WorkspaceRegistry(store.db, clock);
  let chain: Promise<void> = Promise.resolve();

  port.on('message', (msg: WriterRequest) => {
    chain = chain.then(async () => {
      if ('close' in msg) {
        await store.destroy();
        port.postMessage({ id: msg.id, closed: true } satisfies WriterReply);
        return;
      }
      now = msg.now;
      try {
        const result = await commitGroup(store, workspaces, msg.take, msg.now, init.dedupeWindowMs);
        port.postMessage({ id: msg.id, result } satisfies WriterReply);
      } catch (err) {
        const e = err as Error & { code?: string };
        port.postMessage({
          id: msg.id,
          error: isCairnError(err) ? { cairn: true, code: err.code, params: err.params, message: err.message } : { cairn: false, code: typeof e.code === 'string' ? e.code : undefined, message: String(e?.message ?? err), stack: e?.stack },
        } satisfies WriterReply);
      }
    });
  });
}
