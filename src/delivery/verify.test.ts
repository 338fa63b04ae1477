import { describe, expect, it } from 'vitest';
import { parseBlueprint } from '../blueprint/index.js';
import { ChannelRegistry, createTestAdapter, SmtpAdapter, verifyChannels, WebhookAdapter } from './index.js';

/**
 * verifyChannels: every channel with a provider is looked up in the registry and its adapter's
 * verify() runs with the channel's settings; problems name channels[i].provider (and the setting).
 */

const bp = (channels: string): ReturnType<typeof parseBlueprint>['blueprint'] =>
  parseBlueprint(`version: 1\nworkspace:\n  name: V\n  timezone: UTC\nchannels:\n${channels}`, 'v.yaml').blueprint;

function registry(): ChannelRegistry {
  const r = new ChannelRegistry();
  r.register(new SmtpAdapter());
  r.register(new WebhookAdapter());
  r.register(createTestAdapter());
  return r;
}

const ctx = { publicUrl: 'https://cx.example.com', sign: (p: string) => `s(${p})`, now: () => 0, env: { SMTP_PASS: 'secret' } };

describe('verifyChannels', () => {
  it('passes channels whose adapter exists and whose settings verify; skips channels without a provider', async () => {
    const blueprint = bp(`  - name: email
    type: email
    provider: { name: smtp, settings: { host: smtp.example.com, from: "Shop <news@shop.example>", user: cairn, pass: "\${env:SMTP_PASS}" } }
  - name: inbox
    type: in_app
  - name: ops
    type: webhook
    provider: { name: test }
`);
    expect(await verifyChannels(registry(), blueprint, ctx)).toEqual([]);
  });

  it('reports an unknown provider and a failing verify, naming channels[i].provider and the setting', async () => {
    const blueprint = bp(`  - name: email
    type: email
    provider: { name: smtp, settings: { host: smtp.example.com } }
  - name: sms
    type: sms
    provider: { name: twillio }
  - name: crm
    type: webhook
    provider: { name: http, settings: { secret: s3cr3t, url: "http://127.0.0.1:9/hook" } }
  - name: later
    type: sms
    availability: planned
    provider: { name: nobody }
`);
    const problems = await verifyChannels(registry(), blueprint, ctx);
    expect(problems.map((p) => [p.path, p.channel, p.provider, p.setting, p.error.code])).toEqual([
      ['channels[0].provider.settings.from', 'email', 'smtp', 'from', 'CAIRN_ERR_CHANNEL_VERIFY'],
      ['channels[1].provider', 'sms', 'twillio', undefined, 'CAIRN_ERR_CHANNEL_VERIFY'],
      ['channels[2].provider.settings.url', 'crm', 'http', 'url', 'CAIRN_ERR_CHANNEL_VERIFY'],
    ]);
    expect(problems[1]?.reason).toContain('http, smtp, test');
    expect(problems[0]?.error.message).toContain('channels[0].provider.settings.from');
  });

  it('resolves ${env:NAME} settings in the given environment: an unset secret is reported missing', async () => {
    const blueprint = bp(`  - name: email
    type: email
    provider: { name: smtp, settings: { host: smtp.example.com, from: news@shop.example, user: cairn, pass: "\${env:SMTP_PASS}" } }
`);
    expect(await verifyChannels(registry(), blueprint, ctx)).toEqual([]);
    const problems = await verifyChannels(registry(), blueprint, { ...ctx, env: {} });
    expect(problems.map((p) => p.path)).toEqual(['channels[0].provider.settings.pass']);
  });

  it('refuses an adapter that does not deliver the channel type', async () => {
    const problems = await verifyChannels(registry(), bp(`  - name: sms\n    type: sms\n    provider: { name: smtp, settings: { host: h, from: a@b.example } }\n`), ctx);
    expect(problems.map((p) => p.path)).toEqual(['channels[0].provider']);
    expect(problems[0]?.reason).toContain('not sms');
  });
});
