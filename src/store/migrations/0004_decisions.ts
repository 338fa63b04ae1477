import { sql, type Kysely } from 'kysely';

/**
 * Decisioning: the decision log (one row per decide, listed per customer newest first, and looked
 * up by id when an impression or click comes back), per-profile offer uses, the total offer-cap counters, and the `decide`
 * scope for existing keys (write keys and full-scope secret keys get it, as new ones do).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('decisions')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    // null: the identity was unknown (an anonymous visitor with no profile yet).
    .addColumn('customer_id', 'text')
    .addColumn('placement', 'text')
    .addColumn('channel', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('offers', 'text', (c) => c.notNull())
    .addColumn('reasons', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('decisions_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('decisions_customer').on('decisions').columns(['workspace_id', 'customer_id', 'at', 'id']).execute();

  // Per-profile decision caps read these instead of the log: one row per returned offer that has
  // such a cap, so a customer's rows per offer stay bounded by the cap's limit per window.
  await db.schema
    .createTable('offer_uses')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('offer', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('decision_id', 'text', (c) => c.notNull())
    .addColumn('slot', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('offer_uses_pk', ['workspace_id', 'customer_id', 'offer', 'at', 'decision_id'])
    .execute();

  await db.schema
    .createTable('offer_counters')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('offer', 'text', (c) => c.notNull())
    .addColumn('placement', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('series', 'text', (c) => c.notNull())
    .addColumn('bucket', 'bigint', (c) => c.notNull())
    .addColumn('count', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('offer_counters_pk', ['workspace_id', 'offer', 'placement', 'kind', 'series', 'bucket'])
    .execute();

  await sql`update api_keys set scopes = scopes || ' decide' where (kind = 'write' or scopes like '%admin%') and scopes not like '%decide%'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['offer_counters', 'offer_uses', 'decisions']) await db.schema.dropTable(t).ifExists().execute();
}
