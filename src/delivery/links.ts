import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CairnError, type Clock } from '../core/index.js';
import type { Db } from '../store/index.js';
import type { AdapterContext, OutboundMessage } from './types.js';

/**
 * Signed links in messages: the unsubscribe link (GET page and RFC 8058 one-click POST at
 * /v1/unsubscribe/TOKEN) and tracked redirects (/v1/r/TOKEN → 302 to the target, recording a
 * click). A token is `base64url(JSON payload).base64url(HMAC-SHA256(key, first part))`:
 *
 * - the payload names its workspace, so the route can pick the key before trusting anything else;
 * - the key is per workspace: HMAC(CAIRN_LINK_SECRET, "cairn-links:" + workspace) when the secret
 *   is configured, else a random 32-byte key created on first use and kept in `link_secrets`
 *   (every process on the same database signs and verifies alike; rotating means deleting the row,
 *   which breaks links already sent);
 * - a token that does not verify is refused with CAIRN_ERR_LINK_INVALID and never redirected:
 *   the redirect target is inside the signed payload, so there is no open redirect.
 */

/** An unsubscribe link's payload: who, from which channel, for which message class. */
export interface UnsubscribePayload {
  k: 'u';
  /** Workspace id. */
  w: string;
  /** Customer id. */
  c: string;
  /** Channel name (the consent ledger's channel). */
  ch: string;
  /** Message class; the workspace's class purpose is what the customer withdraws. */
  cls: string;
  /** Outbox id of the message that carried the link. */
  m?: string;
}

/** A tracked link's payload. */
export interface RedirectPayload {
  k: 'r';
  w: string;
  /** Outbox id. */
  m: string;
  /** Target URL (http or https). */
  u: string;
  c?: string;
  ch?: string;
}

export type LinkPayload = UnsubscribePayload | RedirectPayload;

/** Signs a token body; AdapterContext.sign has this shape. */
export type SignFn = (payload: string) => string;

/** HMAC-SHA256 of `payload` under `key`, base64url (43 characters). */
export function hmacSign(key: Buffer | string, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}

export function encodeToken(payload: LinkPayload, sign: SignFn): string {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${body}.${sign(body)}`;
}

const MAX_TOKEN = 8192;

/**
 * Reads a token without trusting it: the workspace it claims and the signed part. Throws
 * CAIRN_ERR_LINK_INVALID when it is not even shaped like one.
 */
export function peekToken(token: string): { workspace: string; body: string; sig: string; payload: LinkPayload } {
  if (token.length > MAX_TOKEN) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the token is too long' });
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1 || token.indexOf('.', dot + 1) !== -1) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the token is not of the form payload.signature' });
  const body = token.slice(0, dot);
  const sig = token.slice(dot + 1);
  if (!/^[A-Za-z0-9_-]+$/.test(body) || !/^[A-Za-z0-9_-]+$/.test(sig)) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the token has characters outside base64url' });
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the payload is not readable' });
  }
  if (!isPayload(payload)) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the payload lacks its fields' });
  return { workspace: payload.w, body, sig, payload };
}

function isPayload(p: unknown): p is LinkPayload {
  if (!p || typeof p !== 'object') return false;
  const o = p as Record<string, unknown>;
  const str = (k: string): boolean => typeof o[k] === 'string' && o[k] !== '';
  if (!str('w')) return false;
  if (o.k === 'u') return str('c') && str('ch') && str('cls');
  if (o.k === 'r') return str('m') && str('u');
  return false;
}

/**
 * An absolute http(s) URL without control characters or white space: what a tracked link may
 * redirect to (anything else could not be set as a Location header, or is not a web page).
 */
function isRedirectTarget(u: string): boolean {
  if (!/^https?:\/\//i.test(u) || /[\u0000-\u0020\u007f]/.test(u)) return false;
  try {
    new URL(u);
    return true;
  } catch {
    return false;
  }
}

/** Checks a token's signature with the workspace's signer; returns the payload or throws CAIRN_ERR_LINK_INVALID. */
export function verifyToken(token: string, sign: SignFn): LinkPayload {
  const { body, sig, payload } = peekToken(token);
  const expected = Buffer.from(sign(body), 'utf8');
  const got = Buffer.from(sig, 'utf8');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the signature does not match (the link was changed or signed with another secret)' });
  if (payload.k === 'r' && !isRedirectTarget(payload.u)) throw new CairnError('CAIRN_ERR_LINK_INVALID', { reason: 'the target is not an http(s) URL' });
  return payload;
}

/** The unsubscribe URL for a message (the customer, the channel, the class). */
export function unsubscribeUrl(ctx: Pick<AdapterContext, 'publicUrl' | 'sign'>, message: Pick<OutboundMessage, 'id' | 'workspaceId' | 'customerId' | 'channel' | 'messageClass'>): string {
  const token = encodeToken({ k: 'u', w: message.workspaceId, c: message.customerId, ch: message.channel, cls: message.messageClass, m: message.id }, ctx.sign);
  return `${ctx.publicUrl}/v1/unsubscribe/${token}`;
}

/** A tracked link to `target` for a message; non-http(s) targets (mailto:, tel:) are returned unchanged. */
export function trackedUrl(ctx: Pick<AdapterContext, 'publicUrl' | 'sign'>, message: Pick<OutboundMessage, 'id' | 'workspaceId' | 'customerId' | 'channel'>, target: string): string {
  if (!isRedirectTarget(target)) return target;
  const token = encodeToken({ k: 'r', w: message.workspaceId, m: message.id, u: target, c: message.customerId, ch: message.channel }, ctx.sign);
  return `${ctx.publicUrl}/v1/r/${token}`;
}

/**
 * The per-workspace signing keys (see the module comment). Cached for the life of the process.
 */
export class LinkSigner {
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly secret: string | undefined,
  ) {}

  async keyFor(workspaceId: string): Promise<Buffer> {
    const hit = this.keys.get(workspaceId);
    if (hit) return hit;
    let key: Buffer;
    if (this.secret !== undefined) key = createHmac('sha256', this.secret).update(`cairn-links:${workspaceId}`).digest();
    else {
      await this.db
        .insertInto('link_secrets')
        .values({ workspace_id: workspaceId, secret: randomBytes(32).toString('base64url'), created_at: this.clock.now() })
        .onConflict((oc) => oc.column('workspace_id').doNothing())
        .execute();
      const row = await this.db.selectFrom('link_secrets').select('secret').where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow();
      key = Buffer.from(row.secret, 'base64url');
    }
    this.keys.set(workspaceId, key);
    return key;
  }

  /** The `sign` of an AdapterContext for this workspace. */
  async signerFor(workspaceId: string): Promise<SignFn> {
    const key = await this.keyFor(workspaceId);
    return (payload) => hmacSign(key, payload);
  }

  /** Verifies a token against the key of the workspace it names. */
  async verify(token: string): Promise<LinkPayload> {
    const { workspace } = peekToken(token);
    return verifyToken(token, await this.signerFor(workspace));
  }
}
