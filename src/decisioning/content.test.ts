import { describe, expect, it } from 'vitest';
import { parseBlueprint, resolveModel, type ResolvedOffer, type WorkspaceModel } from '../blueprint/index.js';
import { offerContent } from '../delivery/index.js';
import { buildEvalInput, type ProfileRow } from '../profiles/index.js';
import { missingVariables } from '../templates/index.js';
import { channelContentKey, contentVars, offerBlock } from './content.js';

/**
 * The one way offer content is rendered for a customer (decide, delivery, `cairn preview`):
 * variables built from the customer's evaluation input, variants by segment and locale, dates in
 * the customer's zone, and the trace and missing-variable report a preview prints.
 */

const BLUEPRINT = `version: 1
workspace:
  name: Content
  timezone: Europe/Lisbon
  locale: en-GB
segments:
  - name: vip
    condition: 'traits.plan == "vip"'
stages:
  - name: customer
    condition: 'traits.plan != ""'
channels:
  - name: email
    type: email
placements:
  - name: home_hero
    type: web
offers:
  - name: renewal
    title: Renewal
    placements: [home_hero]
    channels: [email]
    content:
      home_hero:
        headline: 'Hi {{ profile.traits.first_name | default: "there" }}'
        variants:
          - { segment: vip, headline: "{{ profile.traits.first_name }}, a loyalty price" }
          - { locale: pt, headline: "Olá {{ profile.traits.first_name }}" }
      email:
        subject: 'Renews {{ "2026-07-01T20:00:00Z" | date: "%-d %B %H:%M" }}'
        body: '{% if profile.stage == "customer" %}Thanks.{% endif %} {{ profile.segments | join: "," }} {{ context.page }}'
        variants:
          - { segment: vip, subject: VIP renewal }
`;

const NOW = Date.parse('2026-06-01T09:00:00.000Z');

function setup(): { model: WorkspaceModel; offer: ResolvedOffer } {
  const model = resolveModel(parseBlueprint(BLUEPRINT, 'content.yaml').blueprint);
  const offer = model.offers.find((o) => o.name === 'renewal');
  if (!offer) throw new Error('no offer');
  return { model, offer };
}

function customer(model: WorkspaceModel, traits: Record<string, unknown>, segments: string[], stage: string | null): { row: ProfileRow; input: ReturnType<typeof buildEvalInput> } {
  const row: ProfileRow = { id: 'c1', createdAt: NOW, updatedAt: NOW, mergedInto: null, traits: Object.fromEntries(Object.entries(traits).map(([k, v]) => [k, { v, ts: NOW, src: 'test' }])), computed: {}, firstSeen: NOW, lastSeen: NOW, identities: new Set() };
  return { row, input: buildEvalInput(model, row, { now: NOW, segments: new Set(segments), stage, consent: [] }) };
}

describe('contentVars and offerBlock', () => {
  it('renders the segment variant with the name, and a date in the customer’s zone', () => {
    const { model, offer } = setup();
    const { input } = customer(model, { first_name: 'Ana', plan: 'vip', timezone: 'Asia/Tokyo' }, ['vip'], 'customer');
    const vars = contentVars(model, 'c1', input, NOW, offer);
    expect(vars.profile).toMatchObject({ id: 'c1', segments: ['vip'], stage: 'customer' });
    expect(offerBlock(offer, 'home_hero')?.render(vars, input.segments)).toEqual({ headline: 'Ana, a loyalty price' });
    // 20:00Z is 05:00 the next day in Tokyo; the variant's subject wins, the body comes from the block.
    const email = offerBlock(offer, 'email');
    expect(email?.render(vars, input.segments)).toEqual({ subject: 'VIP renewal', body: 'Thanks. vip ' });
    const plain = customer(model, { first_name: 'Bo', plan: 'free', timezone: 'Asia/Tokyo' }, [], null);
    expect(email?.render(contentVars(model, 'c1', plain.input, NOW, offer), plain.input.segments)).toEqual({ subject: 'Renews 2 July 05:00', body: '  ' });
    expect(offerBlock(offer, 'nowhere')).toBeUndefined();
  });

  it('delivery renders what decide renders: segment variants, stage and segments reach email content', () => {
    const { model, offer } = setup();
    const { row, input } = customer(model, { first_name: 'Ana', plan: 'vip' }, ['vip'], 'customer');
    const ws = { id: 'w', model, blueprint: parseBlueprint(BLUEPRINT).blueprint };
    expect(channelContentKey(model, offer, 'email')).toBe('email');
    const req = { offer: 'renewal' } as Parameters<ReturnType<typeof offerContent>>[0];
    const sent = offerContent(ws, row, NOW, input)(req, 'email');
    const decided = offerBlock(offer, 'email')?.render(contentVars(model, row.id, input, NOW, offer), input.segments);
    expect(sent).toEqual({ subject: 'VIP renewal', body: 'Thanks. vip ' });
    expect(sent).toEqual(decided);
  });

  it('traces the variant chosen and why the ones before it did not fit', () => {
    const { model, offer } = setup();
    const block = offerBlock(offer, 'home_hero');
    const pt = customer(model, { first_name: 'Rui', locale: 'pt-BR' }, [], null);
    const trace = block?.traceVariant(contentVars(model, 'c1', pt.input, NOW, offer), pt.input.segments);
    expect(trace).toMatchObject({ chosen: 1, zone: 'Europe/Lisbon', locale: 'pt-BR' });
    expect(trace?.checked.map((c) => [c.index, c.fits, c.reason])).toEqual([
      [0, false, 'not in segment "vip"'],
      [1, true, 'locale "pt" fits "pt-BR"'],
    ]);
    const en = customer(model, {}, [], null);
    const none = block?.traceVariant(contentVars(model, 'c1', en.input, NOW, offer), en.input.segments);
    expect(none?.chosen).toBeNull();
    expect(none?.checked.map((c) => c.reason)).toEqual(['not in segment "vip"', 'locale "pt" does not fit "en-GB"']);
  });
});

describe('missingVariables', () => {
  it('lists what renders empty for this customer, noting a default filter and reads by tags', () => {
    const { model, offer } = setup();
    const { input } = customer(model, { plan: 'free', tags: ['a'] }, [], null);
    const vars = contentVars(model, 'c1', input, NOW, offer);
    const source = 'Hi {{ profile.traits.first_name | default: "there" }} {{ profile.traits.last_name }}\n{% if profile.traits.vip_since %}x{% endif %}{{ profile.traits.plan }} {{ profile.traits.tags.size }} {{ offer.name }} {{ profile.traits.constructor }}';
    expect(missingVariables(source, vars)).toEqual([
      { path: 'profile.traits.first_name', in: 'output', defaulted: true, line: 1, column: 7 },
      { path: 'profile.traits.last_name', in: 'output', defaulted: false, line: 1, column: 58 },
      { path: 'profile.traits.vip_since', in: 'tag', defaulted: false, line: 2, column: 7 },
      { path: 'profile.traits.constructor', in: 'output', defaulted: false, line: 2, column: 123 },
    ]);
  });
});
