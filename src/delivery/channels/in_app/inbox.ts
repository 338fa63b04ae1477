import { EventEmitter } from 'node:events';
import type { Db } from '../../../store/index.js';

/**
 * The in-app inbox: messages the in-app channel delivered to a customer, read by the browser SDK
 * (GET /v1/inbox, and GET /v1/inbox/stream as server-sent events), with read state.
 *
 * Customers merge: a message sent to a profile that was later merged into another shows in the
 * surviving profile's inbox (reads follow `customers.merged_into` backwards).
 */
export interface InboxItem {
  /** The outbox id. */
  id: string;
  channel: string;
  messageClass: string;
  category: string | null;
  content: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
}

export interface NewInboxMessage {
  workspaceId: string;
  id: string;
  customerId: string;
  channel: string;
  messageClass: string;
  category: string | null;
  content: Record<string, unknown>;
  createdAt: number;
}

/**
 * New inbox messages in this process, by workspace and customer: what the SSE stream listens to.
 * Another process's inserts do not arrive here; the stream also polls the table (see
 * server/channels.ts), so a connected browser sees them within the poll interval.
 */
export class InboxHub {
  private readonly emitter = new EventEmitter();
  constructor() {
    // One listener per open stream; thousands of browsers are normal, not a leak.
    this.emitter.setMaxListeners(0);
  }

  private static key(workspaceId: string, customerId: string): string {
    return `${workspaceId}\u0000${customerId}`;
  }

  subscribe(workspaceId: string, customerId: string, listener: (item: InboxItem) => void): () => void {
    const k = InboxHub.key(workspaceId, customerId);
    this.emitter.on(k, listener);
    return () => this.emitter.off(k, listener);
  }

  publish(workspaceId: string, customerId: string, item: InboxItem): void {
    this.emitter.emit(InboxHub.key(workspaceId, customerId), item);
  }

  listeners(workspaceId: string, customerId: string): number {
    return this.emitter.listenerCount(InboxHub.key(workspaceId, customerId));
  }
}

type Row = { id: string; channel: string; message_class: string; category: string | null; content: string; created_at: number | string; read_at: number | string | null };

function toItem(r: Row): InboxItem {
  return {
    id: r.id,
    channel: r.channel,
    messageClass: r.message_class,
    category: r.category,
    content: JSON.parse(r.content) as Record<string, unknown>,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    readAt: r.read_at === null ? null : new Date(Number(r.read_at)).toISOString(),
  };
}

/** Inserts a message unless one with the same outbox id exists (a retried send). Returns the item when it was new. */
export async function insertInboxMessage(db: Db, m: NewInboxMessage): Promise<InboxItem | undefined> {
  const row = { workspace_id: m.workspaceId, id: m.id, customer_id: m.customerId, channel: m.channel, message_class: m.messageClass, category: m.category, content: JSON.stringify(m.content), created_at: m.createdAt, read_at: null };
  const r = await db.insertInto('inbox_messages').values(row).onConflict((oc) => oc.columns(['workspace_id', 'id']).doNothing()).executeTakeFirst();
  if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return undefined;
  return toItem(row);
}

/** The customer and every profile merged into it (directly or through others). */
export async function mergedIds(db: Db, workspaceId: string, customerId: string): Promise<string[]> {
  const all = [customerId];
  let frontier = [customerId];
  for (let depth = 0; depth < 20 && frontier.length > 0; depth++) {
    const rows = await db.selectFrom('customers').select('id').where('workspace_id', '=', workspaceId).where('merged_into', 'in', frontier).execute();
    frontier = rows.map((r) => r.id).filter((id) => !all.includes(id));
    all.push(...frontier);
  }
  return all;
}

export interface InboxPage {
  items: InboxItem[];
  unread: number;
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** A customer's inbox, newest first; `after` gives only messages newer than an id (the stream's catch-up). */
export async function listInbox(db: Db, workspaceId: string, customerIds: readonly string[], opts: { limit: number; before?: string; after?: string; unreadOnly?: boolean }): Promise<InboxPage> {
  let q = db
    .selectFrom('inbox_messages')
    .select(['id', 'channel', 'message_class', 'category', 'content', 'created_at', 'read_at'])
    .where('workspace_id', '=', workspaceId)
    .where('customer_id', 'in', customerIds);
  if (opts.before !== undefined) q = q.where('id', '<', opts.before);
  if (opts.after !== undefined) q = q.where('id', '>', opts.after);
  if (opts.unreadOnly) q = q.where('read_at', 'is', null);
  const rows = await q.orderBy('id', 'desc').limit(opts.limit + 1).execute();
  const unread = await db
    .selectFrom('inbox_messages')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('customer_id', 'in', customerIds)
    .where('read_at', 'is', null)
    .executeTakeFirst();
  const page = rows.slice(0, opts.limit).map(toItem);
  return { items: page, unread: Number(unread?.n ?? 0), nextCursor: rows.length > opts.limit ? (page[page.length - 1]?.id ?? null) : null };
}

/**
 * Marks a message read (idempotent: the first read time stays). Undefined when the customer has no
 * such message; `firstRead` tells whether this call is the one that marked it.
 */
export async function markInboxRead(db: Db, workspaceId: string, customerIds: readonly string[], id: string, now: number): Promise<{ firstRead: boolean; readAt: number; channel: string; customerId: string } | undefined> {
  const found = await db.selectFrom('inbox_messages').select(['read_at', 'channel', 'customer_id']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', customerIds).where('id', '=', id).executeTakeFirst();
  if (!found) return undefined;
  if (found.read_at !== null) return { firstRead: false, readAt: Number(found.read_at), channel: found.channel, customerId: found.customer_id };
  const r = await db.updateTable('inbox_messages').set({ read_at: now }).where('workspace_id', '=', workspaceId).where('id', '=', id).where('read_at', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) > 0) return { firstRead: true, readAt: now, channel: found.channel, customerId: found.customer_id };
  const again = await db.selectFrom('inbox_messages').select('read_at').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirstOrThrow();
  return { firstRead: false, readAt: Number(again.read_at), channel: found.channel, customerId: found.customer_id };
}
