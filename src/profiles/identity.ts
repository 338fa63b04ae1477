import { getPath, isObject } from '../core/index.js';
import type { ResolvedIdentityKey, WorkspaceModel } from '../blueprint/index.js';

/** An identity: a kind declared in the blueprint (user_id, email, …) and its normalized value. */
export interface Identity {
  kind: string;
  value: string;
}

export const identityKey = (kind: string, value: string): string => `${kind}\u0000${value}`;

export function normalizeIdentity(key: Pick<ResolvedIdentityKey, 'normalize'>, raw: unknown): string | undefined {
  if (typeof raw === 'number' && Number.isFinite(raw)) raw = String(raw);
  if (typeof raw !== 'string') return undefined;
  let v = raw.trim();
  if (key.normalize === 'email') v = v.toLowerCase();
  if (key.normalize === 'phone') v = v.replace(/[^\d+]/g, '');
  if (v === '' || v.length > 512) return undefined;
  return v;
}

/** Reads `externalIds.TYPE` from Segment's context.externalIds list, other paths from the message. */
function readPath(message: Record<string, unknown>, path: string): unknown {
  if (path.startsWith('externalIds.')) {
    const type = path.slice('externalIds.'.length);
    const list = getPath(message, 'context.externalIds');
    if (!Array.isArray(list)) return undefined;
    const hit = list.find((x) => isObject(x) && x.type === type);
    return isObject(hit) ? hit.id : undefined;
  }
  return getPath(message, path);
}

/** The identities a message carries, in precedence order (strongest first), deduplicated. */
export function extractIdentities(model: WorkspaceModel, message: Record<string, unknown>): Identity[] {
  const out: Identity[] = [];
  for (const key of model.identity.keys) {
    for (const path of key.from) {
      const value = normalizeIdentity(key, readPath(message, path));
      if (value === undefined) continue;
      // A scan of the few found so far rather than a Set of identity keys: no set and no key
      // strings per event, for the same (kind, value) deduplication.
      let seen = false;
      for (const o of out) if (o.kind === key.name && o.value === value) seen = true;
      if (!seen) out.push({ kind: key.name, value });
      break;
    }
  }
  return out;
}

/** Parses "kind:value" (e.g. email:ana@example.com) using the blueprint's normalization. */
export function parseIdentity(model: WorkspaceModel, text: string): Identity | undefined {
  const i = text.indexOf(':');
  if (i <= 0) return undefined;
  const kind = text.slice(0, i);
  const key = model.identity.byName.get(kind);
  if (!key) return undefined;
  const value = normalizeIdentity(key, text.slice(i + 1));
  return value === undefined ? undefined : { kind, value };
}
