import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock, isCairnError } from '../../../core/index.js';
import type { AdapterContext, CallbackRequest, OutboundMessage } from '../../types.js';
import { hmacSign, verifyToken } from '../../links.js';
import { CircuitBreaker } from '../webhook/index.js';
import { FakeHttpProvider } from '../../../../test/helpers/providers.js';
import { TwilioSmsAdapter, keywordOf, twilioSignature } from './index.js';

/**
 * The SMS adapter against a local HTTP server playing a Twilio-style provider: the request it
 * gets (path, Basic auth, form fields, status callback URL), how provider errors are answered,
 * and the callbacks — signature check, status normalization, STOP/START keywords.
 */

const clock = new VirtualClock('2026-11-23T10:00:00.000Z');
const sign = (p: string): string => hmacSign(Buffer.alloc(32, 1), p);
const TOKEN = 'auth-token-0123456789';

describe('Twilio-style SMS adapter against a local provider', () => {
  const provider = new FakeHttpProvider();
  let adapter: TwilioSmsAdapter;
  let ctx: AdapterContext;
  beforeAll(() => provider.start());
  afterAll(() => provider.stop());
  beforeEach(() => {
    provider.reset();
    adapter = new TwilioSmsAdapter({ policy: { allowPrivate: true }, breaker: new CircuitBreaker(clock), clock, backoff: { random: () => 0 } });
    ctx = { settings: { base_url: provider.url, account_sid: 'AC123', auth_token: TOKEN, from: '+15550001111', track_clicks: true }, publicUrl: 'https://cx.example.com', sign, now: () => clock.now() };
  });

  const message = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
    id: '0193a1b2-0000-7000-8000-0000000000aa',
    key: 'j:i:s',
    workspaceId: 'ws1',
    customerId: 'c1',
    channel: 'sms',
    channelType: 'sms',
    messageClass: 'marketing',
    to: { phone: '+4915112345678' },
    content: { body: '<p>Your order ships today.</p>', cta: { label: 'Track', url: 'https://shop.example/track/1' } },
    attempt: 1,
    ...over,
  });

  it('POSTs one form-encoded message with Basic auth and a status callback, and returns the provider sid', async () => {
    provider.answers.push((res) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sid: 'SM0001', status: 'queued' })));
    const r = await adapter.send(message(), ctx);
    expect(r).toEqual({ ok: true, providerMessageId: 'SM0001' });
    expect(provider.seen).toHaveLength(1);
    const req = provider.seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/2010-04-01/Accounts/AC123/Messages.json');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`AC123:${TOKEN}`).toString('base64')}`);
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = Object.fromEntries(new URLSearchParams(req.body));
    expect(form.To).toBe('+4915112345678');
    expect(form.From).toBe('+15550001111');
    expect(form.StatusCallback).toBe(`https://cx.example.com/v1/channels/sms/callback?workspace=ws1&m=${message().id}`);
    const [text, link] = (form.Body as string).split('\n');
    expect(text).toBe('Your order ships today.');
    const token = /^https:\/\/cx\.example\.com\/v1\/r\/(.+)$/.exec(link as string)?.[1] as string;
    expect(verifyToken(token, sign)).toMatchObject({ k: 'r', u: 'https://shop.example/track/1', m: message().id });
  });

  it('answers a provider refusal (400 with a Twilio error) as final, with the provider message', async () => {
    provider.answers.push((res) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 21211, message: "The 'To' number is not a valid phone number." })));
    const r = await adapter.send(message(), ctx);
    expect(r).toMatchObject({ ok: false, retryable: false, code: 'HTTP_400' });
    expect(!r.ok && r.error).toContain('21211');
  });

  it('answers 429 and 503 as retryable', async () => {
    provider.answers.push((res) => res.writeHead(429, { 'retry-after': '3' }).end(), (res) => res.writeHead(503).end());
    expect(await adapter.send(message(), ctx)).toMatchObject({ ok: false, retryable: true, retryAfterMs: 3000 });
    expect(await adapter.send(message(), ctx)).toMatchObject({ ok: false, retryable: true, code: 'HTTP_503' });
  });

  it('does not call the provider for a customer without a phone number', async () => {
    expect(await adapter.send(message({ to: {} }), ctx)).toMatchObject({ ok: false, retryable: false, code: 'NO_ADDRESS' });
    expect(provider.seen).toHaveLength(0);
  });

  it('verify() names missing settings', async () => {
    const setting = async (settings: Record<string, string>): Promise<unknown> => {
      const e = await adapter.verify({ ...ctx, settings }).catch((x: unknown) => x);
      return isCairnError(e) ? e.params.setting : e;
    };
    expect(await setting({ auth_token: 't', from: '+1' })).toBe('account_sid');
    expect(await setting({ account_sid: 'AC1', from: '+1' })).toBe('auth_token');
    expect(await setting({ account_sid: 'AC1', auth_token: 't' })).toBe('from');
    expect(await setting({ account_sid: 'AC1', auth_token: 't', from: '+1', base_url: 'ftp://x' })).toBe('base_url');
  });

  describe('callbacks', () => {
    const url = 'https://cx.example.com/v1/channels/sms/callback?workspace=ws1&m=0193a1b2-0000-7000-8000-0000000000aa';
    const signed = (params: Record<string, string>, at = url): CallbackRequest => ({
      headers: { 'x-twilio-signature': twilioSignature(TOKEN, at, params) },
      body: params,
      query: Object.fromEntries(new URL(at).searchParams),
      url: at,
    });

    it('normalizes status callbacks (delivered, undelivered → bounced, failed; progress statuses give nothing)', () => {
      const ev = (status: string) => adapter.parseCallback(signed({ MessageSid: 'SM0001', MessageStatus: status, AccountSid: 'AC123' }), ctx);
      expect(ev('delivered')).toEqual([{ type: 'delivered', at: clock.now(), messageId: '0193a1b2-0000-7000-8000-0000000000aa', providerMessageId: 'SM0001', detail: { status: 'delivered' } }]);
      expect(ev('undelivered')[0]?.type).toBe('bounced');
      expect(ev('failed')[0]?.type).toBe('failed');
      expect(ev('queued')).toEqual([]);
      expect(ev('sent')).toEqual([]);
    });

    it('turns inbound STOP into unsubscribed and START into resubscribed for the sender', () => {
      const inbound = (body: string, extra: Record<string, string> = {}) => {
        const at = 'https://cx.example.com/v1/channels/sms/callback?workspace=ws1';
        return adapter.parseCallback(signed({ MessageSid: 'SM9', From: '+4915112345678', To: '+15550001111', Body: body, SmsStatus: 'received', ...extra }, at), ctx)[0];
      };
      expect(inbound('STOP')).toMatchObject({ type: 'unsubscribed', address: { phone: '+4915112345678' } });
      expect(inbound(' stop ')?.type).toBe('unsubscribed');
      expect(inbound('Unsubscribe')?.type).toBe('unsubscribed');
      expect(inbound('START')?.type).toBe('resubscribed');
      expect(inbound('yes')?.type).toBe('resubscribed');
      expect(inbound('please stop sending at night')?.type).toBe('inbound');
      expect(inbound('Arret', { OptOutType: 'STOP' })?.type).toBe('unsubscribed');
    });

    it('refuses a callback with a missing or wrong signature, or for another URL', () => {
      const params = { MessageSid: 'SM1', MessageStatus: 'delivered' };
      const code = (req: CallbackRequest): unknown => {
        try {
          adapter.parseCallback(req, ctx);
          return 'accepted';
        } catch (e) {
          return isCairnError(e) ? e.code : e;
        }
      };
      expect(code({ ...signed(params), headers: {} })).toBe('CAIRN_ERR_CALLBACK_SIGNATURE');
      expect(code({ ...signed(params), body: { ...params, MessageStatus: 'failed' } })).toBe('CAIRN_ERR_CALLBACK_SIGNATURE');
      expect(code({ ...signed(params), url: url.replace('ws1', 'ws2') })).toBe('CAIRN_ERR_CALLBACK_SIGNATURE');
      expect(code(signed(params))).toBe('accepted');
    });
  });
});

describe('SMS keywords and the Twilio signature', () => {
  it.each(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'stop.', 'Stop!'])('%s opts out', (k) => expect(keywordOf(k)).toBe('opt_out'));
  it.each(['START', 'UNSTOP', 'YES', 'start'])('%s opts in', (k) => expect(keywordOf(k)).toBe('opt_in'));
  it.each(['STOP IT NOW', 'stopping', 'yes please', ''])('%j is no keyword', (k) => expect(keywordOf(k)).toBeNull());

  it('matches the signature documented by Twilio', () => {
    // The example from Twilio's "Webhooks security" documentation.
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' };
    expect(twilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', params)).toBe('GvWf1cFY/Q7PnoempGyD5oXAezc=');
  });
});
