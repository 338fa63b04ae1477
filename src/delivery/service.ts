import { createHmac } from 'node:crypto';
import type { ProfileRow } from '../profiles/index.js';
import type { Store, Trx } from '../store/index.js';
import { ChannelRegistry } from './channels/registry.js';
import { Dispatcher, type DispatcherDeps, type DispatcherOptions } from './dispatcher.js';
import { enqueueMessages, type ContentRenderer, type DeliveryWorkspace } from './enqueue.js';
import { deliveryPolicy } from './policy.js';
import type { GateOutcome, MessageRequest } from './types.js';
import { verifyChannels, type ChannelProblem } from './verify.js';

export type DeliveryServiceDeps = Omit<DispatcherDeps, 'registry'> & { registry?: ChannelRegistry };

/**
 * Delivery as the runtime wires it: the adapter registry, the dispatcher, and `enqueue`, which is
 * enqueueMessages with this process's options (the arbitration window, the dispatcher's view of
 * channels that are down). Callers inside a transaction (journeys) use `enqueue`; tests may call
 * enqueueMessages directly.
 */
export class DeliveryService {
  readonly registry: ChannelRegistry;
  readonly dispatcher: Dispatcher;

  constructor(
    private readonly deps: DeliveryServiceDeps,
    private readonly options: DispatcherOptions = {},
  ) {
    this.registry = deps.registry ?? new ChannelRegistry();
    this.dispatcher = new Dispatcher({ ...deps, registry: this.registry }, options);
  }

  get store(): Store {
    return this.deps.store;
  }

  /** enqueueMessages with the runtime's arbitration window and down channels. */
  enqueue(trx: Trx, ws: DeliveryWorkspace, customer: { id: string; row: ProfileRow }, requests: MessageRequest[], now: number, content?: ContentRenderer): Promise<GateOutcome[]> {
    return enqueueMessages(trx, this.deps.store, ws, customer, requests, now, content, {
      arbitrationWindowMs: this.dispatcher.options.arbitrationWindowMs,
      recheckMs: this.dispatcher.options.recheckMs,
      isDown: (channel) => this.dispatcher.isDown(ws.id, channel, deliveryPolicy(ws.blueprint, ws.model).channels.get(channel)),
    });
  }

  /**
   * Verifies the workspace's channels against the registered adapters (verifyChannels) and marks
   * each channel with a problem down — new requests pass it over with CHANNEL_UNAVAILABLE, as when
   * its provider keeps failing — until it verifies again or the blueprint changes it.
   */
  async verifyChannels(ws: DeliveryWorkspace): Promise<ChannelProblem[]> {
    const sign = this.deps.signer ? await this.deps.signer(ws.id) : (payload: string) => createHmac('sha256', this.deps.signingSecret ?? '').update(payload).digest('base64url');
    const problems = await verifyChannels(this.registry, ws.blueprint, { publicUrl: this.deps.publicUrl, sign, now: () => this.deps.clock.now(), ...(this.deps.env ? { env: this.deps.env } : {}) });
    const policy = deliveryPolicy(ws.blueprint, ws.model);
    const bad = new Set(problems.map((p) => p.channel));
    for (const p of problems) {
      const ch = policy.channels.get(p.channel);
      if (ch) this.dispatcher.markUnavailable(ws.id, ch, p.error.message);
    }
    for (const name of policy.channels.keys()) if (!bad.has(name)) this.dispatcher.markAvailable(ws.id, name);
    return problems;
  }

  start(): void {
    this.dispatcher.start();
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
    await this.registry.close();
  }
}
