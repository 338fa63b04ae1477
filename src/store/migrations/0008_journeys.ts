import type { Kysely } from 'kysely';

/**
 * Journeys (src/journeys): instances with their durable timer, the append-only step history, the
 * per-workspace trigger cursors, and webhook calls recorded by webhook steps.
 *
 * - journey_instances: one row per customer and entry, keyed (workspace, customer, id) like every
 *   large table. The timer lives on the row (`due_at`, null when the instance does not wait on
 *   time): an instance waits for at most one thing at a time, so a separate timer table would only
 *   add a join. The (workspace_id, due_at) index is what the timer worker reads: due rows of one
 *   workspace, oldest first. (workspace, customer, journey, entry_key) is unique, so one trigger (an
 *   event id, a segment-history id, a schedule minute, an API idempotency key) enters at most once
 *   even when it is replayed after a crash; NULL keys never collide.
 * - journey_history: what each step did, with its outcome (a send's gate outcome, a branch taken,
 *   the exit reason), ordered by uuidv7 id within a customer.
 * - journey_cursors: how far each workspace's trigger scans got (events, segment entries, schedule
 *   minutes), written in the transaction that did the work, so a restart resumes from there.
 * - journey_webhooks: calls made by webhook steps, one per idempotency key (instance + step + visit).
 * - an index on segment_history (workspace_id, at) for the segment-entry scan.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('journey_instances')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('journey', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('step', 'text')
    .addColumn('wait_kind', 'text')
    .addColumn('due_at', 'bigint')
    .addColumn('pos', 'text', (c) => c.notNull())
    .addColumn('visits', 'text', (c) => c.notNull())
    .addColumn('variants', 'text', (c) => c.notNull())
    .addColumn('context', 'text', (c) => c.notNull())
    .addColumn('entry_key', 'text')
    .addColumn('entered_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .addColumn('exit_reason', 'text')
    .addPrimaryKeyConstraint('journey_instances_pk', ['workspace_id', 'customer_id', 'id'])
    .execute();
  await db.schema.createIndex('journey_instances_due').on('journey_instances').columns(['workspace_id', 'due_at']).execute();
  await db.schema.createIndex('journey_instances_entry').on('journey_instances').columns(['workspace_id', 'customer_id', 'journey', 'entry_key']).unique().execute();

  await db.schema
    .createTable('journey_history')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('journey', 'text', (c) => c.notNull())
    .addColumn('step', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('journey_history_pk', ['workspace_id', 'customer_id', 'id'])
    .execute();

  await db.schema
    .createTable('journey_cursors')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('journey_cursors_pk', ['workspace_id', 'name'])
    .execute();

  await db.schema
    .createTable('journey_webhooks')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('headers', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('journey_webhooks_pk', ['workspace_id', 'key'])
    .execute();

  await db.schema.createIndex('segment_history_at').on('segment_history').columns(['workspace_id', 'at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('segment_history_at').ifExists().execute();
  for (const t of ['journey_webhooks', 'journey_cursors', 'journey_history', 'journey_instances']) await db.schema.dropTable(t).ifExists().execute();
}
