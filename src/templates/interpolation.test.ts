import { describe, expect, it } from 'vitest';
import { compileInterpolation, compileRender, parseTemplate, renderParsed } from './engine.js';
import { renderScope, type TemplateVars } from './content.js';

/**
 * compileInterpolation is a shortcut past LiquidJS for templates that only interpolate values; its
 * output must be LiquidJS's for every scope. Each template below is rendered both ways against
 * scopes holding every kind of value a path can meet.
 */

const NOW = Date.parse('2026-07-01T12:00:00.000Z');

const TEMPLATES = [
  'Offer 7 for {{ profile.traits.first_name | default: "you" }}',
  "Hi {{ profile.traits.first_name | default: 'there' }}!",
  '{{ profile.traits.first_name }}',
  'Hi {{- profile.traits.first_name -}} !  {{ offer.title }}',
  '{{ profile.traits["first_name"] }} / {{ profile.traits.nested.deep }} / {{ profile.traits.nested.deep | default: "d" }}',
  '{{ profile.traits.age }}|{{ profile.traits.zero | default: "z" }}|{{ profile.traits.flag | default: "f" }}|{{ profile.traits.yes }}',
  '{{ profile.traits.empty | default: "was empty" }}{{ profile.traits.nil | default: "was nil" }}{{ profile.traits.no }}',
  '{{ profile.traits.list }} {{ profile.traits.list | default: "x" }} {{ profile.traits.obj }} {{ profile.traits.obj | default: "x" }}',
  '{{ profile.traits.first_name.length }} {{ profile.traits.list.length }} {{ profile.traits.age.x }}',
  '{{ profile.traits.constructor }}{{ profile.traits.__proto__ }}{{ profile.traits.toString }}{{ toString }}{{ unknown.x }}',
  '{{ profile.segments }} {{ profile.stage | default: "none" }} {{ context.page }} {{ timezone }} {{ locale }}',
  '{{ profile.traits.with_proto }} {{ profile.traits.with_proto.x }}',
  '{{ item.name | default: "" }}!{{ event.name }}',
  '<p>{{ profile.traits.html }}</p>',
];

/** Templates outside the shortcut: compileInterpolation must refuse them (and compileRender still renders them). */
const NOT_COMPILED = [
  '{{ profile.traits.list.size }}',
  '{{ profile.traits.list.first }}',
  '{{ profile.traits.list[0] }}',
  '{{ profile.traits.first_name | upcase }}',
  '{{ profile.traits.first_name | default: "a" | upcase }}',
  '{{ profile.traits.flag | default: "x", allow_false: true }}',
  '{{ profile.traits.age | default: 3 }}',
  '{{ "literal" }}',
  '{{ true }}',
  '{{ nil }}',
  '{% if profile.traits.first_name %}yes{% endif %}',
  '{{ profile.traits[profile.traits.key] }}',
  '{{ "now" | date: "%Y" }}',
];

function scopes(): object[] {
  const traitSets: Record<string, unknown>[] = [
    {},
    { first_name: 'Ana', age: 41, zero: 0, flag: false, yes: true, empty: '', nil: null, list: ['a', 1, null, ['b']], obj: { a: 1 }, nested: { deep: 'x' }, html: '<b>&amp;</b>', key: 'first_name' },
    { first_name: '', age: -1.5, zero: Number.NaN, flag: true, list: [], obj: {}, nested: null, html: 'ü 😀' },
    { first_name: 7, nested: 'str', age: { x: 'y' }, list: 'not a list' },
    JSON.parse('{"__proto__": "own", "constructor": "c", "with_proto": {"__proto__": {"x": 1}}, "toString": "t"}') as Record<string, unknown>,
    Object.assign(Object.create(null) as Record<string, unknown>, { first_name: 'NoProto', nested: { deep: false } }),
    { first_name: { toLiquid: () => 'from toLiquid' }, nested: new Map([['deep', 'map']]), obj: new Date(0) },
  ];
  const out: object[] = [];
  for (const traits of traitSets) {
    for (const extra of [{}, { offer: { name: 'o', title: 'Title' }, context: { page: '/p' }, item: { name: 'Boots' } }, { event: { name: 'E' }, profile: undefined }] as Partial<TemplateVars>[]) {
      const vars = { profile: { id: 'c_1', traits, segments: ['b', 'a'], stage: null }, timezone: 'UTC', locale: 'en', now: NOW, ...extra } as TemplateVars;
      if (extra.profile === undefined && 'profile' in extra) {
        out.push({ ...renderScope({ ...vars, profile: { id: 'c', traits: {} } }), profile: undefined });
      } else out.push(renderScope(vars));
    }
  }
  return out;
}

describe('compileInterpolation', () => {
  it('compiles templates of text and plain outputs, and renders exactly what LiquidJS renders', () => {
    let shortcut = 0;
    for (const source of TEMPLATES) {
      const tpl = parseTemplate(source, 'test');
      const fast = compileInterpolation(tpl);
      expect(fast, source).not.toBeNull();
      const render = compileRender(tpl, 'test', source);
      for (const scope of scopes()) {
        const liquid = renderParsed(tpl, scope, 'test', source);
        const direct = fast?.(scope);
        if (direct !== undefined) {
          shortcut++;
          expect(direct, `${source} with ${JSON.stringify(scope)}`).toBe(liquid);
        }
        expect(render(scope)).toBe(liquid);
      }
    }
    // Most renders take the shortcut; the rest (arrays, objects, odd prototypes) fell back.
    expect(shortcut).toBeGreaterThan(TEMPLATES.length * 10);
  });

  it('leaves everything else to LiquidJS', () => {
    for (const source of NOT_COMPILED) {
      const tpl = parseTemplate(source, 'test');
      expect(compileInterpolation(tpl), source).toBeNull();
      const render = compileRender(tpl, 'test', source);
      for (const scope of scopes()) expect(render(scope)).toBe(renderParsed(tpl, scope, 'test', source));
    }
  });

  it('falls back to LiquidJS for values it does not format itself', () => {
    const source = '[{{ profile.traits.v }}]';
    const fast = compileInterpolation(parseTemplate(source, 'test'));
    const scope = (v: unknown): object => renderScope({ profile: { id: 'c', traits: { v } }, timezone: 'UTC', locale: 'en', now: NOW });
    expect(fast?.(scope('Ana'))).toBe('[Ana]');
    expect(fast?.(scope(['a', 'b']))).toBeUndefined();
    expect(fast?.(scope({ a: 1 }))).toBeUndefined();
  });
});
