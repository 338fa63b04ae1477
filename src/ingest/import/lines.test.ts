import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLines, type Line } from './lines.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: string | Buffer): string {
  const p = join(dir, `f${n++}.txt`);
  writeFileSync(p, content);
  return p;
}

async function all(path: string, opts: Parameters<typeof readLines>[1] = {}): Promise<Line[]> {
  const out: Line[] = [];
  for await (const chunk of readLines(path, opts)) out.push(...chunk);
  return out;
}

const texts = (lines: Line[]) => lines.map((l) => l.bytes.toString('utf8'));

describe('readLines', () => {
  it('yields numbered lines with the byte offset after each', async () => {
    const lines = await all(file('ab\ncd\n\nxyz'));
    expect(texts(lines)).toEqual(['ab', 'cd', '', 'xyz']);
    expect(lines.map((l) => l.no)).toEqual([1, 2, 3, 4]);
    expect(lines.map((l) => l.end)).toEqual([3, 6, 7, 10]);
  });

  it('drops CR of CRLF and a leading BOM, but counts their bytes', async () => {
    const lines = await all(file(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\r\nc,d\r\n')])));
    expect(texts(lines)).toEqual(['a,b', 'c,d']);
    expect(lines.map((l) => l.end)).toEqual([8, 13]);
  });

  it('resumes at an offset with the right line numbers', async () => {
    const p = file('one\ntwo\nthree\nfour\n');
    const first = await all(p);
    const second = first[1] as Line;
    const rest = await all(p, { start: second.end, firstLine: second.no + 1 });
    expect(texts(rest)).toEqual(['three', 'four']);
    expect(rest.map((l) => l.no)).toEqual([3, 4]);
  });

  it('reports an over-long line without buffering it and goes on with the next', async () => {
    const long = 'x'.repeat(5000);
    const lines = await all(file(`ok\n${long}\nafter\n${long}`), { maxLineBytes: 100, chunkBytes: 64 });
    expect(lines.map((l) => [l.no, l.tooLong])).toEqual([
      [1, false],
      [2, true],
      [3, false],
      [4, true],
    ]);
    expect((lines[1] as Line).bytes.length).toBeLessThanOrEqual(1024);
    expect((lines[2] as Line).bytes.toString()).toBe('after');
    expect((lines[3] as Line).end).toBe(3 + 5001 + 6 + 5000);
  });

  it('stops at the given end offset', async () => {
    const lines = await all(file('a\nb\nc\n'), { end: 4 });
    expect(texts(lines)).toEqual(['a', 'b']);
  });

  it('splits any content exactly like String.split, for any chunk size (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.stringMatching(/^[a-z\u00e9\u4e2d ]{0,12}$/), { minLength: 1, maxLength: 30 }), fc.boolean(), fc.integer({ min: 1, max: 40 }), async (parts, trailingNewline, chunkBytes) => {
        const content = parts.join('\n') + (trailingNewline ? '\n' : '');
        const p = file(content);
        const lines = await all(p, { chunkBytes });
        const expected = content.split('\n');
        if (trailingNewline || expected[expected.length - 1] === '') expected.pop();
        expect(texts(lines)).toEqual(expected);
        // Each end offset is where the next line starts.
        let at = 0;
        for (const [i, l] of lines.entries()) {
          at += Buffer.byteLength(expected[i] as string) + 1;
          expect(l.end).toBe(Math.min(at, Buffer.byteLength(content)));
        }
      }),
      { numRuns: 150 },
    );
  });
});
