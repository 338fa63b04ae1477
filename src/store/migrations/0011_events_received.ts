import type { Kysely } from 'kysely';

/**
 * Events by arrival: (workspace_id, received_at, id). Journeys replay the events committed since
 * their cursor on every start (journeys/engine.ts `catchUp`), keyset-paged by (received_at, id);
 * without this index each page read and sorted every event of the workspace, so starting a server
 * took longer the longer it had run. Arrival times only grow, so new entries land at the right
 * edge of the index: one page per commit, not one per event.
 *
 * On PostgreSQL the build holds a lock that blocks writes to `events` while it runs (migrations run
 * in a transaction, where CREATE INDEX CONCURRENTLY is not allowed). For a large table, create the
 * index beforehand without blocking (docs/operations.md); this migration then finds it and skips.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('events_received').ifNotExists().on('events').columns(['workspace_id', 'received_at', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('events_received').ifExists().execute();
}
