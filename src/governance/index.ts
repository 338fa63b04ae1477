export { createKey, listKeys, revokeKey, KeyResolver, SCOPES, type KeyKind, type Scope, type ApiKeyInfo, type Principal } from './keys.js';
export { upsertWorkspace, listWorkspaces, WorkspaceRegistry, type Workspace } from './workspaces.js';
