import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Twilio's request signature (X-Twilio-Signature): base64 HMAC-SHA1 with the account's auth token
 * over the full URL the provider called (scheme, host, path and query) followed by every POST
 * parameter, sorted by name, as name + value with no separators.
 *
 * @example twilioSignature(token, 'https://cx.example.com/v1/channels/sms/callback?workspace=ws', { Body: 'STOP', From: '+4915…' })
 */
export function twilioSignature(authToken: string, url: string, params: Readonly<Record<string, string>>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

export function verifyTwilioSignature(authToken: string, url: string, params: Readonly<Record<string, string>>, header: string | string[] | undefined): boolean {
  const got = Array.isArray(header) ? header[0] : header;
  if (!got) return false;
  const expected = Buffer.from(twilioSignature(authToken, url, params));
  const actual = Buffer.from(got);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
