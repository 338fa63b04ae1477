import type { Kysely } from 'kysely';

/**
 * Channels (src/delivery/channels, src/delivery/links.ts, src/server/channels.ts).
 *
 * - `delivery_events`: what providers and customers report back about a message — delivered,
 *   bounced, opened, clicked (tracked redirects), complained, failed, unsubscribed, resubscribed,
 *   inbound. Append-only; (workspace_id, message_id) reads one message's history,
 *   (workspace_id, customer_id, at) a customer's.
 * - `inbox_messages`: the in-app channel's inbox. The primary key is the outbox id, so a retried
 *   send inserts nothing new; (workspace_id, customer_id, id) lists a customer's inbox newest first.
 * - `push_subscriptions`: web push subscriptions a browser registered for a customer, keyed by
 *   endpoint (a browser re-subscribing moves its endpoint to the current customer); removed when the
 *   push service answers 404 or 410.
 * - `service_desk_suggestions`: suggestions shown in the agent's customer view; the primary key is
 *   the outbox id (idempotent sends); status open → accepted | dismissed with who and when.
 * - `link_secrets`: the per-workspace key signing unsubscribe and tracked links when no
 *   CAIRN_LINK_SECRET is configured (see delivery/links.ts).
 *
 * Circuit-breaker state is not persisted (per process, see webhook/breaker.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('delivery_events')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('provider_message_id', 'text')
    .addColumn('customer_id', 'text')
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('delivery_events_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('delivery_events_message').on('delivery_events').columns(['workspace_id', 'message_id']).execute();
  await db.schema.createIndex('delivery_events_customer').on('delivery_events').columns(['workspace_id', 'customer_id', 'at']).execute();

  await db.schema
    .createTable('inbox_messages')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('message_class', 'text', (c) => c.notNull())
    .addColumn('category', 'text')
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('read_at', 'bigint')
    .addPrimaryKeyConstraint('inbox_messages_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('inbox_messages_customer').on('inbox_messages').columns(['workspace_id', 'customer_id', 'id']).execute();

  await db.schema
    .createTable('push_subscriptions')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('p256dh', 'text', (c) => c.notNull())
    .addColumn('auth', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('push_subscriptions_pk', ['workspace_id', 'endpoint'])
    .execute();
  await db.schema.createIndex('push_subscriptions_customer').on('push_subscriptions').columns(['workspace_id', 'customer_id']).execute();

  await db.schema
    .createTable('service_desk_suggestions')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('message_class', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('cta_label', 'text')
    .addColumn('cta_url', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'bigint')
    .addColumn('resolved_by', 'text')
    .addColumn('note', 'text')
    .addPrimaryKeyConstraint('service_desk_suggestions_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('service_desk_suggestions_customer').on('service_desk_suggestions').columns(['workspace_id', 'customer_id', 'status']).execute();

  await db.schema
    .createTable('link_secrets')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey().notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['link_secrets', 'service_desk_suggestions', 'push_subscriptions', 'inbox_messages', 'delivery_events']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
