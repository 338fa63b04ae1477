import { CairnError, type Clock } from '../core/index.js';
import type { Db } from '../store/index.js';
import { parseBlueprint, resolveModel, type Blueprint, type WorkspaceModel } from '../blueprint/index.js';

export interface Workspace {
  id: string;
  name: string;
  blueprint: Blueprint;
  model: WorkspaceModel;
}

/** Creates a workspace, or replaces its blueprint when it exists. The blueprint is validated first. */
export async function upsertWorkspace(db: Db, clock: Clock, id: string, blueprintSource: string, blueprintPath: string | null): Promise<Workspace> {
  const { blueprint } = parseBlueprint(blueprintSource, blueprintPath ?? `${id}.yaml`);
  const now = clock.now();
  await db
    .insertInto('workspaces')
    .values({ id, name: blueprint.workspace.name, blueprint: blueprintSource, blueprint_path: blueprintPath, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('id').doUpdateSet({ name: blueprint.workspace.name, blueprint: blueprintSource, blueprint_path: blueprintPath, updated_at: now }))
    .execute();
  return { id, name: blueprint.workspace.name, blueprint, model: resolveModel(blueprint) };
}

export async function listWorkspaces(db: Db): Promise<{ id: string; name: string }[]> {
  return db.selectFrom('workspaces').select(['id', 'name']).orderBy('id').execute();
}

/**
 * Workspaces by id with their parsed blueprint, cached per blueprint version (updated_at) so the
 * hot path never parses YAML.
 */
export class WorkspaceRegistry {
  private cache = new Map<string, { ws: Workspace; checkedAt: number; updatedAt: number }>();
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ttlMs = 2000,
  ) {}

  async get(id: string): Promise<Workspace> {
    const hit = this.cache.get(id);
    const now = this.clock.now();
    if (hit && now - hit.checkedAt < this.ttlMs) return hit.ws;
    const row = await this.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new CairnError('CAIRN_ERR_WORKSPACE_NOT_FOUND', { workspace: id });
    if (hit && hit.updatedAt === Number(row.updated_at)) {
      hit.checkedAt = now;
      return hit.ws;
    }
    const { blueprint } = parseBlueprint(row.blueprint, row.blueprint_path ?? `${id}.yaml`);
    const ws: Workspace = { id, name: row.name, blueprint, model: resolveModel(blueprint) };
    this.cache.set(id, { ws, checkedAt: now, updatedAt: Number(row.updated_at) });
    return ws;
  }

  forget(id?: string): void {
    if (id) this.cache.delete(id);
    else this.cache.clear();
  }
}
