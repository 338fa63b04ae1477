import { CairnError } from '../core/index.js';
import type { Workspace } from '../governance/index.js';
import { findCustomerId, parseIdentity } from '../profiles/index.js';
import type { Db } from '../store/index.js';

/**
 * The live profile a reference names — a profile id, or an identity as `kind:value`
 * (`email:ana@example.com`) — following merges. Every route that takes a customer reads it here,
 * so a bad or unknown reference gets the same answer everywhere: CAIRN_ERR_BAD_IDENTITY (400) or
 * CAIRN_ERR_PROFILE_NOT_FOUND (404). `where` names the field in the error when it is not the path.
 */
export async function customerOfRef(db: Db, ws: Workspace, ref: string, where?: string): Promise<string> {
  let id: string | undefined;
  if (ref.includes(':')) {
    const identity = parseIdentity(ws.model, ref);
    if (!identity) throw new CairnError('CAIRN_ERR_BAD_IDENTITY', { identity: where === undefined ? ref : `${ref} (at ${where})` });
    id = await findCustomerId(db, ws.id, identity);
  } else id = await findCustomerId(db, ws.id, { id: ref });
  if (!id) throw new CairnError('CAIRN_ERR_PROFILE_NOT_FOUND', { identity: ref });
  return id;
}
