import { sql, type Kysely } from 'kysely';

/**
 * Journey webhook steps are sent (src/journeys/webhooks.ts): the columns the sender needs on
 * `journey_webhooks`, which until now only recorded the calls.
 *
 * - `attempts`: calls made so far (the claim increments it); `next_at`: when the row is due — the
 *   first call, the next retry, or the end of a claim's lease while a call is in flight (status
 *   `sending`); null once the row is `sent` or `failed`.
 * - `last_error`, `response_status`, `sent_at`: the outcome as the receiver gave it.
 * - `journey`, `step`: where the call came from, so the outcome is written to the instance's
 *   history (null for rows recorded before this migration).
 * - (status, next_at) is what the sender reads: due pending rows, oldest first.
 *
 * Since this migration the step renders url, headers and body (Liquid) when it runs. Rows recorded
 * before it hold the templates unrendered: those whose url, headers or body contain Liquid markup
 * are closed as `failed` (sending them would call a URL nobody meant); the others become due now.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite's ALTER TABLE adds one at a time.
  await db.schema.alterTable('journey_webhooks').addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('journey_webhooks').addColumn('next_at', 'bigint').execute();
  await db.schema.alterTable('journey_webhooks').addColumn('last_error', 'text').execute();
  await db.schema.alterTable('journey_webhooks').addColumn('response_status', 'integer').execute();
  await db.schema.alterTable('journey_webhooks').addColumn('sent_at', 'bigint').execute();
  await db.schema.alterTable('journey_webhooks').addColumn('journey', 'text').execute();
  await db.schema.alterTable('journey_webhooks').addColumn('step', 'text').execute();
  await db.schema.createIndex('journey_webhooks_due').on('journey_webhooks').columns(['status', 'next_at']).execute();

  const templated = sql`(url like '%{{%' or url like '%{\\%%' escape '\\' or headers like '%{{%' or headers like '%{\\%%' escape '\\' or body like '%{{%' or body like '%{\\%%' escape '\\')`;
  await sql`update journey_webhooks set status = 'failed', last_error = ${'RENDER_FAILED: recorded before migration 0010 with its Liquid templates unrendered; not sent'} where status = 'pending' and ${templated}`.execute(db);
  await sql`update journey_webhooks set next_at = created_at where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('journey_webhooks_due').ifExists().execute();
  for (const c of ['step', 'journey', 'sent_at', 'response_status', 'last_error', 'next_at', 'attempts']) await db.schema.alterTable('journey_webhooks').dropColumn(c).execute();
}
