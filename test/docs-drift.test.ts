import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Type from 'typebox';
import { DEMO_BLUEPRINT, PROJECT_ROOT, defaultFromDescription, generateDocs, keyReference, type KeyRow } from '../src/cli/docs-gen.js';
import { Blueprint } from '../src/blueprint/index.js';

/**
 * The generated docs in docs/ must equal what the generator makes from today's sources: the error
 * catalogue, the blueprint schema, CONFIG_VARIABLES and the demo blueprint.
 */

const docs = generateDocs();

describe('generated docs are up to date', () => {
  it.each(docs.map((d) => [d.path, d] as const))('%s', (path, doc) => {
    let committed: string | undefined;
    try {
      committed = readFileSync(join(PROJECT_ROOT, path), 'utf8');
    } catch {
      committed = undefined;
    }
    // Compare line by line first so a failure names the first line that differs.
    const want = doc.content.split('\n');
    const have = (committed ?? '').split('\n');
    const first = want.findIndex((l, i) => have[i] !== l);
    const where = committed === undefined ? 'the file is missing' : first >= 0 ? `first difference at line ${first + 1}:\n  committed: ${have[first] ?? '(end of file)'}\n  generated: ${want[first]}` : 'the committed file has extra lines';
    expect(committed === doc.content, `${path} is out of date (${where}).\nRun \`npm run docs\` and commit the result.`).toBe(true);
  });

  it('generates the same text every time', () => {
    expect(generateDocs()).toEqual(docs);
  });
});

describe('docs/blueprint.md', () => {
  const blueprintDoc = docs.find((d) => d.path === 'docs/blueprint.md')?.content ?? '';

  it('documents every key of the schema by its path', () => {
    const rows = keyReference(Blueprint);
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) expect(blueprintDoc, r.path).toContain(`| \`${r.path}\` |`);
    for (const p of ['identity.keys[].name', 'consent.purposes[].default', 'sources[].mapping[].when', 'computed_traits[].window']) {
      expect(rows.map((r) => r.path)).toContain(p);
    }
  });

  it('includes the complete demo blueprint and points to `cairn schema`', () => {
    const example = readFileSync(join(PROJECT_ROOT, DEMO_BLUEPRINT), 'utf8').trimEnd();
    expect(blueprintDoc).toContain(`\`\`\`yaml\n${example}\n\`\`\``);
    expect(blueprintDoc.indexOf('cairn schema')).toBeGreaterThan(0);
    expect(blueprintDoc.indexOf('cairn schema')).toBeLessThan(blueprintDoc.indexOf('## Contents'));
  });

  it('states type, requirement, allowed values and defaults', () => {
    const byPath = new Map(keyReference(Blueprint).map((r) => [r.path, r]));
    expect(byPath.get('version')).toMatchObject({ required: true, type: '`1` (literal)' });
    expect(byPath.get('identity.keys')).toMatchObject({ required: true, type: 'list of objects' });
    expect(byPath.get('identity')).toMatchObject({ required: false, type: 'object' });
    expect(byPath.get('computed_traits[].kind')?.type).toBe('one of `count`, `sum`, `last`, `first_seen`, `last_seen`');
    expect(byPath.get('identity.max_identities_per_profile')).toMatchObject({ type: 'integer', default: '`50`' });
    expect(byPath.get('sources[].type')?.default).toBe('`tracking`');
    expect(byPath.get('computed_traits[].window')?.description).toContain('pattern');
  });
});

describe('the key reference walks any schema shape', () => {
  it('handles records, $ref and unions of objects told apart by a tag', () => {
    const Wait = Type.Object({ type: Type.Literal('wait'), duration: Type.String({ description: 'How long. Default 1h.' }) });
    const Send = Type.Object({ type: Type.Literal('send'), offer: Type.String(), channel: Type.Optional(Type.String()) });
    const schema = {
      type: 'object',
      required: ['journeys'],
      properties: {
        journeys: Type.Array(Type.Object({ name: Type.String(), steps: Type.Array(Type.Union([Wait, Send])) })),
        labels: Type.Record(Type.String(), Type.Object({ color: Type.String({ description: 'A colour; default grey' }) })),
        owner: { $ref: '#/$defs/Person', description: 'Who owns it.' },
      },
      $defs: { Person: { type: 'object', required: ['email'], properties: { email: { type: 'string', format: 'email' } } } },
    };
    const rows: Pick<KeyRow, 'path' | 'type' | 'required' | 'default'>[] = keyReference(schema).map(({ path, type, required, default: d }) => ({ path, type, required, default: d }));
    expect(rows).toEqual([
      { path: 'journeys', type: 'list of objects', required: true, default: undefined },
      { path: 'journeys[].name', type: 'string', required: true, default: undefined },
      { path: 'journeys[].steps', type: 'list of objects', required: true, default: undefined },
      { path: 'journeys[].steps[].type', type: 'one of `wait`, `send`', required: true, default: undefined },
      { path: 'journeys[].steps[].duration', type: 'string', required: true, default: '`1h`' },
      { path: 'journeys[].steps[].offer', type: 'string', required: true, default: undefined },
      { path: 'journeys[].steps[].channel', type: 'string', required: false, default: undefined },
      { path: 'labels', type: 'map of object', required: false, default: undefined },
      { path: 'labels.<name>.color', type: 'string', required: true, default: '`grey`' },
      { path: 'owner', type: 'object', required: false, default: undefined },
      { path: 'owner.email', type: 'string (email)', required: true, default: undefined },
    ]);
    const variants = keyReference(schema).filter((r) => r.path === 'journeys[].steps[].duration' || r.path === 'journeys[].steps[].offer');
    expect(variants.map((r) => r.description.startsWith('*When `type: '))).toEqual([true, true]);
  });

  it('reads defaults only where a description states one', () => {
    expect(defaultFromDescription('Default 50.')).toBe('`50`');
    expect(defaultFromDescription('Something. Default true for user_id only.')).toBe('`true` for user_id only');
    expect(defaultFromDescription('tracking (default): the Segment API')).toBe('`tracking`');
    expect(defaultFromDescription('none (default for others).')).toBe('`none` for others');
    expect(defaultFromDescription('a path; default ./data/cairn.db')).toBe('`./data/cairn.db`');
    expect(defaultFromDescription('Default locale, e.g. en-GB.')).toBeUndefined();
    expect(defaultFromDescription('The defaults are listed elsewhere.')).toBeUndefined();
    expect(defaultFromDescription(undefined)).toBeUndefined();
  });
});
