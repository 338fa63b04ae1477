import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CairnError, ERRORS, itemError, type ErrorCode } from './errors.js';

/**
 * The catalogue is the contract for every error a user sees: docs/errors.md documents each code
 * (and nothing else), codes and statuses are well-formed, and every place that raises an error
 * fills exactly the placeholders its template has.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CODES = Object.keys(ERRORS) as ErrorCode[];
const placeholders = (template: string): string[] => [...new Set(Array.from(template.matchAll(/\{(\w+)\}/g), (m) => m[1] as string))].sort();

describe('docs/errors.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  // One table row per code: | `CODE` | status | `message` | hint |
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `(CAIRN_ERR_\w+)` \| (.*) \|$/.exec(line);
    if (m?.[1] && m[2] !== undefined) rows.set(m[1], m[2].split(' | '));
  }
  const fix = 'run `npm run docs` to regenerate it';

  it('documents every code of the catalogue', () => {
    const missing = CODES.filter((c) => !rows.has(c));
    expect(missing, `codes missing from docs/errors.md; ${fix}`).toEqual([]);
  });

  it('documents no code that the catalogue no longer has', () => {
    const stale = [...rows.keys()].filter((c) => !(c in ERRORS));
    expect(stale, `docs/errors.md lists codes that no longer exist; ${fix}`).toEqual([]);
    const mentioned = new Set(Array.from(doc.matchAll(/CAIRN_ERR_[A-Z0-9_]+/g), (m) => m[0]));
    expect([...mentioned].filter((c) => !(c in ERRORS) && c !== 'CAIRN_ERR_'), `docs/errors.md mentions unknown codes; ${fix}`).toEqual([]);
  });

  it('gives each code its current status', () => {
    const wrong = CODES.filter((c) => rows.get(c)?.[0] !== String(ERRORS[c].status));
    expect(wrong, `statuses differ from the catalogue; ${fix}`).toEqual([]);
  });
});

describe('the catalogue', () => {
  it('names every code CAIRN_ERR_ in upper snake case', () => {
    expect(CODES.length).toBeGreaterThan(0);
    for (const c of CODES) expect(c).toMatch(/^CAIRN_ERR_[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
  });

  it('uses client or server error statuses only', () => {
    for (const c of CODES) {
      const { status } = ERRORS[c];
      expect(Number.isInteger(status), c).toBe(true);
      expect(status >= 400 && status <= 599, `${c}: ${status}`).toBe(true);
    }
  });

  it('has well-formed templates: {name} placeholders and no stray braces', () => {
    for (const c of CODES) {
      const { message, hint } = ERRORS[c];
      expect(message.trim(), c).not.toBe('');
      expect(message.replace(/\{\w+\}/g, ''), `${c}: a brace that is not a {placeholder}`).not.toMatch(/[{}]/);
      expect(typeof hint, c).toBe('string');
    }
  });

  it('points blueprint errors at a file, line and column', () => {
    const blueprint = CODES.filter((c) => c.startsWith('CAIRN_ERR_BLUEPRINT_'));
    expect(blueprint.length).toBeGreaterThan(0);
    for (const c of blueprint) expect(placeholders(ERRORS[c].message), c).toEqual(expect.arrayContaining(['column', 'file', 'line']));
  });

  it('fills every placeholder from the params, as an exception and as an item', () => {
    for (const c of CODES) {
      const names = placeholders(ERRORS[c].message);
      const params = Object.fromEntries(names.map((n) => [n, `<${n}>`]));
      const err = new CairnError(c, params);
      expect(err.code).toBe(c);
      expect(err.status).toBe(ERRORS[c].status);
      expect(err.message, c).not.toMatch(/\{\w+\}/);
      for (const n of names) expect(err.message, c).toContain(`<${n}>`);
      expect(err.toJSON().code).toBe(c);
      expect(itemError(c, params)).toEqual({ code: c, message: err.message });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Call sites: `new CairnError('CODE', { … })` and `itemError('CODE', { … })` with a literal object
// must pass exactly the template's placeholders — a missing one leaves a hole in the message, an
// extra one is usually a misspelt name.

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f));
}

/** Index just past the string, template literal or bracketed expression starting at `i`. */
function skip(src: string, i: number): number {
  const open = src[i];
  if (open === "'" || open === '"') {
    for (let j = i + 1; j < src.length; j++) {
      if (src[j] === '\\') j++;
      else if (src[j] === open) return j + 1;
    }
    return src.length;
  }
  if (open === '`') {
    for (let j = i + 1; j < src.length; j++) {
      if (src[j] === '\\') j++;
      else if (src[j] === '`') return j + 1;
      else if (src[j] === '$' && src[j + 1] === '{') j = skip(src, j + 1) - 1;
    }
    return src.length;
  }
  const close = open === '{' ? '}' : open === '(' ? ')' : ']';
  for (let j = i + 1; j < src.length; ) {
    const ch = src[j] as string;
    if (ch === close) return j + 1;
    j = '\'"`{(['.includes(ch) ? skip(src, j) : j + 1;
  }
  return src.length;
}

