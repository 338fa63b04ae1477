import type { Kysely } from 'kysely';

/**
 * Delivery: the message ledger, which is also the outbox (src/delivery).
 *
 * One row per message request, keyed by its idempotency key: the unique (workspace_id, key) index
 * is what makes a second enqueue of the same journey step or decision a no-op, whatever the
 * isolation level. The row carries the gate's verdict (status, reason code, rule, detail), the
 * rendered content and the address, and the dispatcher's progress (attempts, sent_at, last error).
 *
 * - (workspace_id, customer_id, decided_at): cap counting (dispatches of one customer in a window).
 * - (workspace_id, customer_id, id): the profile's message log, newest first (ids are uuidv7).
 * - (due_at): the dispatcher's work list across workspaces. due_at is set only while a row has
 *   work left (queued, sending — then it is the lease expiry — or deferred) and null once it is
 *   final, so the index range `due_at <= now` holds only pending work.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('messages')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('rule', 'text')
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('channel', 'text')
    .addColumn('channel_type', 'text')
    .addColumn('channels', 'text', (c) => c.notNull())
    .addColumn('message_class', 'text', (c) => c.notNull())
    .addColumn('category', 'text')
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('offer', 'text')
    .addColumn('journey', 'text')
    .addColumn('journey_instance', 'text')
    .addColumn('journey_step', 'text')
    .addColumn('items', 'text')
    .addColumn('content', 'text')
    .addColumn('address', 'text')
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('decided_at', 'bigint', (c) => c.notNull())
    .addColumn('due_at', 'bigint')
    .addColumn('sent_at', 'bigint')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('provider_message_id', 'text')
    .addColumn('delivered_at', 'bigint')
    .addColumn('opened_at', 'bigint')
    .addColumn('clicked_at', 'bigint')
    .addColumn('feedback', 'text')
    .addPrimaryKeyConstraint('messages_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('messages_key').unique().on('messages').columns(['workspace_id', 'key']).execute();
  await db.schema.createIndex('messages_customer_decided').on('messages').columns(['workspace_id', 'customer_id', 'decided_at']).execute();
  await db.schema.createIndex('messages_customer_log').on('messages').columns(['workspace_id', 'customer_id', 'id']).execute();
  await db.schema.createIndex('messages_due').on('messages').columns(['due_at']).execute();
  await db.schema.createIndex('messages_provider_id').on('messages').columns(['workspace_id', 'provider_message_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('messages').ifExists().execute();
}
