import { createHmac } from 'node:crypto';
import { EventBus, HOUR, isCairnError, MINUTE, PeriodicRunner, SECOND, type Clock } from '../core/index.js';
import type { ChannelType, MessageClass } from '../blueprint/index.js';
import { loadProfiles, profileLockKey } from '../profiles/index.js';
import type { MessagesTable, Store } from '../store/index.js';
import type { ChannelRegistry } from './channels/registry.js';
import { resolveSettings } from './channels/settings.js';
import type { DeliveryWorkspace } from './enqueue.js';
import { evaluateGate } from './gate.js';
import { addressOf, loadCustomerState, loadLedgerView } from './ledger.js';
import { deliveryPolicy } from './policy.js';
import type { AdapterContext, Address, GateOutcome, MessageRequest, OutboundMessage, SendResult } from './types.js';

/**
 * The dispatcher: delivers the outbox (ledger rows with status `queued` whose due_at has come) and
 * re-gates deferred messages when they fall due.
 *
 * - Re-gate: due `deferred` rows are gated again (consent, suppressions, quiet hours and caps may
 *   have changed) in one transaction per workspace under the profile lock that ingest and
 *   enqueueMessages take; the deferred rows of one customer compete with each other like requests
 *   passed together. A deferral past the rule's max_deferral (counted from the request) becomes
 *   DEFERRAL_EXPIRED.
 * - Claim: due `queued` rows (and `sending` rows whose lease ran out: a process died mid-send) are
 *   claimed in a short transaction — FOR UPDATE SKIP LOCKED where the dialect supports it, the
 *   single writer on SQLite — set to `sending` with due_at = now + lease and attempts + 1.
 * - Send: outside any transaction, through the adapter of the channel's provider. A customer's
 *   messages go one after another in due order; different customers in parallel.
 * - Record: sent (sent_at, provider id); a retryable failure goes back to `queued` with due_at =
 *   now + backoff (the provider's retryAfterMs when given, else backoff·2^(attempt−1) up to
 *   maxBackoff); a permanent failure, or the last attempt, is `failed` with PROVIDER_REJECTED. The
 *   update is guarded by (status = sending, attempts = the claimed attempt), so a late answer
 *   after a lease expired cannot overwrite a newer attempt.
 *
 * Delivery is at least once towards the provider (a crash between the provider's answer and the
 * record sends again after the lease); the outbox id is passed as the message id, so providers
 * that deduplicate on it make it exactly once.
 */

export interface DeliveryEventMap {
  'message:sent': { workspaceId: string; messageId: string; key: string; customerId: string; channel: string; attempt: number; providerMessageId: string | undefined };
  'message:retry': { workspaceId: string; messageId: string; key: string; customerId: string; channel: string; attempt: number; dueAt: number; code: string; error: string };
  'message:failed': { workspaceId: string; messageId: string; key: string; customerId: string; channel: string; attempt: number; code: string; error: string };
  'message:regated': { workspaceId: string; messageId: string; key: string; customerId: string; outcome: GateOutcome };
  'listener:error': { event: string; error: unknown };
}

export interface DispatcherLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DispatcherDeps {
  store: Store;
  clock: Clock;
  log: DispatcherLogger;
  registry: ChannelRegistry;
  /** The workspace's current blueprint and model; throws when the workspace is gone. */
  workspace(id: string): Promise<DeliveryWorkspace>;
  /** Public base URL for adapters (links, callbacks). */
  publicUrl: string;
  /** The HMAC signer of a workspace's links; default: HMAC-SHA256 with `signingSecret`. */
  signer?(workspaceId: string): Promise<(payload: string) => string>;
  signingSecret?: string;
  /** Where `${env:NAME}` settings are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface DispatcherOptions {
  /** Poll period (ms) once started; 0 disables the timer (runOnce still works). Default 1s. */
  intervalMs?: number;
  /** Rows claimed per transaction. Default 100. */
  batchSize?: number;
  /** Attempts before a retryable failure becomes final. Default 5. */
  maxAttempts?: number;
  /** First retry delay (ms), doubled per attempt. Default 30s. */
  backoffMs?: number;
  /** Longest retry delay (ms). Default 1h. */
  maxBackoffMs?: number;
  /** How long a claimed row is held before another worker may take it over (ms). Default 5 min. */
  leaseMs?: number;
  /** Passed to re-gates: see EnqueueOptions. Default 0. */
  arbitrationWindowMs?: number;
  /** Re-check period for deferrals without a known end. Default 1h. */
  recheckMs?: number;
  /** Customers sent to in parallel. Default 8. */
  concurrency?: number;
  /** Retryable failures in a row after which a channel counts as down for new requests. Default 5. */
  downAfter?: number;
}

