import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, in the shape Stripe made familiar:
 *
 *     Cairn-Signature: t=1764151200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *
 * `v1` is hex HMAC-SHA256 with the channel's secret over `${t}.${body}`, where `t` is Unix
 * seconds. Receivers recompute it over the raw body and refuse a `t` older than their tolerance,
 * which makes a captured request useless for replay later. Several `v1=` values may appear while a
 * secret is being rotated; one matching is enough.
 */
export const SIGNATURE_HEADER = 'cairn-signature';

/** The signature header value for `body` sent at `nowMs`. */
export function signWebhook(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks a Cairn-Signature header (for receivers, and for callbacks posted back to Cairn).
 * `toleranceMs` bounds how old (or how far in the future) `t` may be. Default 5 minutes.
 */
export function verifyWebhookSignature(secret: string, header: string | string[] | undefined, body: string, nowMs: number, toleranceMs = 5 * 60_000): SignatureCheck {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return { ok: false, reason: 'no Cairn-Signature header' };
  let t: number | undefined;
  const sigs: string[] = [];
  for (const part of h.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v && /^\d+$/.test(v)) t = Number(v);
    else if (k === 'v1' && v) sigs.push(v);
  }
  if (t === undefined || sigs.length === 0) return { ok: false, reason: 'the header needs t=<seconds>,v1=<hex>' };
  if (Math.abs(nowMs - t * 1000) > toleranceMs) return { ok: false, reason: `the timestamp is outside the ${Math.round(toleranceMs / 1000)} s tolerance` };
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'), 'utf8');
  const match = sigs.some((s) => {
    const got = Buffer.from(s, 'utf8');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  return match ? { ok: true } : { ok: false, reason: 'the signature does not match the body' };
}
