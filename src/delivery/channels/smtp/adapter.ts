import nodemailer, { type Transporter } from 'nodemailer';
import { CairnError } from '../../../core/index.js';
import type { AdapterContext, ChannelAdapter, OutboundMessage, SendResult } from '../../types.js';
import { missingReason, optionalBool, optionalInt, optionalString, requireString, type Settings } from '../settings.js';
import { composeEmail } from './compose.js';

const PROVIDER = 'smtp';

interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  user: string | undefined;
  pass: string | undefined;
  from: string;
  replyTo: string | undefined;
  unsubscribeMailto: string | undefined;
  messageIdDomain: string;
  trackClicks: boolean;
  timeoutMs: number;
  maxConnections: number;
}

function read(s: Settings): SmtpSettings {
  const host = requireString(s, PROVIDER, 'host');
  const from = requireString(s, PROVIDER, 'from');
  const address = /<([^>]+)>\s*$/.exec(from)?.[1] ?? from;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting: 'from', reason: `must be an email address, e.g. "Shop <news@shop.example>", got ${JSON.stringify(from)}` });
  const secure = optionalBool(s, PROVIDER, 'secure');
  const port = optionalInt(s, PROVIDER, 'port', 1, 65535) ?? (secure === true ? 465 : 587);
  const user = optionalString(s, PROVIDER, 'user');
  const pass = optionalString(s, PROVIDER, 'pass');
  if ((user === undefined) !== (pass === undefined)) {
    const setting = user === undefined ? 'user' : 'pass';
    throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting, reason: `${missingReason(s, setting)} (user and pass go together)` });
  }
  const mailto = optionalString(s, PROVIDER, 'unsubscribe_mailto');
  if (mailto !== undefined && !/^[^@\s<>]+@[^@\s<>]+$/.test(mailto)) throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider: PROVIDER, setting: 'unsubscribe_mailto', reason: `must be an email address, got ${JSON.stringify(mailto)}` });
  return {
    host,
    port,
    secure: secure ?? port === 465,
    user,
    pass,
    from,
    replyTo: optionalString(s, PROVIDER, 'reply_to'),
    unsubscribeMailto: mailto,
    messageIdDomain: optionalString(s, PROVIDER, 'message_id_domain') ?? address.slice(at + 1),
    trackClicks: optionalBool(s, PROVIDER, 'track_clicks') ?? true,
    timeoutMs: optionalInt(s, PROVIDER, 'timeout_ms', 1000, 300_000) ?? 30_000,
    maxConnections: optionalInt(s, PROVIDER, 'max_connections', 1, 50) ?? 2,
  };
}

/** SMTP reply codes and transport error codes after which the same message may succeed later. */
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Classifies a nodemailer failure: a 4xx SMTP reply (greylisting, mailbox busy, rate limit) and
 * connection failures are transient; a 5xx reply (unknown mailbox, policy rejection, bad auth) is
 * final — resending the same message cannot change it.
 */
export function classifySmtpError(err: unknown): Extract<SendResult, { ok: false }> {
  const e = err as { responseCode?: unknown; code?: unknown; message?: unknown; response?: unknown };
  const message = String(e.response ?? e.message ?? err);
  if (typeof e.responseCode === 'number') {
    const rc = e.responseCode;
    return { ok: false, retryable: rc >= 400 && rc < 500, code: `SMTP_${rc}`, error: message };
  }
  const code = typeof e.code === 'string' ? e.code : 'SMTP_ERROR';
  return { ok: false, retryable: TRANSIENT_CODES.has(code), code, error: message };
}

/**
 * Email over SMTP with nodemailer (provider `smtp`). One pooled transport per distinct settings;
 * the Message-ID is derived from the outbox id, so a retry of the same message carries the same
 * id and receiving systems can recognise it. Marketing and service mail carries
 * `List-Unsubscribe` (the signed https link, and a mailto when `unsubscribe_mailto` is set) and
 * `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): a mailbox provider's
 * unsubscribe button posts to the link and Cairn withdraws the consent.
 */
export class SmtpAdapter implements ChannelAdapter {
  readonly name = PROVIDER;
  readonly channelTypes = ['email'] as const;
  private readonly transports = new Map<string, Transporter>();

  async verify(ctx: AdapterContext): Promise<void> {
    read(ctx.settings);
  }

  private transport(s: SmtpSettings): Transporter {
    const key = JSON.stringify([s.host, s.port, s.secure, s.user, s.pass, s.timeoutMs, s.maxConnections]);
    let t = this.transports.get(key);
    if (!t) {
      t = nodemailer.createTransport({
        pool: true,
        maxConnections: s.maxConnections,
        host: s.host,
        port: s.port,
        secure: s.secure,
        ...(s.user !== undefined ? { auth: { user: s.user, pass: s.pass ?? '' } } : {}),
        connectionTimeout: s.timeoutMs,
        greetingTimeout: s.timeoutMs,
        socketTimeout: s.timeoutMs,
      });
      this.transports.set(key, t);
    }
    return t;
  }

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    let s: SmtpSettings;
    try {
      s = read(ctx.settings);
    } catch (err) {
      return { ok: false, retryable: false, code: 'SETTINGS', error: (err as Error).message };
    }
    const to = message.to.email;
    if (!to) return { ok: false, retryable: false, code: 'NO_ADDRESS', error: 'the customer has no email address' };
    const mail = composeEmail(message, ctx, { trackClicks: s.trackClicks });
    const headers: Record<string, string> = {};
    if (mail.unsubscribeUrl) {
      const targets = [`<${mail.unsubscribeUrl}>`];
      if (s.unsubscribeMailto) targets.push(`<mailto:${s.unsubscribeMailto}?subject=unsubscribe>`);
      headers['List-Unsubscribe'] = targets.join(', ');
      headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
    }
    headers['X-Cairn-Message'] = message.id;
    try {
      const info = (await this.transport(s).sendMail({
        from: s.from,
        to,
        ...(s.replyTo ? { replyTo: s.replyTo } : {}),
        subject: mail.subject,
        html: mail.html,
        text: mail.text,
        messageId: `<${message.id}@${s.messageIdDomain}>`,
        headers,
      })) as { messageId?: string; rejected?: unknown[]; accepted?: unknown[] };
      if (Array.isArray(info.accepted) && info.accepted.length === 0) return { ok: false, retryable: false, code: 'SMTP_REJECTED', error: `the server accepted no recipient (${to})` };
      return { ok: true, providerMessageId: info.messageId ?? `<${message.id}@${s.messageIdDomain}>` };
    } catch (err) {
      return classifySmtpError(err);
    }
  }

  async close(): Promise<void> {
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
  }
}
