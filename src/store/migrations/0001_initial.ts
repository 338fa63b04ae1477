import type { Kysely } from 'kysely';

/** The first schema: workspaces, keys, profiles, identities, timeline, dedupe, consent. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('workspaces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('blueprint', 'text', (c) => c.notNull())
    .addColumn('blueprint_path', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('display', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_keys_workspace').on('api_keys').columns(['workspace_id']).execute();

  await db.schema
    .createTable('customers')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('merged_into', 'text')
    .addColumn('traits', 'text', (c) => c.notNull())
    .addColumn('computed', 'text', (c) => c.notNull())
    .addColumn('first_seen', 'bigint', (c) => c.notNull())
    .addColumn('last_seen', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('customers_pk', ['workspace_id', 'id'])
    .execute();

  await db.schema
    .createTable('identities')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('identities_pk', ['workspace_id', 'kind', 'value'])
    .execute();
  await db.schema.createIndex('identities_customer').on('identities').columns(['workspace_id', 'customer_id']).execute();

  await db.schema
    .createTable('events')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('ts', 'bigint', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    // The key is the timeline order itself, so the timeline needs no second index (one B-tree
    // less to write per event).
    .addPrimaryKeyConstraint('events_pk', ['workspace_id', 'customer_id', 'ts', 'id'])
    .execute();
  await db.schema.createIndex('events_message').on('events').columns(['workspace_id', 'source', 'message_id']).execute();

  await db.schema
    .createTable('dedupe')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('dedupe_pk', ['workspace_id', 'source', 'message_id'])
    .execute();
  await db.schema.createIndex('dedupe_received').on('dedupe').columns(['received_at']).execute();

  await db.schema
    .createTable('identity_log')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('other_id', 'text')
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_log_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('identity_log_customer').on('identity_log').columns(['workspace_id', 'customer_id']).execute();
  await db.schema.createIndex('identity_log_other').on('identity_log').columns(['workspace_id', 'other_id']).execute();

  await db.schema
    .createTable('consent')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'bigint', (c) => c.notNull())
    .addColumn('wording_version', 'text')
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addPrimaryKeyConstraint('consent_pk', ['workspace_id', 'customer_id', 'id'])
    .execute();

  await db.schema
    .createTable('import_checkpoints')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('import_key', 'text', (c) => c.notNull())
    .addColumn('file', 'text', (c) => c.notNull())
    .addColumn('rows_done', 'bigint', (c) => c.notNull())
    .addColumn('bytes_done', 'bigint', (c) => c.notNull())
    .addColumn('completed', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('import_checkpoints_pk', ['workspace_id', 'import_key'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['import_checkpoints', 'consent', 'identity_log', 'dedupe', 'events', 'identities', 'customers', 'api_keys', 'workspaces']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
