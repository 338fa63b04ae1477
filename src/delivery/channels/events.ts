import { uuidv7, type Clock } from '../../core/index.js';
import type { Db } from '../../store/index.js';
import { recordDeliveryEvents } from '../ledger.js';
import type { DeliveryEvent } from '../types.js';

/**
 * The delivery event log (`delivery_events`): every normalized provider callback, tracked click,
 * unsubscribe and inbound message, append-only, with the customer when known. The message
 * ledger's first-time columns (delivered_at, opened_at, clicked_at, feedback) are updated through
 * the ledger's own `recordDeliveryEvents` in the same call.
 */
export interface StoredDeliveryEvent {
  id: string;
  type: DeliveryEvent['type'];
  channel: string;
  messageId: string | null;
  providerMessageId: string | null;
  customerId: string | null;
  at: string;
  detail: Record<string, unknown>;
}

/** The customer a message was sent to, from the ledger; undefined when the id is unknown. */
export async function customerOfMessage(db: Db, workspaceId: string, ref: { messageId?: string; providerMessageId?: string; channel?: string }): Promise<{ id: string; customerId: string } | undefined> {
  let q = db.selectFrom('messages').select(['id', 'customer_id']).where('workspace_id', '=', workspaceId);
  if (ref.channel !== undefined) q = q.where('channel', '=', ref.channel);
  if (ref.messageId !== undefined) q = q.where('id', '=', ref.messageId);
  else if (ref.providerMessageId !== undefined) q = q.where('provider_message_id', '=', ref.providerMessageId);
  else return undefined;
  const row = await q.executeTakeFirst();
  return row ? { id: row.id, customerId: row.customer_id } : undefined;
}

/**
 * Appends events for one channel and updates the ledger. `customerIds[i]` is the customer of
 * `events[i]` when the caller resolved it (an address, a signed link); otherwise it is looked up
 * from the message. Returns the stored events.
 */
export async function recordChannelEvents(db: Db, clock: Clock, workspaceId: string, channel: string, events: readonly DeliveryEvent[], customerIds: readonly (string | undefined)[] = [], opts: { fromProvider?: boolean } = {}): Promise<StoredDeliveryEvent[]> {
  // A provider's callback is authenticated for one channel: it may only speak of that channel's
  // messages. Cairn's own signed links and inbox reads name their message themselves.
  const scope = opts.fromProvider === true ? { channel } : {};
  const stored: StoredDeliveryEvent[] = [];
  const now = clock.now();
  for (const [i, e] of events.entries()) {
    let messageId = e.messageId ?? null;
    let customerId = customerIds[i];
    if (customerId === undefined || messageId === null) {
      const m = await customerOfMessage(db, workspaceId, { ...scope, ...(e.messageId !== undefined ? { messageId: e.messageId } : {}), ...(e.providerMessageId !== undefined ? { providerMessageId: e.providerMessageId } : {}) });
      customerId ??= m?.customerId;
      messageId ??= m?.id ?? null;
    }
    const detail = { ...(e.detail ?? {}), ...(e.address ? { address: e.address } : {}) };
    const row = {
      workspace_id: workspaceId,
      id: uuidv7(now),
      message_id: messageId,
      provider_message_id: e.providerMessageId ?? null,
      customer_id: customerId ?? null,
      channel,
      type: e.type,
      at: e.at,
      recorded_at: now,
      detail: JSON.stringify(detail),
    };
    await db.insertInto('delivery_events').values(row).execute();
    stored.push({ id: row.id, type: e.type, channel, messageId, providerMessageId: row.provider_message_id, customerId: row.customer_id, at: new Date(e.at).toISOString(), detail });
  }
  await recordDeliveryEvents(db, workspaceId, events.map((e, i) => (e.messageId === undefined && stored[i]?.messageId ? { ...e, messageId: stored[i]?.messageId as string } : e)), scope);
  return stored;
}

/** Events of one message or one customer, oldest first. */
export async function listChannelEvents(db: Db, workspaceId: string, by: { messageId: string } | { customerId: string }, limit = 200): Promise<StoredDeliveryEvent[]> {
  let q = db.selectFrom('delivery_events').selectAll().where('workspace_id', '=', workspaceId);
  q = 'messageId' in by ? q.where('message_id', '=', by.messageId) : q.where('customer_id', '=', by.customerId);
  const rows = await q.orderBy('at').orderBy('id').limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    type: r.type as DeliveryEvent['type'],
    channel: r.channel,
    messageId: r.message_id,
    providerMessageId: r.provider_message_id,
    customerId: r.customer_id,
    at: new Date(Number(r.at)).toISOString(),
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  }));
}
