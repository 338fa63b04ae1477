import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CairnError, type ErrorCode, type ErrorParams } from '../core/index.js';
import type { CommitRequest, CommitResult, Committer } from './commit.js';
import type { WriterInit, WriterReply, WriterRequest } from './writer-thread.js';

const THREAD_SCRIPT = new URL('./writer-thread.js', import.meta.url);

/**
 * Whether the writer thread can run here: it needs the compiled script (dist/). Running from the
 * TypeScript sources (vitest) there is none, and ingest stays inline.
 */
export function writerThreadAvailable(): boolean {
  return THREAD_SCRIPT.protocol === 'file:' && existsSync(fileURLToPath(THREAD_SCRIPT));
}

/**
 * Applies group commits in a worker thread with its own SQLite connection, so the request thread
 * keeps parsing and validating the next requests while SQLite writes the current group. Embedded
 * SQLite is single-threaded per connection; before this, parsing and SQL took turns on one core
 * (bench/README.md has the numbers).
 *
 * Semantics are those of the inline writer: one group at a time, in the order they were sent; a
 * group's promise resolves only after its transaction committed. Other writes of the process (API
 * consent, decisions, journeys) keep using the request thread's connection and queue behind the
 * writer on SQLite's write lock without blocking the event loop (see the SQLite dialect).
 */
export class ThreadCommitter implements Committer {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CommitResult) => void; reject: (e: unknown) => void }>();
  private exited: Error | null = null;

  /**
   * @param gate the request thread's write gate (`store.exclusive`): each group commits while
   *   holding it, so the process's other write transactions (journeys, decisions, consent) queue
   *   behind the group in memory rather than meeting SQLite's lock and backing off on a timer.
   */
  constructor(
    init: WriterInit,
    private readonly gate: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
  ) {
    this.worker = new Worker(THREAD_SCRIPT, { workerData: init, name: 'cairn-writer' });
    this.worker.on('message', (msg: WriterReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if ('result' in msg) p.resolve(msg.result);
      else if ('error' in msg) p.reject(revive(msg.error));
      else p.resolve({ outcomes: [], committed: [] });
    });
    const fail = (err: Error): void => {
      this.exited = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the ingest writer thread exited (code ${code})`)));
  }

  commit(take: readonly CommitRequest[], now: number): Promise<CommitResult> {
    return this.gate(() => this.send({ id: 0, take: take as CommitRequest[], now }));
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await this.send({ id: 0, close: true });
    await this.worker.terminate();
  }

  private send(msg: WriterRequest): Promise<CommitResult> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<CommitResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
}

function revive(e: Extract<WriterReply, { error: unknown }>['error']): Error {
  if (e.cairn && e.code) return new CairnError(e.code as ErrorCode, (e.params ?? {}) as ErrorParams);
  const err = new Error(e.message) as Error & { code?: string };
  if (e.code) err.code = e.code;
  if (e.stack) err.stack = e.stack;
  return err;
}
