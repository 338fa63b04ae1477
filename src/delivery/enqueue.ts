import { CairnError, uuidv7 } from '../core/index.js';
import type { Blueprint, ChannelType, WorkspaceModel } from '../blueprint/index.js';
import { traitValues, type ProfileRow } from '../profiles/index.js';
import type { Insertable } from 'kysely';
import type { MessagesTable, Store, Trx } from '../store/index.js';
import { channelContentKey, contentVars, offerBlock, type ContentInput } from '../decisioning/index.js';
import { evaluateGate, type GateOptions } from './gate.js';
import { addressOf, loadCustomerState, loadLedgerView, storedOutcome } from './ledger.js';
import { deliveryPolicy } from './policy.js';
import type { GateOutcome, MessageRequest } from './types.js';

/** Renders a request's content for the channel the gate chose (subject, body, cta …). */
export type ContentRenderer = (req: MessageRequest, channel: string) => Record<string, unknown>;

export interface EnqueueOptions extends GateOptions {
  /**
   * How long a message that passed the gate is held before dispatch (ms), so that a higher-priority
   * request for the same customer arriving meanwhile can still take its slot under a cap. 0: only
   * requests passed in the same call compete. The runtime passes CAIRN_ARBITRATION_WINDOW.
   */
  arbitrationWindowMs?: number;
}

export interface DeliveryWorkspace {
  id: string;
  model: WorkspaceModel;
  blueprint: Blueprint;
}

/**
 * The default renderer: the offer's content block for the channel name (else for the channel
 * type), rendered the way decide renders (contentVars: traits, computed values, segments — so
 * variants by segment apply — and stage, from `input`, the gate's view of the customer; without
 * it, the profile's traits alone). A request without an offer gets empty content, so callers that
 * send inline messages pass their own renderer.
 */
export function offerContent(ws: DeliveryWorkspace, row: ProfileRow, now: number, input?: ContentInput): ContentRenderer {
  const customer: ContentInput = input ?? { traits: traitValues(row.traits), computed: {}, segments: new Set(), stage: null, context: {} };
  return (req, channel) => {
    if (req.offer === undefined) return {};
    const offer = ws.model.offers.find((o) => o.name === req.offer);
    if (!offer) return {};
    const key = channelContentKey(ws.model, offer, channel);
    const block = key === undefined ? undefined : offerBlock(offer, key);
    if (block === undefined) return {};
    return block.render(contentVars(ws.model, row.id, customer, now, offer), customer.segments);
  };
}

let lastId = '';

/**
 * A uuidv7 greater than every id this process minted before: the message log pages by id, so two
 * messages requested in the same millisecond (a virtual clock, a batch) keep their request order.
 */
