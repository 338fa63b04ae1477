import { createHmac } from 'node:crypto';
import { EventBus, MINUTE, PeriodicRunner, SECOND, type Clock } from '../core/index.js';
import type { JourneyWebhooksTable, Store } from '../store/index.js';
import { callOutbound, signWebhook, type OutboundDeps, type SendResult } from '../delivery/index.js';
import { orderedId } from './unit.js';

/**
 * The journey webhook sender: calls what webhook steps recorded in `journey_webhooks`.
 *
 * - Claim: due rows — `pending` with next_at ≤ now, or `sending` whose lease ran out (a process
 *   died mid-call) — oldest first, in batches, in a short transaction (FOR UPDATE SKIP LOCKED where
 *   the dialect supports it; SQLite's single writer otherwise): status `sending`, attempts + 1,
 *   next_at = now + lease. Two senders, in one process or several, never claim a row twice while
 *   a call is in flight.
 * - Call: outside any transaction, through delivery's outbound machinery (`callOutbound`: the
 *   address guard, the circuit breaker per host, the deadline, the retry classification), signed
 *   with the workspace's journey webhook secret (`Cairn-Signature`, as the webhook channel signs),
 *   with the row's key as `Idempotency-Key`.
 * - Record, guarded by (status = sending, attempts = the claimed attempt): 2xx → `sent`; a
 *   retryable failure (408, 429, 5xx, network, open circuit) → `pending` again, due after
 *   Retry-After or the backoff; a final failure (other 4xx, 3xx, a refused address), or the last
 *   of `maxAttempts` → `failed` with the reason. The outcome is appended to the instance's
 *   history (`webhook_sent` / `webhook_failed`) in the same transaction.
 *
 * Delivery is at least once: a crash between the receiver's answer and the record calls again
 * after the lease, with the same Idempotency-Key, so a receiver that deduplicates on it sees one call.
 */

export interface JourneyWebhookEvents {
  'webhook:sent': { workspaceId: string; key: string; customerId: string; attempt: number; status: number | undefined };
  'webhook:retry': { workspaceId: string; key: string; customerId: string; attempt: number; nextAt: number; code: string; error: string };
  'webhook:failed': { workspaceId: string; key: string; customerId: string; attempt: number; code: string; error: string };
  'listener:error': { event: string; error: unknown };
}

export interface JourneyWebhookDeps {
  store: Store;
  clock: Clock;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** The outbound policy, breaker and clock shared by every provider call (rt.channels.outbound). */
  outbound: OutboundDeps;
  /** The secret a workspace's calls are signed with (see journeyWebhookSecret). */
  secret(workspaceId: string): Promise<string>;
}

export interface JourneyWebhookOptions {
  /** Poll period (ms) once started; 0: no timer (runOnce still works). Default 1 s. */
  intervalMs?: number;
  /** Rows claimed per transaction. Default 50. */
  batchSize?: number;
  /** Calls before a retryable failure becomes final (CAIRN_DELIVERY_MAX_ATTEMPTS). Default 5. */
  maxAttempts?: number;
  /** How long a claimed row is held before another sender may take it over (ms). Default 5 min. */
  leaseMs?: number;
  /** Deadline of one call (ms). Default 10 s. */
  timeoutMs?: number;
  /** Calls in flight at once. Default 8. */
  concurrency?: number;
}

const DEFAULTS = { intervalMs: SECOND, batchSize: 50, maxAttempts: 5, leaseMs: 5 * MINUTE, timeoutMs: 10 * SECOND, concurrency: 8 };

/**
 * The secret journey webhook calls of a workspace are signed with, derived one way from the
 * workspace's link key (CAIRN_LINK_SECRET, else the `link_secrets` row; see delivery/links.ts):
 * `whsec_` + base64url(HMAC-SHA256(link key, "cairn-journey-webhooks")). A receiver that knows it
 * cannot forge unsubscribe or tracked links; `cairn workspace webhook-secret` prints it.
 */
export function journeyWebhookSecret(linkKey: Buffer): string {
  return `whsec_${createHmac('sha256', linkKey).update('cairn-journey-webhooks').digest('base64url')}`;
}

type Row = JourneyWebhooksTable;

export class JourneyWebhookSender {
  readonly events = new EventBus<JourneyWebhookEvents>();
  readonly #deps: JourneyWebhookDeps;
  readonly #opts: typeof DEFAULTS;
  readonly #runner: PeriodicRunner<number>;

  constructor(deps: JourneyWebhookDeps, options: JourneyWebhookOptions = {}) {
    this.#deps = deps;
    this.#opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.#runner = new PeriodicRunner(() => this.#run(), { intervalMs: this.#opts.intervalMs, onError: (err) => this.#deps.log.error({ err }, 'journey webhook sender run failed') });
  }

  /** Starts polling; the first run is immediate. No-op with intervalMs 0. */
  start(): void {
    this.#runner.start();
  }

  /** Stops the timer and waits for a run in flight (it ends after its current batch). */
  close(): Promise<void> {
    return this.#runner.close();
  }

