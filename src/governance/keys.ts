import { CairnError, sha256, token, uuidv7, type Clock } from '../core/index.js';
import type { Db } from '../store/index.js';

export type KeyKind = 'write' | 'secret';

/**
 * What a key may do. Write keys (public, in browsers and apps): `track` and `decide` — a browser
 * may ask for offers but never read a profile. Secret keys: every scope unless narrowed.
 */
export const SCOPES = ['track', 'profiles:read', 'profiles:write', 'admin', 'decide'] as const;
export const WRITE_KEY_SCOPES: readonly Scope[] = ['track', 'decide'];
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyInfo {
  id: string;
  workspaceId: string;
  kind: KeyKind;
  name: string;
  /** The whole key for write keys (they are public); a prefix for secret keys. */
  display: string;
  scopes: Scope[];
  createdAt: string;
  revokedAt: string | null;
}

export interface Principal {
  workspaceId: string;
  keyId: string;
  /** The key's name; for write keys it names the source events come from. */
  name: string;
  kind: KeyKind;
  scopes: ReadonlySet<Scope>;
}

const PREFIX: Record<KeyKind, string> = { write: 'cw', secret: 'cs' };

/** Longest string KeyResolver caches (a key is `cw_`/`cs_` + 32 characters). */
export const MAX_CACHED_KEY_CHARS = 128;

export async function createKey(db: Db, clock: Clock, workspaceId: string, kind: KeyKind, name: string, scopes?: Scope[]): Promise<{ key: string; info: ApiKeyInfo }> {
  const key = token(PREFIX[kind]);
  const granted: Scope[] = kind === 'write' ? [...WRITE_KEY_SCOPES] : scopes && scopes.length > 0 ? scopes : [...SCOPES];
  const now = clock.now();
  const row = {
    id: uuidv7(now),
    workspace_id: workspaceId,
    kind,
    name,
    key_hash: sha256(key),
    display: kind === 'write' ? key : `${key.slice(0, 10)}…`,
    scopes: granted.join(' '),
    created_at: now,
    revoked_at: null,
  };
  await db.insertInto('api_keys').values(row).execute();
  return { key, info: toInfo(row) };
}

function toInfo(r: { id: string; workspace_id: string; kind: KeyKind; name: string; display: string; scopes: string; created_at: number; revoked_at: number | null }): ApiKeyInfo {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    kind: r.kind,
    name: r.name,
    display: r.display,
    scopes: r.scopes.split(' ').filter(Boolean) as Scope[],
    createdAt: new Date(Number(r.created_at)).toISOString(),
    revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)).toISOString(),
  };
}

export async function listKeys(db: Db, workspaceId: string): Promise<ApiKeyInfo[]> {
  const rows = await db.selectFrom('api_keys').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at').execute();
  return rows.map(toInfo);
}

export async function revokeKey(db: Db, clock: Clock, workspaceId: string, keyId: string): Promise<ApiKeyInfo> {
  const res = await db.updateTable('api_keys').set({ revoked_at: clock.now() }).where('workspace_id', '=', workspaceId).where('id', '=', keyId).where('revoked_at', 'is', null).executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) {
    const exists = await db.selectFrom('api_keys').select('id').where('workspace_id', '=', workspaceId).where('id', '=', keyId).executeTakeFirst();
    if (!exists) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `Key ${keyId}` });
  }
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', keyId).executeTakeFirstOrThrow();
  return toInfo(row);
}

/**
 * Resolves keys to principals with a short cache so ingest does not hit storage per request.
 * Revocation takes effect within `ttlMs` on every process (immediately on the revoking one).
 */
export class KeyResolver {
  private cache = new Map<string, { p: Principal | null; at: number }>();
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ttlMs = 5000,
  ) {}

  /**
   * Cached by the key as sent (the hash costs more than the lookup of a hot key); revocations
   * reach this process within the TTL.
   */
  async resolve(key: string): Promise<Principal | null> {
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.p;
    const hash = sha256(key);
    const row = await this.db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
    const p: Principal | null =
      row && row.revoked_at === null ? { workspaceId: row.workspace_id, keyId: row.id, name: row.name, kind: row.kind, scopes: new Set(row.scopes.split(' ').filter(Boolean) as Scope[]) } : null;
    // Keys are ~35 characters. Anything sent as one is looked up, but only key-sized strings are
    // kept: caching raw strings of any length let unauthenticated requests fill memory (10,000
    // entries × a header or body-sized writeKey).
    if (key.length > MAX_CACHED_KEY_CHARS) return p;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { p, at: now });
    return p;
  }

  forget(): void {
    this.cache.clear();
  }
}
