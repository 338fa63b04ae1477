import { inChunks, type Store } from '../../store/index.js';

/**
 * Which of these messageIds of a source are already on a timeline. Ingest dedupe only remembers
 * a messageId for the dedupe window; stored events remember it for as long as they are kept, so
 * checking them first keeps a re-run imported long after the window from storing rows twice.
 * (An indexed lookup on events (workspace_id, source, message_id): a few ms per batch.)
 */
export async function storedMessageIds(store: Store, workspaceId: string, source: string, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  const unique = [...new Set(ids)];
  for (const chunk of inChunks(unique, store.dialect.capabilities.maxParameters - 2)) {
    const rows = await store.db.selectFrom('events').select('message_id').where('workspace_id', '=', workspaceId).where('source', '=', source).where('message_id', 'in', chunk).execute();
    for (const r of rows) found.add(r.message_id);
  }
  return found;
}
