import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jsonDepth, MAX_DEPTH } from './body.js';

/**
 * jsonDepth decides which bodies are refused as too deep, so a faster scan must give the same
 * number as the plain character loop it replaced, on JSON and on any other text the parser would
 * refuse later (the order of checks decides the error code).
 */
function reference(text: string, stopAt: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAt) return max;
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** Strings made of the characters the scan treats specially, so escapes and quoted brackets are common. */
const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '{', '}', '[', ']', 'a', ' ', ',', ':', 'é', '\u{1f600}') });

const nested: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tricky, fc.integer(), fc.constant(null), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(tricky, tie('value'), { maxKeys: 4 })),
})).value;

describe('jsonDepth', () => {
  it('gives the reference depth on random JSON whose strings hold quotes, backslashes and brackets', () => {
    fc.assert(
      fc.property(nested, fc.integer({ min: 0, max: 40 }), (v, stopAt) => {
        const text = JSON.stringify(v) ?? 'null';
        expect(jsonDepth(text, stopAt)).toBe(reference(text, stopAt));
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the reference depth on arbitrary text (unterminated strings, stray escapes, unbalanced brackets)', () => {
    fc.assert(
      fc.property(tricky, fc.integer({ min: 0, max: 40 }), (text, stopAt) => {
        expect(jsonDepth(text, stopAt)).toBe(reference(text, stopAt));
      }),
      { numRuns: 5000 },
    );
  });

  it('counts escaped quotes by the parity of the backslashes before them', () => {
    for (const text of ['["\\"[["]', '["\\\\"[[]]]', '["\\\\\\"[["]', '"\\', '["\\', '[[["\\\\\\\\"]]]', '"a\\"b"[', '[]]]]][[']) {
      expect(jsonDepth(text, MAX_DEPTH)).toBe(reference(text, MAX_DEPTH));
    }
    expect(jsonDepth(`${'['.repeat(MAX_DEPTH + 1)}"${']'.repeat(40)}"`, MAX_DEPTH)).toBe(MAX_DEPTH + 1);
  });
});
