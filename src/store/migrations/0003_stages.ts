import type { Kysely } from 'kysely';

/**
 * Stages: each customer's current stage per lifecycle ('' for the default lifecycle; one row per
 * customer and lifecycle that has a stage, so sizes are a grouped count) and the append-only history
 * of moves (from_stage null: entered a first stage; to_stage null: left every stage of the lifecycle).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('customer_stage')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('lifecycle', 'text', (c) => c.notNull())
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('entered_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('customer_stage_pk', ['workspace_id', 'customer_id', 'lifecycle'])
    .execute();
  await db.schema.createIndex('customer_stage_stage').on('customer_stage').columns(['workspace_id', 'stage']).execute();

  await db.schema
    .createTable('stage_history')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('lifecycle', 'text', (c) => c.notNull())
    .addColumn('from_stage', 'text')
    .addColumn('to_stage', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stage_history_pk', ['workspace_id', 'customer_id', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['stage_history', 'customer_stage']) await db.schema.dropTable(t).ifExists().execute();
}
