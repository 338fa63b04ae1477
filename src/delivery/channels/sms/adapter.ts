import { CairnError, systemClock } from '../../../core/index.js';
import type { AdapterContext, CallbackRequest, ChannelAdapter, DeliveryEvent, OutboundMessage, SendResult } from '../../types.js';
import { trackedUrl } from '../../links.js';
import { cta as ctaOf, optionalBool, optionalInt, optionalString, requireString, requireUrl, text, type Settings } from '../settings.js';
import { htmlToText } from '../smtp/index.js';
import { callOutbound, CircuitBreaker, DEFAULT_OUTBOUND_POLICY, type OutboundDeps } from '../webhook/index.js';
import { keywordOf } from './keywords.js';
import { verifyTwilioSignature } from './signature.js';

const PROVIDER = 'twilio';

interface SmsSettings {
  baseUrl: string;
  accountSid: string;
  authToken: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  statusCallback: boolean;
  trackClicks: boolean;
  timeoutMs: number;
}

function read(s: Settings): SmsSettings {
  const from = optionalString(s, PROVIDER, 'from');
  const messagingServiceSid = optionalString(s, PROVIDER, 'messaging_service_sid');
  if (from === undefined && messagingServiceSid === undefined) throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting: 'from', reason: 'is missing (give the sending number, or messaging_service_sid)' });
  const accountSid = requireString(s, PROVIDER, 'account_sid');
  if (!/^[A-Za-z0-9_-]+$/.test(accountSid)) throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting: 'account_sid', reason: `must be letters and digits, got ${JSON.stringify(accountSid)}` });
  return {
    baseUrl: s.base_url === undefined ? 'https://api.twilio.com' : requireUrl(s, PROVIDER, 'base_url'),
    accountSid,
    authToken: requireString(s, PROVIDER, 'auth_token'),
    from,
    messagingServiceSid,
    statusCallback: optionalBool(s, PROVIDER, 'status_callback') ?? true,
    trackClicks: optionalBool(s, PROVIDER, 'track_clicks') ?? false,
    timeoutMs: optionalInt(s, PROVIDER, 'timeout_ms', 100, 120_000) ?? 10_000,
  };
}

/** Twilio message statuses → normalized delivery events; queued/accepted/sending/sent are progress, not outcomes. */
const STATUS_EVENT: Readonly<Record<string, DeliveryEvent['type'] | null>> = {
  accepted: null,
  scheduled: null,
  queued: null,
  sending: null,
  sent: null,
  delivered: 'delivered',
  undelivered: 'bounced',
  failed: 'failed',
  read: 'opened',
  canceled: 'failed',
};

/** The SMS text of rendered content: `text` or the body without markup, then the CTA link. */
export function smsText(message: OutboundMessage, ctx: Pick<AdapterContext, 'publicUrl' | 'sign'>, trackClicks: boolean): string {
  const c = message.content;
  const main = text(c, 'text') ?? htmlToText(text(c, 'body') ?? text(c, 'headline') ?? '');
  const cta = ctaOf(c);
  if (!cta) return main;
  const url = trackClicks ? trackedUrl(ctx, message, cta.url) : cta.url;
  return main.includes(cta.url) ? main.replace(cta.url, url) : `${main}\n${url}`;
}

/**
 * SMS over a Twilio-style HTTP API (provider `twilio`; `base_url` points it at Twilio or any
 * compatible API): one form-encoded POST to /2010-04-01/Accounts/SID/Messages.json with Basic
 * auth, through the outbound policy (address guard, breaker, retry classification).
 *
 * Callbacks at /v1/channels/CHANNEL/callback?workspace=WS are verified with X-Twilio-Signature:
 * status callbacks (delivered, undelivered → bounced, failed) and inbound messages, where the
 * opt-out keywords (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT …) become `unsubscribed` and
 * START/UNSTOP/YES `resubscribed` for the sender's number; the route turns those into consent.
 *
 * A send whose answer is lost (timeout after Twilio accepted it) is retried and may be delivered
 * twice: the Messages API takes no idempotency key.
 */
export class TwilioSmsAdapter implements ChannelAdapter {
  readonly name = PROVIDER;
  readonly channelTypes = ['sms'] as const;
  readonly callbackReply = { contentType: 'text/xml', body: '<?xml version="1.0" encoding="UTF-8"?><Response></Response>' };

