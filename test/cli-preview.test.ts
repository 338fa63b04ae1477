import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/core/index.js';
import type { OfferPreview } from '../src/decisioning/index.js';
import { ENGINES } from './helpers/stores.js';
import { basic, startTestApp, type TestApp } from './helpers/runtime.js';
import { cli, ensureBuilt } from './helpers/process.js';

/**
 * `cairn preview OFFER --customer REF` against a SQLite file with a workspace and a customer
 * ingested through the tracking API: the rendered text (name, variant by segment, a date in the
 * customer's zone), the empty-variable warnings, JSON output, and the exit codes of an unknown
 * offer (with a suggestion), an unknown customer, and a template that fails to render (with its
 * line, column and frame). Five process launches.
 */

const BLUEPRINT = `version: 1
workspace:
  name: Preview
  timezone: Europe/Lisbon
  locale: en-GB
consent:
  purposes:
    - name: marketing
      channels: [email]
segments:
  - name: vip
    condition: 'traits.plan == "vip"'
channels:
  - name: email
    type: email
placements:
  - name: home_hero
    type: web
offers:
  - name: renewal
    title: Renewal reminder
    placements: [home_hero]
    channels: [email]
    content:
      home_hero:
        headline: 'Hi {{ profile.traits.first_name | default: "there" }}, your policy renews soon'
        cta: { label: Renew now, url: "https://example.com/renew?c={{ profile.id }}" }
        variants:
          - { segment: vip, headline: "{{ profile.traits.first_name }}, a loyalty price is waiting" }
      email:
        subject: 'Your renewal, {{ profile.traits.first_name | default: "friend" }}'
        body: |
          <p>Sent {{ "now" | date: "%-d %B %H:%M %Z" }}</p>
          <p>{{ profile.traits.last_name }}</p>
  - name: broken
    channels: [email]
    content:
      email:
        subject: Broken
        body: |
          <p>Hi {{ profile.traits.first_name }}</p>
          <p>{{ "now" | date: "%H:%M", "Mars/Olympus" }}</p>
`;

describe('cairn preview', () => {
  const engine = ENGINES[0];
  let t: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    if (!engine) return;
    await ensureBuilt();
    t = await startTestApp(engine, { blueprint: BLUEPRINT, clock: new VirtualClock('2026-06-30T08:00:00.000Z') });
    const r = await t.app.inject({
      method: 'POST',
      url: '/v1/identify',
      headers: { authorization: basic(t.writeKey), 'content-type': 'application/json' },
      payload: JSON.stringify({ userId: 'ana', traits: { first_name: 'Ana', email: 'ana@example.com', plan: 'vip', timezone: 'Asia/Tokyo' } }),
    });
    expect(r.statusCode).toBe(200);
    env = { CAIRN_DATABASE_URL: t.rt.config.databaseUrl };
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });

  it('renders every block for a customer: name, the variant of their segment, dates in their zone, warnings', async () => {
    const r = await cli(['preview', 'renewal', '--customer', 'email:ana@example.com', '-w', t.workspaceId, '--now', '2026-07-01T10:00:00Z'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^Preview of offer renewal \("Renewal reminder"\) for email:ana@example\.com \(profile \S+\)/);
    expect(out).toContain('time zone: Asia/Tokyo (profile.traits.timezone); locale: en-GB (workspace)');
    // The banner: the vip variant, with its reason; the cta from the block.
    expect(out).toContain('== home_hero (placement) ==\n  variant: variants[0] — in segment "vip"\n  headline: Ana, a loyalty price is waiting\n  cta.label: Renew now\n  cta.url: https://example.com/renew?c=');
    // The email: 10:00Z is 19:00 in Tokyo; the body is multi-line and indented.
    expect(out).toContain('== email (channel) ==\n  variant: none declared — the block itself\n  subject: Your renewal, Ana\n  body:\n    <p>Sent 1 July 19:00 Asia/Tokyo</p>\n    <p></p>');
    expect(out).toContain('! rendered empty: profile.traits.last_name [body, line 2, column 7]');
    expect(out).not.toContain('rendered empty: profile.traits.first_name');
  });

  it('--json for an unknown customer with --allow-unknown: the block itself, the default filter noted', async () => {
    const r = await cli(['preview', 'renewal', '--customer', 'user_id:nobody', '--placement', 'home_hero', '--allow-unknown', '--json', '-w', t.workspaceId], env);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as OfferPreview;
    expect(p.customer).toMatchObject({ known: false, id: null, segments: [] });
    expect(p.zone).toEqual({ name: 'Europe/Lisbon', from: 'workspace' });
    expect(p.blocks).toHaveLength(1);
    const [b] = p.blocks;
    expect(b?.key).toBe('home_hero');
    expect(b?.variant.chosen).toBeNull();
    expect(b?.variant.checked).toEqual([expect.objectContaining({ index: 0, fits: false, reason: 'not in segment "vip"' })]);
    expect(b?.content).toEqual({ headline: 'Hi there, your policy renews soon', cta: { label: 'Renew now', url: 'https://example.com/renew?c=' } });
    expect(b?.missing).toEqual([expect.objectContaining({ field: 'headline', path: 'profile.traits.first_name', defaulted: true })]);
  });

  it('an unknown customer without --allow-unknown exits 2', async () => {
    const r = await cli(['preview', 'renewal', '--customer', 'user_id:nobody', '-w', t.workspaceId], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CAIRN_ERR_PROFILE_NOT_FOUND');
    expect(r.stderr).toContain('--allow-unknown');
    expect(r.stdout).toBe('');
  });

  it('an unknown offer exits 2 with its code and a suggestion', async () => {
    const r = await cli(['preview', 'renewl', '--customer', 'user_id:ana', '-w', t.workspaceId], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^CAIRN_ERR_UNKNOWN_OFFER: .*did you mean "renewal"\?/);
  });

  it('a template that fails to render exits 1 with its line, column and code frame', async () => {
    const r = await cli(['preview', 'broken', '--customer', 'ana', '--channel', 'email', '-w', t.workspaceId], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ not rendered: CAIRN_ERR_TEMPLATE_RENDER in offers[1].content.email.body at line 2, column 15 (see the error below)');
    expect(r.stderr).toContain('CAIRN_ERR_TEMPLATE_RENDER: Template render error in offers[1].content.email.body line 2, column 15: date: "Mars/Olympus" is not a time zone');
    expect(r.stderr).toContain('> 2 | <p>{{ "now" | date: "%H:%M", "Mars/Olympus" }}</p>\n    |               ^');
  });
});
