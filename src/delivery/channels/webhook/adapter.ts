import { CairnError, systemClock } from '../../../core/index.js';
import type { AdapterContext, CallbackRequest, ChannelAdapter, DeliveryEvent, OutboundMessage, SendResult } from '../../types.js';
import { optionalInt, optionalString, requireString, type Settings } from '../settings.js';
import { CircuitBreaker } from './breaker.js';
import { callOutbound, type OutboundDeps } from './call.js';
import { checkUrl, DEFAULT_OUTBOUND_POLICY, OutboundRefusedError } from './guard.js';
import { signWebhook, verifyWebhookSignature } from './signature.js';

const PROVIDER = 'http';

/** Event types a receiver may report back through the callback URL. */
const CALLBACK_TYPES = new Set<DeliveryEvent['type']>(['delivered', 'bounced', 'opened', 'clicked', 'complained', 'failed', 'unsubscribed']);

interface WebhookSettings {
  url: string | undefined;
  secret: string;
  timeoutMs: number;
}

function read(settings: Settings): WebhookSettings {
  return {
    url: optionalString(settings, PROVIDER, 'url'),
    secret: requireString(settings, PROVIDER, 'secret'),
    timeoutMs: optionalInt(settings, PROVIDER, 'timeout_ms', 100, 120_000) ?? 10_000,
  };
}

/**
 * The webhook channel (provider `http`): POSTs the message as JSON to the channel's `url` (or the
 * message's `to.url`), signed with HMAC-SHA256 (Cairn-Signature, see signature.ts), with the outbox
 * id as `Idempotency-Key` so a receiver can drop a retry of what it already processed. One attempt
 * per `send`; the outbox retries on `retryable` (see retry.ts), the breaker and the address guard
 * are those of every outbound call (call.ts).
 *
 * Receivers may report outcomes back to /v1/channels/CHANNEL/callback?workspace=WS, signed the
 * same way with the same secret: `{"events":[{"type":"delivered","messageId":"<outbox id>"}]}`.
 */
export class WebhookAdapter implements ChannelAdapter {
  readonly name = PROVIDER;
  readonly channelTypes = ['webhook'] as const;

  constructor(private readonly deps: OutboundDeps = { policy: DEFAULT_OUTBOUND_POLICY, breaker: new CircuitBreaker(systemClock), clock: systemClock }) {}

  async verify(ctx: AdapterContext): Promise<void> {
    const s = read(ctx.settings);
    if (s.url !== undefined) {
      try {
        checkUrl(s.url, this.deps.policy);
      } catch (err) {
        if (err instanceof OutboundRefusedError) throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting: 'url', reason: err.reason });
        throw err;
      }
    }
  }

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    let s: WebhookSettings;
    try {
      s = read(ctx.settings);
    } catch (err) {
      return { ok: false, retryable: false, code: 'SETTINGS', error: (err as Error).message };
    }
    const url = message.to.url ?? s.url;
    if (url === undefined) return { ok: false, retryable: false, code: 'NO_ADDRESS', error: 'no target URL: set url in the channel settings or give the message a to.url' };
    const now = ctx.now();
    const body = JSON.stringify({
      id: message.id,
      key: message.key,
      workspace: message.workspaceId,
      customer: message.customerId,
      channel: message.channel,
      class: message.messageClass,
      ...(message.category !== undefined ? { category: message.category } : {}),
      attempt: message.attempt,
      sentAt: new Date(now).toISOString(),
      content: message.content,
    });
    const { result } = await callOutbound(
      url,
      {
        method: 'POST',
        body,
        timeoutMs: s.timeoutMs,
        headers: {
          'content-type': 'application/json',
          'cairn-signature': signWebhook(s.secret, body, now),
          'idempotency-key': message.id,
          'cairn-message-key': message.key,
          'cairn-attempt': String(message.attempt),
        },
      },
      message.attempt,
      this.deps,
    );
    return result.ok ? { ok: true, providerMessageId: message.id } : result;
  }

  parseCallback(req: CallbackRequest, ctx: AdapterContext): DeliveryEvent[] {
    const { secret } = read(ctx.settings);
    const raw = req.rawBody ?? '';
    const check = verifyWebhookSignature(secret, req.headers['cairn-signature'], raw, ctx.now());
    if (!check.ok) throw new CairnError('CAIRN_ERR_CALLBACK_SIGNATURE', { channel: req.query.channel ?? PROVIDER, reason: check.reason });
    const body = req.body as { events?: unknown } | undefined;
    if (!body || typeof body !== 'object' || !Array.isArray(body.events)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'body.events', reason: 'expected {"events": [{"type": "delivered", "messageId": "…"}]}' });
    return body.events.map((e: unknown, i: number): DeliveryEvent => {
      const ev = (e ?? {}) as { type?: unknown; messageId?: unknown; at?: unknown; detail?: unknown };
      if (typeof ev.type !== 'string' || !CALLBACK_TYPES.has(ev.type as DeliveryEvent['type'])) {
        throw new CairnError('CAIRN_ERR_VALIDATION', { path: `body.events[${i}].type`, reason: `expected one of ${[...CALLBACK_TYPES].join(', ')}` });
      }
      if (typeof ev.messageId !== 'string' || ev.messageId === '') throw new CairnError('CAIRN_ERR_VALIDATION', { path: `body.events[${i}].messageId`, reason: 'expected the id Cairn sent (the Idempotency-Key header)' });
      const at = typeof ev.at === 'string' ? Date.parse(ev.at) : NaN;
      return {
        type: ev.type as DeliveryEvent['type'],
        messageId: ev.messageId,
        at: Number.isFinite(at) ? at : ctx.now(),
        ...(ev.detail && typeof ev.detail === 'object' ? { detail: ev.detail as Record<string, unknown> } : {}),
      };
    });
  }
}