  constructor(private readonly deps: OutboundDeps = { policy: DEFAULT_OUTBOUND_POLICY, breaker: new CircuitBreaker(systemClock), clock: systemClock }) {}

  async verify(ctx: AdapterContext): Promise<void> {
    read(ctx.settings);
  }

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    let s: SmsSettings;
    try {
      s = read(ctx.settings);
    } catch (err) {
      return { ok: false, retryable: false, code: 'SETTINGS', error: (err as Error).message };
    }
    const to = message.to.phone;
    if (!to) return { ok: false, retryable: false, code: 'NO_ADDRESS', error: 'the customer has no phone number' };
    const body = smsText(message, ctx, s.trackClicks);
    if (body === '') return { ok: false, retryable: false, code: 'EMPTY', error: 'the rendered message has no text' };
    const form = new URLSearchParams({ To: to, Body: body });
    if (s.messagingServiceSid) form.set('MessagingServiceSid', s.messagingServiceSid);
    if (s.from) form.set('From', s.from);
    if (s.statusCallback) form.set('StatusCallback', `${ctx.publicUrl}/v1/channels/${encodeURIComponent(message.channel)}/callback?${new URLSearchParams({ workspace: message.workspaceId, m: message.id })}`);
    const { result, response } = await callOutbound(
      `${s.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(s.accountSid)}/Messages.json`,
      {
        method: 'POST',
        body: form.toString(),
        timeoutMs: s.timeoutMs,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(`${s.accountSid}:${s.authToken}`).toString('base64')}`,
        },
      },
      message.attempt,
      this.deps,
    );
    const json = parseJson(response?.body);
    if (!result.ok) {
      // Twilio explains a refusal in the body: {"code": 21211, "message": "The 'To' number … is not a valid phone number."}
      if (json && typeof json.message === 'string') return { ...result, error: `${result.error.split(':')[0]}: ${json.code ?? ''} ${json.message}`.trim() };
      return result;
    }
    return { ok: true, ...(json && typeof json.sid === 'string' ? { providerMessageId: json.sid } : {}) };
  }

  parseCallback(req: CallbackRequest, ctx: AdapterContext): DeliveryEvent[] {
    const { authToken } = read(ctx.settings);
    const params = formParams(req.body);
    if (!req.url || !verifyTwilioSignature(authToken, req.url, params, req.headers['x-twilio-signature'])) {
      throw new CairnError('CAIRN_ERR_CALLBACK_SIGNATURE', { channel: req.query.channel ?? PROVIDER, reason: req.headers['x-twilio-signature'] ? 'X-Twilio-Signature does not match (check auth_token and CAIRN_PUBLIC_URL)' : 'no X-Twilio-Signature header' });
    }
    const at = ctx.now();
    const providerMessageId = params.MessageSid ?? params.SmsSid;
    const messageId = req.query.m;
    const status = params.MessageStatus ?? params.SmsStatus;
    // A status callback names our message (m) and carries MessageStatus; an inbound message has a
    // Body from the customer and no message of ours.
    if (status !== undefined && params.Body === undefined) {
      const type = STATUS_EVENT[status.toLowerCase()];
      if (!type) return [];
      return [{ type, at, ...(messageId ? { messageId } : {}), ...(providerMessageId ? { providerMessageId } : {}), detail: { status, ...(params.ErrorCode ? { errorCode: params.ErrorCode } : {}) } }];
    }
    const from = params.From;
    if (!from) throw new CairnError('CAIRN_ERR_VALIDATION', { path: 'body.From', reason: 'an inbound message needs the sender number' });
    const body = params.Body ?? '';
    // Twilio's Advanced Opt-Out names the keyword class it matched; fall back to our own list.
    const optType = params.OptOutType?.toUpperCase();
    const kw = optType === 'STOP' ? 'opt_out' : optType === 'START' ? 'opt_in' : optType === 'HELP' ? 'help' : keywordOf(body);
    const type: DeliveryEvent['type'] = kw === 'opt_out' ? 'unsubscribed' : kw === 'opt_in' ? 'resubscribed' : 'inbound';
    return [{ type, at, address: { phone: from }, ...(providerMessageId ? { providerMessageId } : {}), detail: { body: body.slice(0, 1600), ...(kw ? { keyword: body.trim().toUpperCase() } : {}), ...(params.To ? { to: params.To } : {}) } }];
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A form body as a string map (the route parses form-encoded bodies into one; JSON objects are accepted too). */
function formParams(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}
