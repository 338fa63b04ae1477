import type { Db } from '../../store/index.js';

/**
 * Where an import of one file into one workspace stands: every line up to `linesDone` (ending at
 * byte `bytesDone`) is committed. Written after each committed batch, so a re-run after a crash
 * starts there instead of at the top of the file.
 */
export interface Checkpoint {
  workspaceId: string;
  importKey: string;
  file: string;
  linesDone: number;
  bytesDone: number;
  completed: boolean;
  updatedAt: number;
}

export async function loadCheckpoint(db: Db, workspaceId: string, importKey: string): Promise<Checkpoint | undefined> {
  const r = await db.selectFrom('import_checkpoints').selectAll().where('workspace_id', '=', workspaceId).where('import_key', '=', importKey).executeTakeFirst();
  if (!r) return undefined;
  return {
    workspaceId: r.workspace_id,
    importKey: r.import_key,
    file: r.file,
    linesDone: Number(r.rows_done),
    bytesDone: Number(r.bytes_done),
    completed: Number(r.completed) === 1,
    updatedAt: Number(r.updated_at),
  };
}

export async function saveCheckpoint(db: Db, cp: Checkpoint): Promise<void> {
  const row = {
    workspace_id: cp.workspaceId,
    import_key: cp.importKey,
    file: cp.file,
    rows_done: cp.linesDone,
    bytes_done: cp.bytesDone,
    completed: cp.completed ? 1 : 0,
    updated_at: cp.updatedAt,
  };
  await db
    .insertInto('import_checkpoints')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'import_key']).doUpdateSet({ file: row.file, rows_done: row.rows_done, bytes_done: row.bytes_done, completed: row.completed, updated_at: row.updated_at }))
    .execute();
}

export async function deleteCheckpoint(db: Db, workspaceId: string, importKey: string): Promise<void> {
  await db.deleteFrom('import_checkpoints').where('workspace_id', '=', workspaceId).where('import_key', '=', importKey).execute();
}
