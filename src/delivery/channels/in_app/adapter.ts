import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Db } from '../../../store/index.js';
import type { AdapterContext, ChannelAdapter, OutboundMessage, SendResult } from '../../types.js';
import { trackedUrl } from '../../links.js';
import { cta as ctaOf, optionalBool, optionalString } from '../settings.js';
import { insertInboxMessage, type InboxHub } from './inbox.js';

const PROVIDER = 'in_app';

/**
 * The in-app channel (provider `in_app`): `send` stores the message in the customer's inbox and
 * tells the open SSE streams of this process; the browser SDK reads the inbox with the write key.
 * Sending the same outbox message twice stores it once. With `track_clicks`, the CTA URL is a
 * tracked redirect.
 *
 * Settings: `identity_secret` (optional) makes the inbox routes require a `user_hash` =
 * hex HMAC-SHA256(identity_secret, userId) computed by the site's server, so knowing a userId and
 * the public write key is not enough to read someone's inbox.
 */
export class InAppAdapter implements ChannelAdapter {
  readonly name = PROVIDER;
  readonly channelTypes = ['in_app'] as const;

  constructor(private readonly deps: { db: Db; hub: InboxHub }) {}

  async verify(ctx: AdapterContext): Promise<void> {
    optionalString(ctx.settings, PROVIDER, 'identity_secret');
    optionalBool(ctx.settings, PROVIDER, 'track_clicks');
  }

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    let track: boolean;
    try {
      track = optionalBool(ctx.settings, PROVIDER, 'track_clicks') ?? true;
    } catch (err) {
      return { ok: false, retryable: false, code: 'SETTINGS', error: (err as Error).message };
    }
    const content: Record<string, unknown> = { ...message.content };
    const cta = ctaOf(content);
    if (cta && track) content.cta = { ...(content.cta as object), url: trackedUrl(ctx, message, cta.url) };
    const item = await insertInboxMessage(this.deps.db, {
      workspaceId: message.workspaceId,
      id: message.id,
      customerId: message.customerId,
      channel: message.channel,
      messageClass: message.messageClass,
      category: message.category ?? null,
      content,
      createdAt: ctx.now(),
    });
    if (item) this.deps.hub.publish(message.workspaceId, message.customerId, item);
    return { ok: true, providerMessageId: message.id };
  }
}

/** The user_hash a site's server computes for `identity_secret` (hex HMAC-SHA256 of the userId). */
export function userHash(secret: string, userId: string): string {
  return createHmac('sha256', secret).update(userId).digest('hex');
}

export function verifyUserHash(secret: string, userId: string, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(userHash(secret, userId));
  const b = Buffer.from(given.toLowerCase());
  return a.length === b.length && timingSafeEqual(a, b);
}
