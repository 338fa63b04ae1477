import type { AdapterContext, OutboundMessage } from '../../types.js';
import { trackedUrl, unsubscribeUrl } from '../../links.js';
import { cta as ctaOf, text } from '../settings.js';

/** An email ready for the transport: subject, HTML and its text alternative, and the unsubscribe link. */
export interface ComposedEmail {
  subject: string;
  html: string;
  text: string;
  /** The signed https unsubscribe URL; absent for transactional mail. */
  unsubscribeUrl?: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/**
 * A plain-text rendering of simple email HTML for the text/plain alternative: block ends become
 * line breaks, links keep their target in brackets, tags go, entities are decoded.
 */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)[\s\S]*?<\/\1>/gi, '')
    .replace(/<a\s[^>]*href\s*=\s*["']([^"']+)["'][^>]*>([\s\S]*?)<\/a>/gi, (_, href: string, label: string) => {
      const l = label.replace(/<[^>]+>/g, '').trim();
      return l && l !== href ? `${l} [${href}]` : href;
    })
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr|table|blockquote)>/gi, '\n\n')
    .replace(/<li[^>]*>/gi, '- ')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Rewrites every http(s) href in HTML to a tracked redirect. */
function trackLinks(html: string, track: (url: string) => string): string {
  return html.replace(/(<a\s[^>]*?href\s*=\s*)(["'])(https?:\/\/[^"']+)\2/gi, (_, pre: string, q: string, url: string) => `${pre}${q}${escapeHtml(track(url.replace(/&amp;/g, '&')))}${q}`);
}

/**
 * Builds the email from rendered content: `subject` (falls back to `headline`), a hidden
 * `preheader`, `headline`, `image`, `body` (HTML as the template rendered it), the `cta` as a
 * button, and for non-transactional mail a footer with the unsubscribe link. With `trackClicks`,
 * links in the body and the CTA go through signed redirects (/v1/r/…); the unsubscribe link never does.
 */
export function composeEmail(message: OutboundMessage, ctx: Pick<AdapterContext, 'publicUrl' | 'sign'>, opts: { trackClicks: boolean }): ComposedEmail {
  const c = message.content;
  const subject = text(c, 'subject') ?? text(c, 'headline') ?? '';
  const preheader = text(c, 'preheader');
  const headline = text(c, 'headline');
  const image = text(c, 'image');
  const body = text(c, 'body') ?? '';
  const cta = ctaOf(c);
  const track = (u: string): string => (opts.trackClicks ? trackedUrl(ctx, message, u) : u);
  const unsub = message.messageClass === 'transactional' ? undefined : unsubscribeUrl(ctx, message);

  const parts: string[] = [];
  if (preheader) parts.push(`<div style="display:none;max-height:0;overflow:hidden">${escapeHtml(preheader)}</div>`);
  if (headline) parts.push(`<h1>${escapeHtml(headline)}</h1>`);
  if (image) parts.push(`<p><img src="${escapeHtml(image)}" alt="${escapeHtml(text(c, 'image_alt') ?? '')}" style="max-width:100%"></p>`);
  const shownBody = opts.trackClicks ? trackLinks(body, track) : body;
  if (body) parts.push(`<div>${shownBody}</div>`);
  if (cta) parts.push(`<p><a href="${escapeHtml(track(cta.url))}" style="display:inline-block;padding:10px 18px;background:#1a56db;color:#fff;text-decoration:none;border-radius:4px">${escapeHtml(cta.label)}</a></p>`);
  if (unsub) parts.push(`<hr><p style="font-size:12px;color:#666">Don't want these emails? <a href="${escapeHtml(unsub)}">Unsubscribe</a>.</p>`);
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(subject)}</title></head>\n<body>\n${parts.join('\n')}\n</body></html>\n`;

  const textParts: string[] = [];
  if (headline) textParts.push(headline);
  const plainBody = text(c, 'text') ?? htmlToText(shownBody);
  if (plainBody) textParts.push(plainBody);
  if (cta) textParts.push(`${cta.label}: ${track(cta.url)}`);
  if (unsub) textParts.push(`Unsubscribe: ${unsub}`);
  return { subject, html, text: `${textParts.join('\n\n')}\n`, ...(unsub ? { unsubscribeUrl: unsub } : {}) };
}
