import { createHash } from 'node:crypto';
import { CairnError, isObject, itemError, type ItemError } from '../../core/index.js';
import { parseJson } from '../body.js';
import { CsvRecord, detectDelimiter } from './csv.js';
import { planColumns, rowToMessage, type ColumnPlan } from './columns.js';
import { isBlank, readLines, MAX_LINE_BYTES } from './lines.js';
import type { WorkspaceModel } from '../../blueprint/index.js';

/**
 * Turns the lines of a file into rows: a Segment message ready for ingest, or a rejection that
 * names the row. Parsing is synchronous per chunk of lines; the only awaits are file reads.
 */
export interface Row {
  /** First physical line of the row (1-based). */
  line: number;
  /** Last physical line of the row (a CSV record may span lines). */
  lastLine: number;
  /** Byte offset just after the row. */
  end: number;
  /** Set when the row can go to ingest (which may still reject it). */
  message?: unknown;
  error?: ItemError;
  raw: Buffer | string;
}

/** Rows from one read chunk, and how far into the file that chunk reached. */
export interface RowChunk {
  rows: Row[];
  line: number;
  end: number;
}

export interface Position {
  /** Byte offset to read from (start of a line). */
  bytes: number;
  /** Number of the line at that offset. */
  line: number;
}

/**
 * A messageId for a row that has none: stable for the same row of the same file, so a re-run
 * is recognized by dedupe. `anchor` identifies the file by its first line, which appending rows
 * does not change; the line number keeps identical rows at different places apart.
 */
export function derivedMessageId(anchor: string, line: number, raw: Buffer | string): string {
  return `imp-${createHash('sha256').update(anchor).update(`\n${line}\n`).update(raw).digest('hex').slice(0, 32)}`;
}

function rowError(line: number, reason: string): ItemError {
  return itemError('CAIRN_ERR_IMPORT_ROW', { row: line, reason });
}

/** The reason a line is not a JSON message, in the words of the import (not of an HTTP body). */
function jsonReason(e: CairnError): string {
  switch (e.code) {
    case 'CAIRN_ERR_INVALID_JSON':
      return `not valid JSON: ${String(e.params.reason ?? '')}`;
    case 'CAIRN_ERR_INVALID_UTF8':
      return `not valid UTF-8 (first bad byte at offset ${String(e.params.offset ?? '?')} of the line)`;
    case 'CAIRN_ERR_TOO_DEEP':
      return `the JSON nests deeper than ${String(e.params.limit ?? '')} levels`;
    case 'CAIRN_ERR_FORBIDDEN_KEY':
      return `the key "${String(e.params.key ?? '')}" is not allowed`;
    default:
      return e.message;
  }
}

/** NDJSON: one Segment message per line; blank lines are skipped. */
export async function* ndjsonRows(path: string, from: Position, end: number, anchor: string): AsyncGenerator<RowChunk> {
  for await (const lines of readLines(path, { start: from.bytes, firstLine: from.line, end })) {
    const rows: Row[] = [];
    for (const l of lines) {
      if (l.tooLong) {
        rows.push({ line: l.no, lastLine: l.no, end: l.end, error: rowError(l.no, `the line is longer than ${MAX_LINE_BYTES} bytes`), raw: l.bytes });
        continue;
      }
      if (isBlank(l.bytes)) continue;
      let value: unknown;
      try {
        value = parseJson(l.bytes);
      } catch (e) {
        if (!(e instanceof CairnError)) throw e;
        rows.push({ line: l.no, lastLine: l.no, end: l.end, error: rowError(l.no, jsonReason(e)), raw: l.bytes });
        continue;
      }
      if (isObject(value) && (value.messageId === undefined || value.messageId === null || value.messageId === '')) {
        value.messageId = derivedMessageId(anchor, l.no, l.bytes);
      }
      rows.push({ line: l.no, lastLine: l.no, end: l.end, message: value, raw: l.bytes });
    }
    const last = lines[lines.length - 1];
    if (last) yield { rows, line: last.no, end: last.end };
  }
}

interface TextLine {
  no: number;
  text: string;
  end: number;
  problem?: string;
}

const fatal = new TextDecoder('utf-8', { fatal: true });

function toTextLine(l: { no: number; bytes: Buffer; end: number; tooLong: boolean }): TextLine {
  const text = l.bytes.toString('utf8');
  if (l.tooLong) return { no: l.no, text, end: l.end, problem: `the line is longer than ${MAX_LINE_BYTES} bytes` };
  if (text.includes('\uFFFD')) {
    try {
      fatal.decode(l.bytes);
    } catch {
      return { no: l.no, text, end: l.end, problem: 'not valid UTF-8' };
    }
  }
  return { no: l.no, text, end: l.end };
}

/** Most bytes one CSV record may span; an unclosed quote is reported once it grows past this. */
export const MAX_RECORD_BYTES = MAX_LINE_BYTES;

/**
 * Frames CSV records from lines. A record whose quote never closes (by the end of the file or
 * within MAX_RECORD_BYTES) is reported at its first line, and reading resumes with the line after
 * it, so one stray quote costs one row, not the rest of the file.
 */
export class CsvFramer {
  private rec: CsvRecord | undefined;
  private recLines: TextLine[] = [];
  private recBytes = 0;
  /** Lines to read, from `head` on (re-read lines are put back in front). */
  private queue: TextLine[] = [];
  private head = 0;

