import type { FastifyRequest } from 'fastify';
import { CairnError } from '../core/index.js';
import type { KeyResolver, Principal, Scope } from '../governance/index.js';

/**
 * Reads the API key the way Segment clients send it: HTTP Basic with the write key as user and an
 * empty password, or `writeKey` in the JSON body; server keys also as `Authorization: Bearer`.
 */
export function keyFromRequest(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h) {
    const [scheme, value] = h.split(/\s+/, 2);
    if (scheme && value && /^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const user = decoded.split(':', 1)[0];
      if (user) return user;
    }
    if (scheme && value && /^bearer$/i.test(scheme)) return value;
  }
  const body = req.body as { writeKey?: unknown } | undefined;
  if (body && typeof body === 'object' && !Array.isArray(body) && typeof body.writeKey === 'string') return body.writeKey;
  return undefined;
}

export async function authenticate(req: FastifyRequest, keys: KeyResolver, scope: Scope): Promise<Principal> {
  const key = keyFromRequest(req);
  if (!key) throw new CairnError('CAIRN_ERR_AUTH_MISSING');
  const p = await keys.resolve(key);
  if (!p) throw new CairnError('CAIRN_ERR_AUTH_INVALID');
  if (!p.scopes.has(scope)) throw new CairnError('CAIRN_ERR_AUTH_SCOPE', { action: scope === 'track' ? 'send events' : `use ${scope}` });
  return p;
}
