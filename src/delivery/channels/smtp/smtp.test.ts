import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isCairnError } from '../../../core/index.js';
import type { AdapterContext, OutboundMessage } from '../../types.js';
import { hmacSign, verifyToken } from '../../links.js';
import { FakeSmtpServer, mimePart } from '../../../../test/helpers/providers.js';
import { SmtpAdapter, classifySmtpError, htmlToText } from './index.js';

/**
 * The SMTP adapter against a real SMTP server (smtp-server, in process): what arrives — headers
 * (List-Unsubscribe with a signed link, one-click List-Unsubscribe-Post, a Message-ID derived from
 * the outbox id), the HTML body with tracked links and its text alternative — and how SMTP
 * rejections are classified. The unsubscribe link withdrawing consent end to end is in
 * test/http/channels.test.ts.
 */

const KEY = Buffer.alloc(32, 7);
const sign = (p: string): string => hmacSign(KEY, p);

describe('SMTP adapter against a real SMTP server', () => {
  const smtp = new FakeSmtpServer();
  const adapter = new SmtpAdapter();
  let ctx: AdapterContext;
  beforeAll(async () => {
    await smtp.start();
  });
  afterAll(async () => {
    await adapter.close();
    await smtp.stop();
  });
  beforeEach(() => {
    smtp.received.length = 0;
    smtp.rejectRcpt = undefined;
    ctx = { settings: { host: '127.0.0.1', port: smtp.port, secure: false, from: 'Shop <news@shop.example>', unsubscribe_mailto: 'unsubscribe@shop.example' }, publicUrl: 'https://cx.example.com', sign, now: () => Date.parse('2026-11-23T10:00:00Z') };
  });

  const message = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
    id: '0193a1b2-0000-7000-8000-00000000abcd',
    key: 'j:i1:s1',
    workspaceId: 'ws1',
    customerId: 'cust-42',
    channel: 'email',
    channelType: 'email',
    messageClass: 'marketing',
    to: { email: 'ana@example.com' },
    content: {
      subject: 'Your winter picks',
      preheader: 'Boots are back',
      headline: 'Hi Ana',
      body: '<p>See the <a href="https://shop.example/boots?c=1&amp;d=2">new boots</a>.</p>',
      cta: { label: 'Shop now', url: 'https://shop.example/winter' },
    },
    attempt: 1,
    ...over,
  });

  it('delivers one message with List-Unsubscribe (signed https + mailto), one-click POST and a stable Message-ID', async () => {
    const r = await adapter.send(message(), ctx);
    expect(r).toEqual({ ok: true, providerMessageId: '<0193a1b2-0000-7000-8000-00000000abcd@shop.example>' });
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0]!;
    expect(mail.to).toEqual(['ana@example.com']);
    expect(mail.from).toBe('news@shop.example');
    expect(mail.headers['subject']).toBe('Your winter picks');
    expect(mail.headers['message-id']).toBe('<0193a1b2-0000-7000-8000-00000000abcd@shop.example>');
    expect(mail.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click');
    const lu = mail.headers['list-unsubscribe'] as string;
    const m = /^<(https:\/\/cx\.example\.com\/v1\/unsubscribe\/([^>]+))>, <mailto:unsubscribe@shop\.example\?subject=unsubscribe>$/.exec(lu);
    expect(m, lu).not.toBeNull();
    // The token is signed and names the customer, channel and class.
    expect(verifyToken(m![2]!, sign)).toEqual({ k: 'u', w: 'ws1', c: 'cust-42', ch: 'email', cls: 'marketing', m: message().id });
  });

  it('sends HTML with tracked links and a text alternative', async () => {
    await adapter.send(message(), ctx);
    const raw = smtp.received[0]!.raw;
    expect(raw).toMatch(/Content-Type: multipart\/alternative/i);
    const html = mimePart(raw, 'text/html') as string;
    const text = mimePart(raw, 'text/plain') as string;
    expect(html).toContain('<h1>Hi Ana</h1>');
    expect(html).toContain('Boots are back');
    // Body links and the CTA go through signed redirects that carry the original target.
    const tracked = [...html.matchAll(/href="https:\/\/cx\.example\.com\/v1\/r\/([^"]+)"/g)].map((x) => verifyToken(x[1]!, sign));
    expect(tracked.map((p) => (p.k === 'r' ? p.u : ''))).toEqual(['https://shop.example/boots?c=1&d=2', 'https://shop.example/winter']);
    expect(html).not.toContain('href="https://shop.example');
    expect(html).toMatch(/href="https:\/\/cx\.example\.com\/v1\/unsubscribe\//);
    expect(text).toContain('Hi Ana');
    expect(text).toMatch(/new boots \[https:\/\/cx\.example\.com\/v1\/r\//);
    expect(text).toMatch(/Unsubscribe: https:\/\/cx\.example\.com\/v1\/unsubscribe\//);
  });

  it('keeps the same Message-ID on a retry of the same outbox message', async () => {
    await adapter.send(message({ attempt: 1 }), ctx);
    await adapter.send(message({ attempt: 2 }), ctx);
    expect(smtp.received.map((x) => x.headers['message-id'])).toEqual([
      '<0193a1b2-0000-7000-8000-00000000abcd@shop.example>',
      '<0193a1b2-0000-7000-8000-00000000abcd@shop.example>',
    ]);
  });

  it('leaves links untouched with track_clicks false, and transactional mail without unsubscribe headers', async () => {
    await adapter.send(message({ messageClass: 'transactional' }), { ...ctx, settings: { ...ctx.settings, track_clicks: false } });
    const mail = smtp.received[0]!;
    expect(mail.headers['list-unsubscribe']).toBeUndefined();
    expect(mail.headers['list-unsubscribe-post']).toBeUndefined();
    expect(mimePart(mail.raw, 'text/html')).toContain('href="https://shop.example/boots?c=1&amp;d=2"');
  });

  it('answers a 550 recipient rejection as final and a 451 as retryable, without throwing', async () => {
    smtp.rejectRcpt = { code: 550, message: 'No such user' };
    const final = await adapter.send(message(), ctx);
    expect(final).toMatchObject({ ok: false, retryable: false, code: 'SMTP_550' });
    smtp.rejectRcpt = { code: 451, message: 'Try again later' };
    const transient = await adapter.send(message(), ctx);
    expect(transient).toMatchObject({ ok: false, retryable: true, code: 'SMTP_451' });
    expect(smtp.received).toHaveLength(0);
  });

  it('answers an unreachable server as retryable', async () => {
    const down = new FakeSmtpServer();
    await down.start();
    await down.stop();
    const r = await adapter.send(message(), { ...ctx, settings: { ...ctx.settings, port: down.port, timeout_ms: 2000 } });
    expect(r).toMatchObject({ ok: false, retryable: true });
  });

  it('answers a customer without email as final', async () => {
    expect(await adapter.send(message({ to: {} }), ctx)).toMatchObject({ ok: false, retryable: false, code: 'NO_ADDRESS' });
  });

  it('verify() names each missing or bad setting', async () => {
    const fails = async (settings: Record<string, string | number | boolean>): Promise<string | undefined> => {
      const err = await adapter.verify({ ...ctx, settings }).catch((e: unknown) => e);
      return isCairnError(err) && err.code === 'CAIRN_ERR_CHANNEL_SETTING' ? String(err.params.setting) : undefined;
    };
    expect(await fails({ from: 'a@b.example' })).toBe('host');
    expect(await fails({ host: 'smtp.example' })).toBe('from');
    expect(await fails({ host: 'smtp.example', from: 'not-an-address' })).toBe('from');
    expect(await fails({ host: 'smtp.example', from: 'a@b.example', port: 70000 })).toBe('port');
    expect(await fails({ host: 'smtp.example', from: 'a@b.example', user: 'u' })).toBe('pass');
    await expect(adapter.verify(ctx)).resolves.toBeUndefined();
  });
});

describe('SMTP error classification and text alternative', () => {
  it.each([
    [{ responseCode: 421, message: 'busy' }, true],
    [{ responseCode: 452, message: 'mailbox full' }, true],
    [{ responseCode: 550, message: 'no such user' }, false],
    [{ responseCode: 535, code: 'EAUTH', message: 'bad credentials' }, false],
    [{ code: 'ECONNECTION', message: 'refused' }, true],
    [{ code: 'ETIMEDOUT', message: 'timeout' }, true],
    [{ code: 'EENVELOPE', message: 'no recipients' }, false],
  ])('%j → retryable %s', (err, retryable) => {
    expect(classifySmtpError(err).retryable).toBe(retryable);
  });

  it('turns simple HTML into readable text', () => {
    expect(htmlToText('<h1>Hi</h1><p>Go <a href="https://x.example/a">here</a> &amp; <b>now</b></p><ul><li>one</li></ul>')).toBe('Hi\n\nGo here [https://x.example/a] & now\n\n- one');
  });
});
