import { closeSync, existsSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ErrorCode } from '../../core/index.js';
import { readLines } from './lines.js';

/** One rejected row, as written to the error report (one JSON object per line). */
export interface RejectedRow {
  /** 1-based line in the imported file where the row starts. */
  line: number;
  code: ErrorCode;
  message: string;
  /** The row as it was in the file, cut at RAW_LIMIT characters. */
  raw: string;
  truncated?: true;
}

export const RAW_LIMIT = 1000;

export function rawText(text: string): { raw: string; truncated?: true } {
  return text.length > RAW_LIMIT ? { raw: text.slice(0, RAW_LIMIT), truncated: true } : { raw: text };
}

/**
 * The per-row error report. Created on the first rejected row (a clean import leaves no file).
 * On a fresh import an old report is removed; on a resumed one, entries for lines before the
 * resume point are kept and later ones dropped, so the report matches the import exactly even
 * when the previous run died between writing a batch's errors and its checkpoint.
 */
export class ErrorReport {
  private fd: number | undefined;
  count = 0;

  private constructor(readonly path: string) {}

  static async open(path: string, resumeAfterLine: number | undefined): Promise<ErrorReport> {
    const report = new ErrorReport(path);
    if (resumeAfterLine === undefined) {
      rmSync(path, { force: true });
      return report;
    }
    if (!existsSync(path)) return report;
    const tmp = `${path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      for await (const lines of readLines(path)) {
        let out = '';
        for (const l of lines) {
          const text = l.bytes.toString('utf8');
          let entry: unknown;
          try {
            entry = JSON.parse(text);
          } catch {
            continue;
          }
          const line = typeof entry === 'object' && entry !== null ? (entry as { line?: unknown }).line : undefined;
          if (typeof line === 'number' && line <= resumeAfterLine) {
            out += text + '\n';
            report.count++;
          }
        }
        if (out) writeSync(fd, out);
      }
    } finally {
      closeSync(fd);
    }
    if (report.count > 0) renameSync(tmp, path);
    else {
      rmSync(tmp, { force: true });
      rmSync(path, { force: true });
    }
    return report;
  }

  /** The path of a report left by an earlier run, when it holds anything. */
  static async existing(path: string): Promise<string | undefined> {
    const st = await stat(path).catch(() => undefined);
    return st && st.isFile() && st.size > 0 ? path : undefined;
  }

  /** Appends entries (synchronously, in order). */
  write(entries: readonly RejectedRow[]): void {
    if (entries.length === 0) return;
    this.fd ??= openSync(this.path, 'a');
    writeSync(this.fd, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    this.count += entries.length;
  }

  /** The report's path when it holds any entry. */
  get file(): string | undefined {
    return this.count > 0 ? this.path : undefined;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
