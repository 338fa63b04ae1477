import type { Kysely } from 'kysely';

/**
 * Segment membership: the current members of each segment (one row per member, so sizes are a
 * grouped count) and the append-only history of entries and exits. Keyed by (workspace, customer)
 * like every large table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('segment_membership')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('segment', 'text', (c) => c.notNull())
    .addColumn('entered_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('segment_membership_pk', ['workspace_id', 'customer_id', 'segment'])
    .execute();
  await db.schema.createIndex('segment_membership_segment').on('segment_membership').columns(['workspace_id', 'segment']).execute();

  await db.schema
    .createTable('segment_history')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('segment', 'text', (c) => c.notNull())
    .addColumn('change', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('segment_history_pk', ['workspace_id', 'customer_id', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['segment_history', 'segment_membership']) await db.schema.dropTable(t).ifExists().execute();
}