  constructor(
    private readonly delimiter: number,
    private readonly emit: (lines: readonly TextLine[], fields: string[] | undefined, problem: string | undefined) => void,
  ) {}

  push(line: TextLine): void {
    this.queue.push(line);
    this.drain();
  }

  /** End of input: whatever is still open is reported, and the lines after it re-read. */
  finish(): void {
    while (this.rec) {
      this.fail('a quoted field is not closed before the end of the file');
      this.drain();
    }
  }

  private drain(): void {
    while (this.head < this.queue.length) this.step(this.queue[this.head++] as TextLine);
    this.queue = [];
    this.head = 0;
  }

  private step(l: TextLine): void {
    if (!this.rec) {
      if (l.text.trim() === '' && !l.problem) return;
      this.rec = new CsvRecord(this.delimiter);
      this.recLines = [];
      this.recBytes = 0;
    }
    this.recLines.push(l);
    this.recBytes += l.text.length + 1;
    if (l.problem) {
      const lines = this.recLines;
      this.rec = undefined;
      this.emit(lines, undefined, l.problem);
      return;
    }
    if (this.rec.feed(l.text)) {
      const { fields, error } = this.rec;
      const lines = this.recLines;
      this.rec = undefined;
      this.emit(lines, fields, error);
      return;
    }
    if (this.recBytes > MAX_RECORD_BYTES) this.fail(`a quoted field is not closed within ${MAX_RECORD_BYTES} bytes`);
  }

  /** Reports the open record at its first line and queues the lines after it to be read again. */
  private fail(reason: string): void {
    const lines = this.recLines;
    this.rec = undefined;
    this.recLines = [];
    this.emit(lines.slice(0, 1), undefined, reason);
    // Lines still queued come after these, so the re-read ones go first.
    this.queue = lines.slice(1).concat(this.queue.slice(this.head));
    this.head = 0;
  }
}

export interface CsvHeader {
  plan: ColumnPlan;
  delimiter: string;
  /** Where the data rows start. */
  after: Position;
  /** The header's text, which anchors derived messageIds. */
  text: string;
}

/** Reads and checks the header record; throws CAIRN_ERR_IMPORT_ROW (row 1) when unusable. */
export async function readCsvHeader(path: string, end: number, model: WorkspaceModel, delimiter: string | undefined): Promise<CsvHeader> {
  let delim = delimiter ?? ',';
  let rec: CsvRecord | undefined;
  const texts: string[] = [];
  for await (const lines of readLines(path, { end })) {
    for (const l of lines) {
      const t = toTextLine(l);
      if (t.problem) throw new CairnError('CAIRN_ERR_IMPORT_ROW', { row: t.no, reason: `header: ${t.problem}` });
      if (!rec) {
        if (t.text.trim() === '') continue;
        if (delimiter === undefined) delim = detectDelimiter(t.text);
        rec = new CsvRecord(delim.charCodeAt(0));
      }
      texts.push(t.text);
      if (rec.feed(t.text)) {
        if (rec.error) throw new CairnError('CAIRN_ERR_IMPORT_ROW', { row: t.no - texts.length + 1, reason: `header: ${rec.error}` });
        return { plan: planColumns(rec.fields, model), delimiter: delim, after: { bytes: t.end, line: t.no + 1 }, text: texts.join('\n') };
      }
    }
  }
  throw new CairnError('CAIRN_ERR_IMPORT_ROW', { row: 1, reason: rec ? 'header: a quoted field is not closed' : 'the file has no header row; a profile CSV starts with one (e.g. user_id,email,name)' });
}

/** CSV profiles: each record becomes an identify; a wrong column count rejects that record. */
export async function* csvRows(path: string, from: Position, end: number, header: CsvHeader, coerce: boolean): AsyncGenerator<RowChunk> {
  let out: Row[] = [];
  const framer = new CsvFramer(header.delimiter.charCodeAt(0), (lines, fields, problem) => {
    const first = lines[0] as TextLine;
    const last = lines[lines.length - 1] as TextLine;
    const raw = lines.length === 1 ? first.text : lines.map((l) => l.text).join('\n');
    const base = { line: first.no, lastLine: last.no, end: last.end, raw };
    if (problem !== undefined || fields === undefined) {
      out.push({ ...base, error: rowError(first.no, problem ?? 'unreadable record') });
      return;
    }
    const r = rowToMessage(header.plan, fields, coerce);
    if (!r.ok) {
      out.push({ ...base, error: rowError(first.no, r.reason) });
      return;
    }
    if (r.message.messageId === undefined) r.message.messageId = derivedMessageId(header.text, first.no, raw);
    out.push({ ...base, message: r.message });
  });
  let line = from.line - 1;
  let pos = from.bytes;
  for await (const lines of readLines(path, { start: from.bytes, firstLine: from.line, end })) {
    for (const l of lines) framer.push(toTextLine(l));
    const last = lines[lines.length - 1];
    if (last) {
      line = last.no;
      pos = last.end;
    }
    if (out.length > 0) {
      yield { rows: out, line, end: pos };
      out = [];
    }
  }
  framer.finish();
  yield { rows: out, line, end: pos };
}