export function nextMessageId(now: number): string {
  let id = uuidv7(now);
  if (id <= lastId) {
    const hex = (BigInt(`0x${lastId.replace(/-/g, '')}`) + 1n).toString(16).padStart(32, '0');
    id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  lastId = id;
  return id;
}

function checkRequests(ws: DeliveryWorkspace, customerId: string, requests: readonly MessageRequest[]): void {
  requests.forEach((r, i) => {
    const where = `requests[${i}] (${r.key})`;
    if (r.workspaceId !== ws.id) throw new CairnError('CAIRN_ERR_DELIVERY_REQUEST', { where, reason: `workspaceId is ${r.workspaceId}, expected ${ws.id}` });
    if (r.customerId !== customerId) throw new CairnError('CAIRN_ERR_DELIVERY_REQUEST', { where, reason: `customerId is ${r.customerId}, expected ${customerId}: one call gates one customer` });
    if (r.key === '' || r.key.length > 500) throw new CairnError('CAIRN_ERR_DELIVERY_REQUEST', { where, reason: 'the key must be 1 to 500 characters' });
    if (!Number.isFinite(r.priority) || !Number.isFinite(r.requestedAt)) throw new CairnError('CAIRN_ERR_DELIVERY_REQUEST', { where, reason: 'priority and requestedAt must be finite numbers' });
  });
}

/**
 * Runs the gate for requests of ONE customer inside the caller's transaction (the caller holds the
 * profile lock, profileLockKey(workspace), so caps and arbitration see every earlier decision), and
 * writes one ledger row per request. The unique (workspace_id, key) index makes the call
 * idempotent: a key seen before returns its stored outcome and writes nothing. A `send` writes the
 * row as `queued` with the rendered content and the address; the dispatcher delivers it after
 * commit (after the arbitration window). A `defer` stores the content rendered for every requested
 * channel, to be re-gated when due. Requests passed together compete: arbitration by priority
 * before caps.
 *
 * @example
 *   const [o] = await store.transaction((trx) => enqueueMessages(trx, store, ws, { id, row }, [req], now, render), [profileLockKey(ws.id)]);
 *   if (o.outcome === 'drop') log.info(o.reason); // e.g. CAP_REACHED
 */
export async function enqueueMessages(
  trx: Trx,
  store: Store,
  ws: DeliveryWorkspace,
  customer: { id: string; row: ProfileRow },
  requests: MessageRequest[],
  now: number,
  content?: ContentRenderer,
  options: EnqueueOptions = {},
): Promise<GateOutcome[]> {
  void store; // part of the contract: callers pass their store; the gate needs no dialect-specific path today
  if (requests.length === 0) return [];
  checkRequests(ws, customer.id, requests);
  const out: (GateOutcome | undefined)[] = new Array(requests.length).fill(undefined);

  // Idempotency: keys already in the ledger return their stored outcome; a key repeated within the
  // call is gated once.
  const keys = [...new Set(requests.map((r) => r.key))];
  const existing = new Map<string, GateOutcome>();
  for (let i = 0; i < keys.length; i += 500) {
    const rows = await trx.selectFrom('messages').select(['id', 'key', 'status', 'reason', 'rule', 'detail', 'channel', 'channel_type', 'due_at']).where('workspace_id', '=', ws.id).where('key', 'in', keys.slice(i, i + 500)).execute();
    for (const r of rows) existing.set(r.key, storedOutcome(r));
  }
  const fresh: MessageRequest[] = [];
  const freshIndex: number[] = [];
  const firstOf = new Map<string, number>();
  requests.forEach((r, i) => {
    const stored = existing.get(r.key);
    if (stored) out[i] = stored;
    else if (!firstOf.has(r.key)) {
      firstOf.set(r.key, i);
      fresh.push(r);
      freshIndex.push(i);
    }
  });

  if (fresh.length > 0) {
    const policy = deliveryPolicy(ws.blueprint, ws.model);
    const state = await loadCustomerState(trx, ws.id, ws.model, policy, customer.row, fresh, now);
    const ledger = await loadLedgerView(trx, ws.id, customer.id, policy, now);
    const { outcomes, displaced } = evaluateGate(policy, state, ledger, fresh, now, options);
    const render = content ?? offerContent(ws, customer.row, now, state.input);
    const window = Math.max(0, options.arbitrationWindowMs ?? 0);
    const rows: Insertable<MessagesTable>[] = [];
    fresh.forEach((req, j) => {
      let o = outcomes[j] as GateOutcome;
      const id = nextMessageId(now);
      let body: Record<string, unknown> | null = null;
      let address: string | null = null;
      if (o.outcome === 'send') {
        try {
          body = { [o.channel]: render(req, o.channel) };
          address = JSON.stringify(addressOf(customer.row, o.channelType));
        } catch (err) {
          o = { outcome: 'drop', reason: 'RENDER_FAILED', rule: o.channel, detail: `content for ${o.channel} failed to render: ${err instanceof Error ? err.message : String(err)}` };
        }
      } else if (o.outcome === 'defer') {
        // Rendered now for every candidate channel: the re-gate may pick any of them.
        body = {};
        for (const ch of req.channels) {
          try {
            body[ch] = render(req, ch);
          } catch {
            // Left out: a re-gate that picks this channel records RENDER_FAILED.
          }
        }
      }
      rows.push(ledgerRow(ws.id, id, req, o, now, window, body, address));
      out[freshIndex[j] as number] = { ...o, messageId: id };
    });
    await trx
      .insertInto('messages')
      .values(rows)
      .onConflict((oc) => oc.columns(['workspace_id', 'key']).doNothing())
      .execute();
    for (const d of displaced) {
      await trx
        .updateTable('messages')
        .set({ status: 'not_sent', reason: d.reason, rule: d.rule, detail: d.detail, decided_at: now, due_at: null })
        .where('workspace_id', '=', ws.id)
        .where('key', '=', d.key)
        .where('status', '=', 'queued')
        .execute();
    }
  }
  // Repeated keys within the call get the first one's outcome.
  requests.forEach((r, i) => {
    if (out[i] === undefined) out[i] = out[firstOf.get(r.key) as number];
  });
  return out as GateOutcome[];
}

/** The ledger row for a gate outcome (exported for the dispatcher's re-gate). */
export function ledgerRow(workspaceId: string, id: string, req: MessageRequest, o: GateOutcome, now: number, window: number, content: Record<string, unknown> | null, address: string | null): Insertable<MessagesTable> {
  const status = o.outcome === 'send' ? 'queued' : o.outcome === 'defer' ? 'deferred' : 'not_sent';
  return {
    workspace_id: workspaceId,
    id,
    key: req.key,
    customer_id: req.customerId,
    status,
    reason: o.outcome === 'send' ? null : o.reason,
    rule: o.outcome === 'send' ? null : (o.rule ?? null),
    detail: o.detail ?? '',
    channel: o.outcome === 'send' ? o.channel : null,
    channel_type: o.outcome === 'send' ? (o.channelType as ChannelType) : null,
    channels: JSON.stringify(req.channels),
    message_class: req.messageClass,
    category: req.category ?? null,
    priority: req.priority,
    offer: req.offer ?? null,
    journey: req.journey?.name ?? null,
    journey_instance: req.journey?.instanceId ?? null,
    journey_step: req.journey?.step ?? null,
    items: req.items && req.items.length > 0 ? JSON.stringify(req.items) : null,
    content: content === null ? null : JSON.stringify(content),
    address,
    requested_at: req.requestedAt,
    decided_at: now,
    due_at: o.outcome === 'send' ? now + window : o.outcome === 'defer' ? o.until : null,
    sent_at: null,
    attempts: 0,
    last_error: null,
    provider_message_id: null,
    delivered_at: null,
    opened_at: null,
    clicked_at: null,
    feedback: null,
  };
}