/** Top-level keys of the object literal at `i`, or undefined when they cannot be known (spread, computed key). */
function objectKeys(src: string, i: number): string[] | undefined {
  const keys: string[] = [];
  const end = skip(src, i) - 1;
  let j = i + 1;
  while (j < end) {
    while (j < end && /[\s,]/.test(src[j] as string)) j++;
    if (j >= end) break;
    if (src.startsWith('...', j) || src[j] === '[') return undefined;
    const key = /^(?:([A-Za-z_$][\w$]*)|'([^']*)'|"([^"]*)")/.exec(src.slice(j));
    if (!key) return undefined;
    keys.push((key[1] ?? key[2] ?? key[3]) as string);
    j += key[0].length;
    // Skip the value up to the next top-level comma.
    while (j < end && src[j] !== ',') j = '\'"`{(['.includes(src[j] as string) ? skip(src, j) : j + 1;
  }
  return keys;
}

interface CallSite {
  where: string;
  code: string;
  keys: string[];
}

function callSites(file: string): CallSite[] {
  const src = readFileSync(file, 'utf8');
  const out: CallSite[] = [];
  for (const m of src.matchAll(/\b(?:new CairnError|itemError)\(\s*(['"])(CAIRN_ERR_\w+)\1\s*([,)])/g)) {
    const where = `${relative(ROOT, file)}:${src.slice(0, m.index).split('\n').length}`;
    const code = m[2] as string;
    if (m[3] === ')') {
      out.push({ where, code, keys: [] });
      continue;
    }
    let j = (m.index ?? 0) + m[0].length;
    while (/\s/.test(src[j] ?? '')) j++;
    if (src[j] !== '{') continue; // params from a variable: not checkable here
    const keys = objectKeys(src, j);
    if (keys) out.push({ where, code, keys: keys.sort() });
  }
  return out;
}

describe('call sites', () => {
  const sites = sourceFiles(join(ROOT, 'src')).flatMap(callSites);

  it('finds the call sites (the scanner works)', () => {
    expect(sites.length).toBeGreaterThan(10);
    // A known site: the config loader passes its violations.
    expect(sites).toContainEqual(expect.objectContaining({ code: 'CAIRN_ERR_CONFIG', keys: ['violations'] }));
  });

  it('use only codes of the catalogue', () => {
    expect(sites.filter((s) => !(s.code in ERRORS)).map((s) => `${s.where} ${s.code}`)).toEqual([]);
  });

  it('pass exactly the placeholders of the template', () => {
    const mismatched = sites
      .filter((s) => s.code in ERRORS)
      .map((s) => ({ ...s, want: placeholders(ERRORS[s.code as ErrorCode].message) }))
      .filter((s) => s.keys.join(',') !== s.want.join(','))
      .map((s) => `${s.where} ${s.code}: passes {${s.keys.join(', ')}}, the template uses {${s.want.join(', ')}}`);
    expect(mismatched).toEqual([]);
  });
});

describe('the scanner itself', () => {
  it('reads keys past strings, templates and nested objects', () => {
    const src = "x({ a: 'b,c', b: `t ${ {z: 1}.z } , x`, c: { d: 1, e: [1, 2] }, f, 'g-h': (1, 2) })";
    expect(objectKeys(src, src.indexOf('{'))).toEqual(['a', 'b', 'c', 'f', 'g-h']);
    expect(objectKeys('{ ...rest, a: 1 }', 0)).toBeUndefined();
  });
});
