import webPush from 'web-push';
import { CairnError, systemClock } from '../../../core/index.js';
import type { Db } from '../../../store/index.js';
import type { AdapterContext, ChannelAdapter, OutboundMessage, SendResult } from '../../types.js';
import { trackedUrl } from '../../links.js';
import { cta as ctaOf, optionalBool, optionalInt, optionalString, requireString, text, type Settings } from '../settings.js';
import { htmlToText } from '../smtp/index.js';
import { callOutbound, CircuitBreaker, DEFAULT_OUTBOUND_POLICY, type OutboundDeps } from '../webhook/index.js';
import { mergedIds } from '../in_app/index.js';
import { deletePushSubscription, listPushSubscriptions, type PushSubscriptionRecord } from './subscriptions.js';

const PROVIDER = 'vapid';
const URGENCY = ['very-low', 'low', 'normal', 'high'] as const;

interface PushSettings {
  subject: string;
  publicKey: string;
  privateKey: string;
  ttl: number;
  urgency: (typeof URGENCY)[number];
  trackClicks: boolean;
  timeoutMs: number;
}

function fail(setting: string, reason: string): never {
  throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting, reason });
}

function read(s: Settings): PushSettings {
  const subject = requireString(s, PROVIDER, 'subject');
  if (!/^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/.test(subject)) fail('subject', `must be a mailto: or https: URL the push service can contact you at, got ${JSON.stringify(subject)}`);
  const publicKey = requireString(s, PROVIDER, 'public_key');
  const privateKey = requireString(s, PROVIDER, 'private_key');
  const bytes = (k: string): number => (/^[A-Za-z0-9_-]+$/.test(k) ? Buffer.from(k, 'base64url').length : -1);
  if (bytes(publicKey) !== 65) fail('public_key', 'must be the base64url (no "=") of a 65-byte P-256 public key; generate a pair with `npx web-push generate-vapid-keys`');
  if (bytes(privateKey) !== 32) fail('private_key', 'must be the base64url (no "=") of a 32-byte P-256 private key');
  const urgency = optionalString(s, PROVIDER, 'urgency') ?? 'normal';
  if (!(URGENCY as readonly string[]).includes(urgency)) fail('urgency', `must be one of ${URGENCY.join(', ')}`);
  return {
    subject,
    publicKey,
    privateKey,
    ttl: optionalInt(s, PROVIDER, 'ttl', 0, 2_419_200) ?? 86_400,
    urgency: urgency as PushSettings['urgency'],
    trackClicks: optionalBool(s, PROVIDER, 'track_clicks') ?? true,
    timeoutMs: optionalInt(s, PROVIDER, 'timeout_ms', 100, 120_000) ?? 10_000,
  };
}

/** The notification payload the service worker receives (JSON). */
export interface PushPayload {
  id: string;
  title: string;
  body: string;
  icon?: string;
  image?: string;
  url?: string;
}

export function pushPayload(message: OutboundMessage, ctx: Pick<AdapterContext, 'publicUrl' | 'sign'>, trackClicks: boolean): PushPayload {
  const c = message.content;
  const cta = ctaOf(c);
  const image = text(c, 'image');
  const icon = text(c, 'icon');
  return {
    id: message.id,
    title: text(c, 'headline') ?? text(c, 'subject') ?? '',
    body: text(c, 'text') ?? htmlToText(text(c, 'body') ?? ''),
    ...(icon ? { icon } : {}),
    ...(image ? { image } : {}),
    ...(cta ? { url: trackClicks ? trackedUrl(ctx, message, cta.url) : cta.url } : {}),
  };
}

/**
 * Web push with VAPID (provider `vapid`). web-push encrypts the payload (aes128gcm) and signs the
 * VAPID JWT; the request itself goes through the outbound policy like every provider call — push
 * endpoints come from browsers, so they are checked against the address guard and must be https.
 *
 * Every subscription of the customer (the message's `to.push`, else the stored ones) gets the
 * notification; a 404 or 410 from the push service means the subscription is gone and it is
 * deleted. The send is ok when at least one subscription accepted it (a retry would notify the
 * others twice); when none did, retryable if any failure was.
 */
export class WebPushAdapter implements ChannelAdapter {
  readonly name = PROVIDER;
  readonly channelTypes = ['push'] as const;

  constructor(private readonly deps: { db: Db; outbound?: OutboundDeps }) {}

  private get outbound(): OutboundDeps {
    return this.deps.outbound ?? { policy: DEFAULT_OUTBOUND_POLICY, breaker: new CircuitBreaker(systemClock), clock: systemClock };
  }

  async verify(ctx: AdapterContext): Promise<void> {
    const s = read(ctx.settings);
    try {
      webPush.getVapidHeaders('https://push.example.com', s.subject, s.publicKey, s.privateKey, 'aes128gcm');
    } catch (err) {
      fail('private_key', `is not usable with public_key: ${(err as Error).message}`);
    }
  }

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    let s: PushSettings;
    try {
      s = read(ctx.settings);
    } catch (err) {
      return { ok: false, retryable: false, code: 'SETTINGS', error: (err as Error).message };
    }
    const subs: readonly PushSubscriptionRecord[] =
      message.to.push && message.to.push.length > 0 ? message.to.push : await listPushSubscriptions(this.deps.db, message.workspaceId, await mergedIds(this.deps.db, message.workspaceId, message.customerId));
    if (subs.length === 0) return { ok: false, retryable: false, code: 'NO_ADDRESS', error: 'the customer has no push subscription' };
    const payload = JSON.stringify(pushPayload(message, ctx, s.trackClicks));
    const failures: Extract<SendResult, { ok: false }>[] = [];
    let delivered = 0;
    let gone = 0;
    for (const sub of subs) {
      let details: webPush.RequestDetails;
      try {
        details = webPush.generateRequestDetails(sub, payload, {
          vapidDetails: { subject: s.subject, publicKey: s.publicKey, privateKey: s.privateKey },
          TTL: s.ttl,
          urgency: s.urgency,
          contentEncoding: 'aes128gcm',
        });
      } catch (err) {
        failures.push({ ok: false, retryable: false, code: 'BAD_SUBSCRIPTION', error: (err as Error).message });
        continue;
      }
      const { result, response } = await callOutbound(details.endpoint, { method: 'POST', headers: details.headers, ...(details.body ? { body: details.body } : {}), timeoutMs: s.timeoutMs, httpsOnly: true }, message.attempt, this.outbound);
      if (result.ok) delivered++;
      else if (response && (response.status === 404 || response.status === 410)) {
        gone++;
        await deletePushSubscription(this.deps.db, message.workspaceId, sub.endpoint);
      } else failures.push(result);
    }
    if (delivered > 0) return { ok: true, providerMessageId: message.id };
    if (failures.length === 0) return { ok: false, retryable: false, code: 'SUBSCRIPTION_GONE', error: `all ${gone} push subscriptions have expired (404/410) and were removed` };
    const retryable = failures.find((f) => f.retryable);
    return retryable ?? (failures[0] as Extract<SendResult, { ok: false }>);
  }
}
