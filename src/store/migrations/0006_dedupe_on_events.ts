import type { Kysely } from 'kysely';

/**
 * Deduplication reads the timeline instead of a claims table: a (source, messageId) is a duplicate
 * while an event with it was received within the window. The events_message index already answers
 * that, so the separate `dedupe` table (two more B-trees written per event) goes away. Writers of a
 * workspace are serialized (SQLite's single writer; the per-workspace advisory lock on PostgreSQL),
 * so the check-then-insert cannot race.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('dedupe').ifExists().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dedupe')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('dedupe_pk', ['workspace_id', 'source', 'message_id'])
    .execute();
  await db.schema.createIndex('dedupe_received').on('dedupe').columns(['received_at']).execute();
}