const DEFAULTS = { intervalMs: SECOND, batchSize: 100, maxAttempts: 5, backoffMs: 30 * SECOND, maxBackoffMs: HOUR, leaseMs: 5 * MINUTE, arbitrationWindowMs: 0, recheckMs: HOUR, concurrency: 8, downAfter: 5 };

type Row = MessagesTable;

function fingerprint(channel: { provider: string; settings: unknown }): string {
  return JSON.stringify([channel.provider, channel.settings]);
}

function requestOf(r: Row): MessageRequest {
  return {
    key: r.key,
    workspaceId: r.workspace_id,
    customerId: r.customer_id,
    channels: JSON.parse(r.channels) as string[],
    messageClass: r.message_class as MessageClass,
    ...(r.category !== null ? { category: r.category } : {}),
    priority: Number(r.priority),
    ...(r.offer !== null ? { offer: r.offer } : {}),
    ...(r.journey !== null ? { journey: { name: r.journey, instanceId: r.journey_instance ?? '', step: r.journey_step ?? '' } } : {}),
    ...(r.items !== null ? { items: JSON.parse(r.items) as string[] } : {}),
    requestedAt: Number(r.requested_at),
  };
}

export class Dispatcher {
  readonly events = new EventBus<DeliveryEventMap>();
  readonly #deps: DispatcherDeps;
  readonly #opts: typeof DEFAULTS;
  readonly #runner: PeriodicRunner<number>;
  /** `workspace\0channel` → retryable failures in a row. */
  readonly #failuresInARow = new Map<string, number>();
  /** `workspace\0channel` → a channel whose adapter is missing or whose settings did not verify. */
  readonly #unavailable = new Map<string, { fingerprint: string; reason: string }>();

  constructor(deps: DispatcherDeps, options: DispatcherOptions = {}) {
    this.#deps = deps;
    this.#opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.#runner = new PeriodicRunner(() => this.#run(), { intervalMs: this.#opts.intervalMs, onError: (err) => this.#deps.log.error({ err }, 'dispatcher run failed') });
  }

  get options(): Readonly<typeof DEFAULTS> {
    return this.#opts;
  }

