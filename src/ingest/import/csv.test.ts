import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CsvRecord, detectDelimiter, parseCsvLine } from './csv.js';
import { CsvFramer } from './rows.js';

function parseLines(lines: string[], delimiter = ','): { fields: string[]; error: string | undefined; complete: boolean } {
  const r = new CsvRecord(delimiter.charCodeAt(0));
  let complete = false;
  for (const l of lines) complete = r.feed(l);
  return { fields: r.fields, error: r.error, complete };
}

describe('CSV records', () => {
  it('reads plain, quoted and empty fields', () => {
    expect(parseCsvLine('a,b,,d')).toEqual({ fields: ['a', 'b', '', 'd'] });
    expect(parseCsvLine('"a,1","say ""hi""",x')).toEqual({ fields: ['a,1', 'say "hi"', 'x'] });
    expect(parseCsvLine('')).toEqual({ fields: [''] });
    expect(parseCsvLine('a,')).toEqual({ fields: ['a', ''] });
    expect(parseCsvLine('""')).toEqual({ fields: [''] });
  });

  it('trims unquoted values, keeps spaces inside quotes and ignores them around quotes', () => {
    expect(parseCsvLine('  a , b  ,c')).toEqual({ fields: ['a', 'b', 'c'] });
    expect(parseCsvLine(' " a " , "b" ')).toEqual({ fields: [' a ', 'b'] });
  });

  it('keeps a quote inside an unquoted value', () => {
    expect(parseCsvLine('5"10,x')).toEqual({ fields: ['5"10', 'x'] });
  });

  it('continues a quoted field on the next line', () => {
    const r = parseLines(['1,"first line', 'second line",3']);
    expect(r).toEqual({ fields: ['1', 'first line\nsecond line', '3'], error: undefined, complete: true });
    expect(parseCsvLine('a,"open')).toEqual({ open: true });
  });

  it('reports text after a closing quote and still consumes the record', () => {
    const r = parseCsvLine('"a"b,c');
    expect('error' in r && r.error).toMatch(/after the closing quote of field 1/);
    expect('fields' in r && r.fields.length).toBe(2);
  });

  it('honours other delimiters and detects them from the header', () => {
    expect(parseCsvLine('a;"b;c";d', ';')).toEqual({ fields: ['a', 'b;c', 'd'] });
    expect(detectDelimiter('user_id;email;name')).toBe(';');
    expect(detectDelimiter('user_id\temail')).toBe('\t');
    expect(detectDelimiter('"a;b",c')).toBe(',');
    expect(detectDelimiter('single')).toBe(',');
  });

  it('reads back any fields written with RFC 4180 quoting (property)', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ',', '"', '\n', 'é', ';'), maxLength: 8 });
    fc.assert(
      fc.property(fc.array(field, { minLength: 1, maxLength: 6 }), (fields) => {
        const text = fields.map((f) => `"${f.replace(/"/g, '""')}"`).join(',');
        const r = parseLines(text.split('\n'));
        expect(r.complete).toBe(true);
        expect(r.error).toBeUndefined();
        expect(r.fields).toEqual(fields);
      }),
      { numRuns: 300 },
    );
  });
});

describe('CSV framing', () => {
  type Out = { lines: number[]; fields?: string[]; problem?: string };
  function frame(text: string): Out[] {
    const out: Out[] = [];
    const f = new CsvFramer(44, (lines, fields, problem) => {
      out.push({ lines: lines.map((l) => l.no), ...(fields ? { fields } : {}), ...(problem ? { problem } : {}) });
    });
    let end = 0;
    text.split('\n').forEach((t, i) => {
      end += t.length + 1;
      f.push({ no: i + 1, text: t, end });
    });
    f.finish();
    return out;
  }

  it('frames multi-line records and skips blank lines', () => {
    expect(frame('a,b\n\n"x\ny",z\nc,d')).toEqual([
      { lines: [1], fields: ['a', 'b'] },
      { lines: [3, 4], fields: ['x\ny', 'z'] },
      { lines: [5], fields: ['c', 'd'] },
    ]);
  });

  it('reports a quote that never closes at its first line and re-reads the lines after it', () => {
    expect(frame('a,b\n"broken,c\nd,e\nf,g')).toEqual([
      { lines: [1], fields: ['a', 'b'] },
      { lines: [2], problem: 'a quoted field is not closed before the end of the file' },
      { lines: [3], fields: ['d', 'e'] },
      { lines: [4], fields: ['f', 'g'] },
    ]);
  });

  it('passes a line problem through as that record’s error', () => {
    const out: Out[] = [];
    const f = new CsvFramer(44, (lines, fields, problem) => out.push({ lines: lines.map((l) => l.no), ...(problem ? { problem } : {}) }));
    f.push({ no: 1, text: 'a', end: 2, problem: 'not valid UTF-8' });
    f.push({ no: 2, text: 'b', end: 4 });
    f.finish();
    expect(out).toEqual([{ lines: [1], problem: 'not valid UTF-8' }, { lines: [2] }]);
  });
});