  /** Calls every due row, after any run in flight in this sender. Returns the number of calls made. */
  runOnce(): Promise<number> {
    return this.#runner.runOnce();
  }

  async #run(): Promise<number> {
    let n = 0;
    for (let i = 0; i < 10_000 && !this.#runner.closing; i++) {
      const k = await this.#batch();
      n += k;
      if (k < this.#opts.batchSize) break;
    }
    return n;
  }

  async #batch(): Promise<number> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const claimed = await store.transaction(async (trx) => {
      let q = trx.selectFrom('journey_webhooks').selectAll().where('status', 'in', ['pending', 'sending']).where('next_at', '<=', now).orderBy('next_at').orderBy('key').limit(this.#opts.batchSize);
      if (store.dialect.capabilities.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const rows = (await q.execute()) as Row[];
      for (const r of rows) {
        r.attempts = Number(r.attempts) + 1;
        r.status = 'sending';
        await trx.updateTable('journey_webhooks').set({ status: 'sending', attempts: r.attempts, next_at: now + this.#opts.leaseMs }).where('workspace_id', '=', r.workspace_id).where('key', '=', r.key).execute();
      }
      return rows;
    });
    const queue = [...claimed];
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r; r = queue.shift()) await this.#deliver(r);
    };
    await Promise.all(Array.from({ length: Math.min(this.#opts.concurrency, queue.length) }, worker));
    return claimed.length;
  }

  async #deliver(r: Row): Promise<void> {
    const { store, clock, log } = this.#deps;
    const attempt = Number(r.attempts);
    let result: SendResult;
    let status: number | undefined;
    try {
      const out = await this.#call(r, attempt);
      result = out.result;
      status = out.status;
    } catch (err) {
      // callOutbound answers every HTTP and policy failure as a value; a throw is infrastructure (the secret's row).
      log.error({ err, workspaceId: r.workspace_id, key: r.key }, 'journey webhook call threw');
      result = { ok: false, retryable: true, code: 'ERROR', error: err instanceof Error ? err.message : String(err) };
    }
    const now = clock.now();
    const base = { workspaceId: r.workspace_id, key: r.key, customerId: r.customer_id, attempt };
    const retry = !result.ok && result.retryable && attempt < this.#opts.maxAttempts;
    const error = result.ok ? null : `${result.code}: ${result.error}`;
    const nextAt = !result.ok && retry ? now + Math.max(0, result.retryAfterMs ?? 0) : null;
    const recorded = await store.transaction(async (trx) => {
      const set = result.ok
        ? { status: 'sent', sent_at: now, next_at: null, last_error: null, response_status: status ?? null }
        : retry
          ? { status: 'pending', next_at: nextAt, last_error: error, response_status: status ?? null }
          : { status: 'failed', next_at: null, last_error: error, response_status: status ?? null };
      const u = await trx.updateTable('journey_webhooks').set(set).where('workspace_id', '=', r.workspace_id).where('key', '=', r.key).where('status', '=', 'sending').where('attempts', '=', attempt).executeTakeFirst();
      // A late answer after the lease ran out and another sender claimed the row records nothing.
      if (Number(u.numUpdatedRows) === 0) return false;
      if (!retry && r.journey !== null) {
        const detail = result.ok ? { key: r.key, status, attempts: attempt } : { key: r.key, status, attempts: attempt, code: result.code, error: result.error };
        await trx
          .insertInto('journey_history')
          .values({ workspace_id: r.workspace_id, customer_id: r.customer_id, id: orderedId(now), instance_id: r.instance_id, journey: r.journey, step: r.step, kind: result.ok ? 'webhook_sent' : 'webhook_failed', detail: JSON.stringify(detail), at: now })
          .execute();
      }
      return true;
    });
    if (!recorded) return;
    if (result.ok) this.events.emit('webhook:sent', { ...base, status });
    else if (retry) this.events.emit('webhook:retry', { ...base, nextAt: nextAt as number, code: result.code, error: result.error });
    else {
      log.warn({ workspaceId: r.workspace_id, key: r.key, attempt, code: result.code }, 'journey webhook failed');
      this.events.emit('webhook:failed', { ...base, code: result.code, error: result.error });
    }
  }

  async #call(r: Row, attempt: number): Promise<{ result: SendResult; status: number | undefined }> {
    const secret = await this.#deps.secret(r.workspace_id);
    const now = this.#deps.clock.now();
    const extra = JSON.parse(r.headers) as Record<string, string>;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // The step's headers, then Cairn's own: a blueprint cannot replace the signature or the key.
    for (const [k, v] of Object.entries(extra)) headers[k.toLowerCase()] = v;
    headers['cairn-signature'] = signWebhook(secret, r.body, now);
    headers['idempotency-key'] = r.key;
    headers['cairn-attempt'] = String(attempt);
    const method = r.method === 'PUT' || r.method === 'PATCH' ? r.method : 'POST';
    const { result, response } = await callOutbound(r.url, { method, headers, body: r.body, timeoutMs: this.#opts.timeoutMs }, attempt, this.#deps.outbound);
    return { result, status: response?.status };
  }
}