  /**
   * Whether a channel's provider is down: it failed `downAfter` times in a row (cleared by the next
   * success), or it was marked unavailable (its adapter is missing or its settings did not verify)
   * and `current` — the channel as the blueprint has it now — still has that provider and settings.
   */
  isDown(workspaceId: string, channel: string, current?: { provider: string; settings: unknown }): boolean {
    const key = `${workspaceId}\u0000${channel}`;
    if ((this.#failuresInARow.get(key) ?? 0) >= this.#opts.downAfter) return true;
    const mark = this.#unavailable.get(key);
    if (mark === undefined) return false;
    if (current !== undefined && fingerprint(current) !== mark.fingerprint) {
      // The blueprint changed the channel since it was checked: no longer known to be broken.
      this.#unavailable.delete(key);
      return false;
    }
    return true;
  }

  /** Marks a channel down until it verifies again or the blueprint changes its provider or settings (see verifyChannels). */
  markUnavailable(workspaceId: string, channel: { name: string; provider: string; settings: unknown }, reason: string): void {
    this.#unavailable.set(`${workspaceId}\u0000${channel.name}`, { fingerprint: fingerprint(channel), reason });
  }

  markAvailable(workspaceId: string, channel: string): void {
    this.#unavailable.delete(`${workspaceId}\u0000${channel}`);
  }

  /** Why a channel is marked unavailable, if it is. */
  unavailableReason(workspaceId: string, channel: string): string | undefined {
    return this.#unavailable.get(`${workspaceId}\u0000${channel}`)?.reason;
  }

  /** Starts polling; the first run is immediate (messages that fell due while stopped go at once). No-op with intervalMs 0. */
  start(): void {
    this.#runner.start();
  }

  /** Stops the timer and waits for a run in flight (it ends after its current batch). */
  close(): Promise<void> {
    return this.#runner.close();
  }

  /**
   * Re-gates every due deferred message, then delivers every due queued one, after any run in
   * flight. Returns the number of rows acted on (re-gated plus send attempts).
   */
  runOnce(): Promise<number> {
    return this.#runner.runOnce();
  }

  async #run(): Promise<number> {
    let n = 0;
    const now = this.#deps.clock.now();
    const due = await this.#deps.store.db.selectFrom('messages').select('workspace_id').distinct().where('due_at', '<=', now).where('status', '=', 'deferred').execute();
    for (const { workspace_id: wsId } of due) {
      let ws: DeliveryWorkspace;
      try {
        ws = await this.#deps.workspace(wsId);
      } catch (err) {
        await this.#workspaceUnavailable(wsId, err);
        continue;
      }
      for (let i = 0; i < 10_000 && !this.#runner.closing; i++) {
        const k = await this.#regateBatch(ws);
        n += k;
        if (k < this.#opts.batchSize) break;
      }
    }
    for (let i = 0; i < 10_000 && !this.#runner.closing; i++) {
      const k = await this.#deliverBatch();
      n += k;
      if (k < this.#opts.batchSize) break;
    }
    return n;
  }

  /**
   * A workspace whose blueprint cannot be read: when it is gone its deferred rows can never be gated
   * again and are closed; any other failure (a database hiccup) leaves them for the next run.
   */
  async #workspaceUnavailable(wsId: string, err: unknown): Promise<void> {
    if (isCairnError(err) && err.code === 'CAIRN_ERR_WORKSPACE_NOT_FOUND') {
      this.#deps.log.warn({ workspaceId: wsId }, 'deferred messages of a deleted workspace closed');
      await this.#deps.store.db.updateTable('messages').set({ status: 'not_sent', reason: 'DEFERRAL_EXPIRED', detail: 'the workspace no longer exists', due_at: null, decided_at: this.#deps.clock.now() }).where('workspace_id', '=', wsId).where('status', '=', 'deferred').execute();
    } else this.#deps.log.error({ err, workspaceId: wsId }, 'deferred messages not re-gated: the workspace could not be loaded');
  }

  /** One batch of a workspace's due deferred rows, under its profile lock. */
  async #regateBatch(ws: DeliveryWorkspace): Promise<number> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const wsId = ws.id;
    const policy = deliveryPolicy(ws.blueprint, ws.model);
    return store.transaction(async (trx) => {
      let q = trx.selectFrom('messages').selectAll().where('workspace_id', '=', wsId).where('status', '=', 'deferred').where('due_at', '<=', now).orderBy('due_at').orderBy('id').limit(this.#opts.batchSize);
      if (store.dialect.capabilities.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const rows = (await q.execute()) as Row[];
      if (rows.length === 0) return 0;
      const byCustomer = new Map<string, Row[]>();
      for (const r of rows) {
        const list = byCustomer.get(r.customer_id) ?? [];
        list.push(r);
        byCustomer.set(r.customer_id, list);
      }
      const profiles = new Map((await loadProfiles(trx, store, wsId, [...byCustomer.keys()])).map((p) => [p.id, p]));
      for (const [customerId, list] of byCustomer) {
        const row = profiles.get(customerId);
        if (!row || row.mergedInto !== null) {
          // Merged or gone: the survivor's own journeys and decisions speak for it now.
          for (const r of list) await trx.updateTable('messages').set({ status: 'not_sent', reason: 'UNREACHABLE', rule: null, detail: row ? `the profile was merged into ${row.mergedInto}` : 'the profile no longer exists', due_at: null, decided_at: now }).where('workspace_id', '=', wsId).where('id', '=', r.id).execute();
          continue;
        }
        const requests = list.map(requestOf);
        const state = await loadCustomerState(trx, wsId, ws.model, policy, row, requests, now);
        const ledger = await loadLedgerView(trx, wsId, customerId, policy, now);
        const { outcomes, displaced } = evaluateGate(policy, state, ledger, requests, now, { isDown: (ch) => this.isDown(wsId, ch, policy.channels.get(ch)), recheckMs: this.#opts.recheckMs });
        for (let i = 0; i < list.length; i++) {
          const r = list[i] as Row;
          let o = outcomes[i] as GateOutcome;
          if (o.outcome === 'send') {
            const content = r.content === null ? undefined : (JSON.parse(r.content) as Record<string, unknown>)[o.channel];
            if (content === undefined) o = { outcome: 'drop', reason: 'RENDER_FAILED', rule: o.channel, detail: `no content was rendered for ${o.channel} when the message was requested` };
            else {
              await trx
                .updateTable('messages')
                .set({ status: 'queued', reason: null, rule: null, detail: o.detail ?? '', channel: o.channel, channel_type: o.channelType, content: JSON.stringify({ [o.channel]: content }), address: JSON.stringify(addressOf(row, o.channelType)), decided_at: now, due_at: now + this.#opts.arbitrationWindowMs })
                .where('workspace_id', '=', wsId)
                .where('id', '=', r.id)
                .execute();
            }
          }
          if (o.outcome === 'defer') {
            await trx.updateTable('messages').set({ status: 'deferred', reason: o.reason, rule: o.rule ?? null, detail: o.detail, decided_at: now, due_at: o.until }).where('workspace_id', '=', wsId).where('id', '=', r.id).execute();
          } else if (o.outcome === 'drop') {
            await trx.updateTable('messages').set({ status: 'not_sent', reason: o.reason, rule: o.rule ?? null, detail: o.detail, decided_at: now, due_at: null, content: null }).where('workspace_id', '=', wsId).where('id', '=', r.id).execute();
          }
          this.events.emit('message:regated', { workspaceId: wsId, messageId: r.id, key: r.key, customerId, outcome: o });
        }
        for (const d of displaced) {
          await trx.updateTable('messages').set({ status: 'not_sent', reason: d.reason, rule: d.rule, detail: d.detail, decided_at: now, due_at: null }).where('workspace_id', '=', wsId).where('key', '=', d.key).where('status', '=', 'queued').execute();
        }
      }
      return rows.length;
    }, [profileLockKey(wsId)]);
  }

  /** Claims one batch of due queued rows, sends them, records the results. */
  async #deliverBatch(): Promise<number> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const claimed = await store.transaction(async (trx) => {
      let q = trx.selectFrom('messages').selectAll().where('due_at', '<=', now).where('status', 'in', ['queued', 'sending']).orderBy('due_at').orderBy('id').limit(this.#opts.batchSize);
      if (store.dialect.capabilities.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const rows = (await q.execute()) as Row[];
      for (const r of rows) {
        r.attempts = Number(r.attempts) + 1;
        r.status = 'sending';
        await trx.updateTable('messages').set({ status: 'sending', attempts: r.attempts, due_at: now + this.#opts.leaseMs }).where('workspace_id', '=', r.workspace_id).where('id', '=', r.id).execute();
      }
      return rows;
    });
    if (claimed.length === 0) return 0;
    const groups = new Map<string, Row[]>();
    for (const r of claimed) {
      const k = `${r.workspace_id}\u0000${r.customer_id}`;
      const list = groups.get(k) ?? [];
      list.push(r);
      groups.set(k, list);
    }
    const queue = [...groups.values()];
    const worker = async (): Promise<void> => {
      for (let list = queue.shift(); list; list = queue.shift()) for (const r of list) await this.#deliver(r);
    };
    await Promise.all(Array.from({ length: Math.min(this.#opts.concurrency, queue.length) }, worker));
    return claimed.length;
  }

  async #deliver(r: Row): Promise<void> {
    const { store, clock, log } = this.#deps;
    const attempt = Number(r.attempts);
    const channel = r.channel as string;
    let result: SendResult;
    try {
      result = await this.#send(r, attempt);
    } catch (err) {
      // Adapters answer provider errors as values; a throw is a bug or an infrastructure fault.
      log.error({ err, workspaceId: r.workspace_id, messageId: r.id, channel }, 'channel adapter threw');
      result = { ok: false, retryable: true, code: 'ADAPTER_ERROR', error: err instanceof Error ? err.message : String(err) };
    }
    const now = clock.now();
    const guard = store.db.updateTable('messages').where('workspace_id', '=', r.workspace_id).where('id', '=', r.id).where('status', '=', 'sending').where('attempts', '=', attempt);
    const base = { workspaceId: r.workspace_id, messageId: r.id, key: r.key, customerId: r.customer_id, channel, attempt };
    const downKey = `${r.workspace_id}\u0000${channel}`;
    // The guarded update matches nothing when this answer came after the lease ran out and another
    // attempt took the row over: that attempt records (and announces) the outcome, not this one.
    const applied = async (q: Promise<{ numUpdatedRows: bigint }>): Promise<boolean> => (await q).numUpdatedRows > 0n;
    if (result.ok) {
      this.#failuresInARow.delete(downKey);
      if (await applied(guard.set({ status: 'sent', sent_at: now, due_at: null, provider_message_id: result.providerMessageId ?? null, last_error: null }).executeTakeFirst())) {
        this.events.emit('message:sent', { ...base, providerMessageId: result.providerMessageId });
      }
      return;
    }
    const error = `${result.code}: ${result.error}`;
    if (result.retryable) this.#failuresInARow.set(downKey, (this.#failuresInARow.get(downKey) ?? 0) + 1);
    if (result.retryable && attempt < this.#opts.maxAttempts) {
      const delay = result.retryAfterMs !== undefined && result.retryAfterMs >= 0 ? result.retryAfterMs : Math.min(this.#opts.maxBackoffMs, this.#opts.backoffMs * 2 ** (attempt - 1));
      const dueAt = now + delay;
      if (await applied(guard.set({ status: 'queued', due_at: dueAt, last_error: error }).executeTakeFirst())) this.events.emit('message:retry', { ...base, dueAt, code: result.code, error: result.error });
      return;
    }
    const why = result.retryable ? `gave up after ${attempt} attempts; last: ${error}` : `rejected on attempt ${attempt}: ${error}`;
    if (!(await applied(guard.set({ status: 'failed', reason: result.code === 'CHANNEL_UNAVAILABLE' ? 'CHANNEL_UNAVAILABLE' : 'PROVIDER_REJECTED', detail: why, due_at: null, last_error: error }).executeTakeFirst()))) return;
    log.warn({ workspaceId: r.workspace_id, messageId: r.id, channel, attempt, code: result.code }, 'message failed');
    this.events.emit('message:failed', { ...base, code: result.code, error: result.error });
  }

  async #send(r: Row, attempt: number): Promise<SendResult> {
    const ws = await this.#deps.workspace(r.workspace_id);
    const policy = deliveryPolicy(ws.blueprint, ws.model);
    const ch = policy.channels.get(r.channel as string);
    if (!ch) return { ok: false, retryable: false, code: 'CHANNEL_UNAVAILABLE', error: `channel ${String(r.channel)} is no longer declared in the blueprint` };
    const adapter = this.#deps.registry.get(ch.provider);
    if (!adapter) return { ok: false, retryable: false, code: 'CHANNEL_UNAVAILABLE', error: `no adapter is registered for provider ${ch.provider} (channel ${ch.name})` };
    const env = this.#deps.env ?? process.env;
    const ctx: AdapterContext = {
      settings: resolveSettings(ch.settings, env),
      publicUrl: this.#deps.publicUrl,
      sign: await this.#signer(r.workspace_id),
      now: () => this.#deps.clock.now(),
    };
    const content = r.content === null ? {} : ((JSON.parse(r.content) as Record<string, Record<string, unknown>>)[ch.name] ?? {});
    const message: OutboundMessage = {
      id: r.id,
      key: r.key,
      workspaceId: r.workspace_id,
      customerId: r.customer_id,
      channel: ch.name,
      channelType: (r.channel_type ?? ch.type) as ChannelType,
      messageClass: r.message_class as MessageClass,
      ...(r.category !== null ? { category: r.category } : {}),
      to: r.address === null ? {} : (JSON.parse(r.address) as Address),
      content,
      attempt,
    };
    return adapter.send(message, ctx);
  }

  async #signer(workspaceId: string): Promise<(payload: string) => string> {
    if (this.#deps.signer) return this.#deps.signer(workspaceId);
    const secret = this.#deps.signingSecret ?? '';
    return (payload) => createHmac('sha256', secret).update(payload).digest('base64url');
  }
}
