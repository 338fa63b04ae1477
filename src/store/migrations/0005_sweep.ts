import type { Kysely } from 'kysely';

/**
 * The segment sweep's schedule: for each customer whose segments or stages can change with time
 * alone (a rolling window losing a bucket, days_since crossing a threshold, the local hour), the
 * earliest instant at which one could (src/profiles/due.ts). Customers whose conditions are
 * time-independent have no row, so the table holds only what the sweeper has to look at.
 *
 * A table of its own rather than a column on `customers`: ingest rewrites every touched customers
 * row anyway, but the sweeper claims and deletes these rows (FOR UPDATE SKIP LOCKED on PostgreSQL)
 * without locking or rewriting profile rows, the index holds only scheduled customers, and the
 * table is keyed by (workspace, customer) like every large table, so it shards with them.
 * The (workspace_id, due_at) index is what a sweep reads: the due rows of one workspace, oldest first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('segment_sweep')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('due_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('segment_sweep_pk', ['workspace_id', 'customer_id'])
    .execute();
  await db.schema.createIndex('segment_sweep_due').on('segment_sweep').columns(['workspace_id', 'due_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('segment_sweep').ifExists().execute();
}
