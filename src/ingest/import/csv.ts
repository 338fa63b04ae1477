/**
 * CSV as RFC 4180 writes it, read one physical line at a time so a record can be checkpointed by
 * byte offset: fields separated by a delimiter, optionally double-quoted, `""` for a quote inside a
 * quoted field, and newlines allowed inside quotes (the record then spans several lines).
 *
 * Lenient where it costs nothing: spaces around a quoted field are ignored, unquoted values are
 * trimmed, and a quote in the middle of an unquoted value is kept as a character. Strict where
 * guessing would corrupt data: text after a closing quote is an error for that record.
 */

const S = {
  FieldStart: 0,
  Unquoted: 1,
  Quoted: 2,
  /** Just saw a quote inside a quoted field: either the closing quote or the first of `""`. */
  QuoteInQuoted: 3,
  /** After a closing quote and spaces: only a delimiter or the end of the record may follow. */
  AfterQuoted: 4,
} as const;
type State = (typeof S)[keyof typeof S];

const QUOTE = 34;

/** Assembles one record from one or more lines; create one per record. */
export class CsvRecord {
  readonly fields: string[] = [];
  /** Set when the record is malformed; the rest of it is still consumed. */
  error: string | undefined;
  private state: State = S.FieldStart;
  private cur = '';
  private lines = 0;

  constructor(private readonly delimiter: number) {}

  /**
   * Feeds the next physical line (without its newline). Returns true when the record is
   * complete, false when a quoted field continues on the next line.
   */
  feed(line: string): boolean {
    if (this.lines++ > 0) this.cur += '\n'; // only reached inside a quoted field
    const d = this.delimiter;
    const n = line.length;
    let i = 0;
    while (i < n) {
      const c = line.charCodeAt(i);
      switch (this.state) {
        case S.FieldStart:
          if (c === QUOTE) {
            this.state = S.Quoted;
            this.cur = '';
          } else if (c === d) {
            this.endField('');
          } else if (c === 32 || c === 9) {
            this.cur += line[i]; // leading whitespace: kept only if the value turns out unquoted
          } else {
            // An unquoted value runs to the next delimiter; take it in one slice.
            const stop = line.indexOf(String.fromCharCode(d), i);
            const to = stop < 0 ? n : stop;
            this.cur += line.slice(i, to);
            this.state = S.Unquoted;
            i = to;
            continue;
          }
          break;
        case S.Unquoted:
          // Only a delimiter can follow the slice taken at FieldStart.
          this.endField(this.cur.trim());
          break;
        case S.Quoted: {
          const q = line.indexOf('"', i);
          if (q < 0) {
            this.cur += line.slice(i);
            i = n;
            continue;
          }
          this.cur += line.slice(i, q);
          this.state = S.QuoteInQuoted;
          i = q;
          break;
        }
        case S.QuoteInQuoted:
          if (c === QUOTE) {
            this.cur += '"';
            this.state = S.Quoted;
          } else if (c === d) this.endField(this.cur);
          else if (c === 32 || c === 9) this.state = S.AfterQuoted;
          else this.bad(line[i] as string);
          break;
        case S.AfterQuoted:
          if (c === d) this.endField(this.cur);
          else if (c !== 32 && c !== 9) this.bad(line[i] as string);
          break;
      }
      i++;
    }
    switch (this.state) {
      case S.Quoted:
        return false;
      case S.FieldStart:
      case S.Unquoted:
        this.endField(this.cur.trim());
        break;
      case S.QuoteInQuoted:
      case S.AfterQuoted:
        this.endField(this.cur);
        break;
    }
    return true;
  }

  /** The quoted field never closed (end of file or the record grew past the limit). */
  get open(): boolean {
    return this.state === S.Quoted;
  }

  private endField(value: string): void {
    this.fields.push(value);
    this.cur = '';
    this.state = S.FieldStart;
  }

  /** Text after a closing quote: the record is reported; the rest of the field is skipped. */
  private bad(ch: string): void {
    this.error ??= `unexpected ${JSON.stringify(ch)} after the closing quote of field ${this.fields.length + 1}`;
    this.state = S.AfterQuoted;
  }
}

/** Parses a single-line record; for tests and headers. */
export function parseCsvLine(line: string, delimiter = ','): { fields: string[]; error?: string } | { open: true } {
  const r = new CsvRecord(delimiter.charCodeAt(0));
  if (!r.feed(line)) return { open: true };
  return r.error === undefined ? { fields: r.fields } : { fields: r.fields, error: r.error };
}

/** Picks the delimiter a header line uses most: comma, semicolon or tab (comma on a tie). */
export function detectDelimiter(header: string): string {
  let best = ',';
  let bestN = 0;
  for (const d of [',', ';', '\t']) {
    let n = 0;
    let quoted = false;
    for (let i = 0; i < header.length; i++) {
      const ch = header[i];
      if (ch === '"') quoted = !quoted;
      else if (!quoted && ch === d) n++;
    }
    if (n > bestN) {
      best = d;
      bestN = n;
    }
  }
  return best;
}
