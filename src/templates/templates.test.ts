import { describe, expect, it } from 'vitest';
import type { ContentBlock } from '../blueprint/index.js';
import { CairnError } from '../core/index.js';
import { TEMPLATE_LIMITS, TemplateError, compileContentBlock, renderTemplate, type TemplateVars } from './index.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');

function vars(traits: Record<string, unknown> = {}, extra: Partial<TemplateVars> = {}): TemplateVars {
  return { profile: { id: 'c_1', traits, segments: [] }, timezone: 'UTC', locale: 'en', now: NOW, ...extra };
}

function templateError(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error('expected a TemplateError');
}

describe('renderTemplate', () => {
  it('reads profile, offer and context variables', () => {
    const v = vars({ first_name: 'Ana', plan: 'plus' }, { offer: { name: 'renew', title: 'Renew today' }, context: { page: '/pricing' } });
    expect(renderTemplate('Hi {{ profile.traits.first_name }} ({{ profile.traits.plan | upcase }}): {{ offer.title }} on {{ context.page }}', v)).toBe('Hi Ana (PLUS): Renew today on /pricing');
    expect(renderTemplate('{{ profile.id }}', v)).toBe('c_1');
    expect(renderTemplate('{{ item.name }} at {{ item.price | money: "EUR" }}', vars({}, { locale: 'en-IE', item: { name: 'Boots', price: 80 } }))).toBe('Boots at €80.00');
  });

  it('renders a missing value empty, and `default` gives the fallback', () => {
    expect(renderTemplate('Hi {{ profile.traits.first_name }}!', vars())).toBe('Hi !');
    expect(renderTemplate('Hi {{ profile.traits.first_name | default: "there" }}!', vars())).toBe('Hi there!');
    expect(renderTemplate('Hi {{ profile.traits.first_name | default: "there" }}!', vars({ first_name: 'Ana' }))).toBe('Hi Ana!');
    expect(renderTemplate('{{ profile.computed.ltv.deep | default: 0 }}', vars())).toBe('0');
  });

  it('returns strings without Liquid markup as they are', () => {
    const text = 'Save 20% on {plans} } } {%%';
    expect(renderTemplate('Save 20% on {plans} }} today', vars())).toBe('Save 20% on {plans} }} today');
    // `{%%` is markup, so that one is parsed (and is a syntax error): only strings free of it skip Liquid.
    expect(() => renderTemplate(text, vars())).toThrow(TemplateError);
  });

  it('hides inherited properties (ownPropertyOnly)', () => {
    expect(renderTemplate('[{{ profile.traits.constructor }}][{{ profile.traits.__proto__ }}]', vars({ a: 1 }))).toBe('[][]');
  });

  it('formats "now" and timestamps in the customer time zone', () => {
    const tpl = '{{ "now" | date: "%Y-%m-%d %H:%M" }} / {{ profile.traits.renewal_date | date: "%Y-%m-%d %H:%M" }}';
    const at = { renewal_date: '2026-07-01T20:00:00Z' };
    expect(renderTemplate(tpl, vars({ ...at, timezone: 'Europe/Lisbon' }))).toBe('2026-07-01 13:00 / 2026-07-01 21:00');
    expect(renderTemplate(tpl, vars({ ...at, timezone: 'Asia/Tokyo' }))).toBe('2026-07-01 21:00 / 2026-07-02 05:00');
    // No trait zone: the workspace zone; an invalid trait zone falls back to it too.
    expect(renderTemplate(tpl, vars(at, { timezone: 'Asia/Tokyo' }))).toBe('2026-07-01 21:00 / 2026-07-02 05:00');
    expect(renderTemplate(tpl, vars({ ...at, timezone: 'Mars/Olympus' }, { timezone: 'Europe/Lisbon' }))).toBe('2026-07-01 13:00 / 2026-07-01 21:00');
    expect(renderTemplate('{{ timezone }}', vars({ timezone: 'Asia/Tokyo' }))).toBe('Asia/Tokyo');
  });

  it('shows a bare date as written in every zone, and an explicit zone argument wins', () => {
    for (const timezone of ['America/Los_Angeles', 'Asia/Tokyo']) {
      expect(renderTemplate('{{ profile.traits.d | date: "%Y-%m-%d" }}', vars({ d: '2026-03-01', timezone }))).toBe('2026-03-01');
      expect(renderTemplate('{{ profile.traits.d | date: "%H:%M" }}', vars({ d: '2026-03-01 09:30', timezone }))).toBe('09:30');
    }
    expect(renderTemplate('{{ "now" | date: "%H:%M", "Asia/Tokyo" }}', vars({ timezone: 'Europe/Lisbon' }))).toBe('21:00');
    expect(templateError(() => renderTemplate('{{ "now" | date: "%H", "Nowhere/City" }}', vars())).code).toBe('CAIRN_ERR_TEMPLATE_RENDER');
  });

  it('names months and weekdays in the customer locale, and %Z is the zone', () => {
    expect(renderTemplate('{{ "now" | date: "%A %d %B %Y, %b %a" }}', vars())).toBe('Wednesday 01 July 2026, Jul Wed');
    expect(renderTemplate('{{ "now" | date: "%A %-d %B" }}', vars({ locale: 'fr-FR' }))).toBe('mercredi 1 juillet');
    expect(renderTemplate('{{ "now" | date: "%H:%M %Z (%z) 100%%" }}', vars({ timezone: 'Asia/Tokyo' }))).toBe('21:00 Asia/Tokyo (+0900) 100%');
    // Machine formats stay English whatever the customer's locale.
    expect(renderTemplate('{{ "now" | date_to_rfc822 }}', vars({ locale: 'fr', timezone: 'Europe/Lisbon' }))).toBe('Wed, 01 Jul 2026 13:00:00 +0100');
    expect(renderTemplate('{{ "now" | date_to_xmlschema }}', vars({ timezone: 'Asia/Tokyo' }))).toBe('2026-07-01T21:00:00+09:00');
    // Unix seconds, and a value that is not a date is left as it is.
    expect(renderTemplate('{{ 0 | date: "%Y-%m-%d %H:%M" }}', vars({ timezone: 'Asia/Tokyo' }))).toBe('1970-01-01 09:00');
    expect(renderTemplate('{{ "soon" | date: "%Y" }}', vars())).toBe('soon');
  });

  it('formats money in the customer locale', () => {
    expect(renderTemplate('{{ 1234.5 | money: "USD" }}', vars({}, { locale: 'en-US' }))).toBe('$1,234.50');
    const de = renderTemplate('{{ profile.traits.balance | money: "EUR" }}', vars({ balance: 1234.5, locale: 'de-DE' }));
    expect(de.replace(/\s/g, ' ')).toBe('1.234,50 €');
    expect(renderTemplate('{{ 3 | money }}', vars())).toBe('3.00');
    expect(renderTemplate('[{{ profile.traits.missing | money: "EUR" }}]', vars())).toBe('[]');
    const err = templateError(() => renderTemplate('Total:\n  {{ 5 | money: "euro" }}', vars()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_RENDER');
    expect(err.line).toBe(2);
    expect(err.reason).toContain('currency');
  });

  it('reports an unknown filter at compile time at its line and column, with a suggestion', () => {
    const source = 'Hello\n  {{ profile.traits.first_name | upcse }}';
    const err = templateError(() => renderTemplate(source, vars()));
    expect(err).toBeInstanceOf(CairnError);
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect([err.line, err.column]).toEqual([2, source.split('\n')[1]!.indexOf('upcse') + 1]);
    expect(err.reason).toContain('"upcase"');
    expect(err.frame).toContain('^');
    expect(err.message).toContain('line 2, column');
  });

  it('reports a tag that is not closed where it opens', () => {
    const err = templateError(() => renderTemplate('a\nb {% if profile.id %} c', vars()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect([err.line, err.column]).toEqual([2, 3]);
  });

  it('cannot read files: include, render and layout are not tags', () => {
    for (const tag of ['{% include "/etc/passwd" %}', '{% render "secrets" %}', '{% layout "base" %}']) {
      const err = templateError(() => renderTemplate(tag, vars()));
      expect(err.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    }
  });

  it('stops a runaway loop with a limit error', () => {
    const started = performance.now();
    const err = templateError(() => renderTemplate('{% for i in (1..100000000) %}x{% endfor %}', vars()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_LIMIT');
    const nested = templateError(() => renderTemplate('{% for i in (1..3000) %}{% for j in (1..3000) %}{{ j }}{% endfor %}{% endfor %}', vars()));
    expect(nested.code).toBe('CAIRN_ERR_TEMPLATE_LIMIT');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('limits the size of the source', () => {
    const err = templateError(() => renderTemplate(`{{ profile.id }}${'x'.repeat(TEMPLATE_LIMITS.sourceChars)}`, vars()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_LIMIT');
  });

  it('limits the size of the output', () => {
    const chunk = 'x'.repeat(1000);
    const err = templateError(() => renderTemplate(`{% for i in (1..${Math.ceil(TEMPLATE_LIMITS.outputChars / 1000) + 1}) %}${chunk}{% endfor %}`, vars()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_LIMIT');
  });
});

describe('compileContentBlock', () => {
  const block: ContentBlock = {
    headline: 'Hi {{ profile.traits.first_name | default: "there" }}',
    body: 'Base body',
    cta: { label: 'Renew', url: 'https://example.com/renew?c={{ profile.id }}' },
    variants: [
      { segment: 'vip', headline: 'VIP {{ profile.traits.first_name }}', cta: { label: 'Claim', url: 'https://example.com/vip' } },
      { locale: 'pt', headline: 'Olá {{ profile.traits.first_name | default: "você" }}' },
      { segment: 'churn_risk', locale: 'en-GB', body: 'We miss you' },
    ],
  };
  const web = compileContentBlock('web', block, 'offers[0].content.web');

  it('renders the block when no variant fits', () => {
    expect(web.key).toBe('web');
    expect(web.render(vars({ first_name: 'Ana' }), new Set())).toEqual({
      headline: 'Hi Ana',
      body: 'Base body',
      cta: { label: 'Renew', url: 'https://example.com/renew?c=c_1' },
    });
  });

  it('picks the first variant by segment; keys it leaves out come from the block', () => {
    expect(web.render(vars({ first_name: 'Ana', locale: 'pt-BR' }), new Set(['vip']))).toEqual({
      headline: 'VIP Ana',
      body: 'Base body',
      cta: { label: 'Claim', url: 'https://example.com/vip' },
    });
  });

  it('picks a variant by locale: the trait first, else the workspace locale; a language fits its regions', () => {
    expect(web.render(vars({ locale: 'pt-BR' }), new Set()).headline).toBe('Olá você');
    expect(web.render(vars({ locale: 'pt_PT' }), new Set()).headline).toBe('Olá você');
    expect(web.render(vars({}, { locale: 'pt' }), new Set()).headline).toBe('Olá você');
    expect(web.render(vars({ locale: 'en-US' }, { locale: 'pt' }), new Set()).headline).toBe('Hi there');
    // `pt` must not fit `ptx`; segment and locale must both fit.
    expect(web.render(vars({ locale: 'ptx' }), new Set()).headline).toBe('Hi there');
    expect(web.render(vars({ locale: 'en-GB' }), new Set(['churn_risk'])).body).toBe('We miss you');
    expect(web.render(vars({ locale: 'en-US' }), new Set(['churn_risk'])).body).toBe('Base body');
  });

  it('compiles once per block object', () => {
    expect(compileContentBlock('web', block, 'offers[0].content.web')).toBe(web);
  });

  it('names the field of a syntax error', () => {
    const err = templateError(() => compileContentBlock('email', { subject: 'ok', variants: [{ locale: 'de', body: 'Hallo {{ name | bogus }}' }] }, 'offers[3].content.email'));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_SYNTAX');
    expect(err.where).toBe('offers[3].content.email.variants[0].body');
    expect(err.column).toBe('Hallo {{ name | '.length + 1);
  });

  it('gives the fields of a block one render-time budget, so N templates cannot take N times the limit', () => {
    const c = compileContentBlock('web', { headline: 'Static', body: 'Hi {{ profile.id }}' }, 'offers[2].content.web');
    expect(c.render(vars(), new Set())).toEqual({ headline: 'Static', body: 'Hi c_1' });
    // A spent budget: the first template to render says so, naming its field; constant text needs no time.
    const err = templateError(() => c.render(vars(), new Set(), 0));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_LIMIT');
    expect(err.where).toBe('offers[2].content.web.body');
    expect(compileContentBlock('web', { headline: 'Only text' }, 'offers[3].content.web').render(vars(), new Set(), 0)).toEqual({ headline: 'Only text' });
  });

  it('names the field of a render error', () => {
    const c = compileContentBlock('push', { headline: 'ok', body: '{{ 1 | money: "nope" }}' }, 'offers[1].content.push');
    const err = templateError(() => c.render(vars(), new Set()));
    expect(err.code).toBe('CAIRN_ERR_TEMPLATE_RENDER');
    expect(err.where).toBe('offers[1].content.push.body');
  });
});
