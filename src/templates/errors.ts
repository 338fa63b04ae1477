import { LiquidError } from 'liquidjs';
import { CairnError, type ErrorCode } from '../core/index.js';

export type TemplateErrorCode = Extract<ErrorCode, 'CAIRN_ERR_TEMPLATE_SYNTAX' | 'CAIRN_ERR_TEMPLATE_RENDER' | 'CAIRN_ERR_TEMPLATE_LIMIT'>;

/**
 * A template that does not parse or fails while rendering. `line` and `column` (1-based) and
 * `offset` (0-based) are positions inside the template source, so a caller that knows where the
 * template sits (a blueprint loader mapping through a YAML scalar) can point into its own file;
 * `frame` shows the template lines with a `^` under the spot.
 */
export class TemplateError extends CairnError {
  declare readonly code: TemplateErrorCode;
  readonly line: number;
  readonly column: number;
  readonly offset: number;
  readonly frame: string;
  /** Where the template sits (`offers[2].content.web.headline`), or `template`. */
  readonly where: string;
  /** What went wrong, without the position. */
  readonly reason: string;

  constructor(code: TemplateErrorCode, where: string, source: string, offset: number, reason: string) {
    const { line, column } = lineColumn(source, offset);
    super(code, { where, line, column, reason });
    this.name = 'TemplateError';
    this.line = line;
    this.column = column;
    this.offset = offset;
    this.where = where;
    this.reason = reason;
    this.frame = templateFrame(source, line, column);
  }
}

export function isTemplateError(e: unknown): e is TemplateError {
  return e instanceof TemplateError;
}

/** 1-based line and column of a 0-based offset. */
export function lineColumn(source: string, offset: number): { line: number; column: number } {
  const before = source.slice(0, Math.max(0, Math.min(offset, source.length)));
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: offset - nl };
}

/** The template line with the error, one line of context either side, and a `^` under the column. */
export function templateFrame(source: string, line: number, column: number): string {
  const lines = source.split('\n');
  const last = Math.min(lines.length, line + 1);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = Math.max(1, line - 1); n <= last; n++) {
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1] ?? ''}`);
    if (n === line) out.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  }
  return out.join('\n');
}

/**
 * Thrown by Cairn's filters with the position of the filter itself (LiquidJS only knows the whole
 * `{{ … }}`), so a bad currency code points at `money`, not at the start of the output.
 */
export class FilterFailure extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const LIMIT = /limit exceeded$/;

/**
 * Turns a LiquidJS error into a TemplateError at the most precise spot known: the filter name for
 * an unknown filter or a failing Cairn filter, else the start of the tag or output.
 */
export function fromLiquidError(e: unknown, phase: 'parse' | 'render', where: string, source: string): TemplateError {
  if (e instanceof TemplateError) return e;
  if (!(e instanceof LiquidError) && !LiquidError.is(e)) {
    // LiquidJS raises its limits as plain assertion errors outside tags (no token: no position).
    const reason = e instanceof Error ? e.message : String(e);
    const code: TemplateErrorCode = LIMIT.test(reason) ? 'CAIRN_ERR_TEMPLATE_LIMIT' : phase === 'parse' ? 'CAIRN_ERR_TEMPLATE_SYNTAX' : 'CAIRN_ERR_TEMPLATE_RENDER';
    return new TemplateError(code, where, source, 0, reason);
  }
  const err = e as LiquidError & { originalError?: unknown };
  const token = (err as unknown as { token?: { begin: number; end: number } }).token;
  let offset = token?.begin ?? 0;
  const original = err.originalError;
  // LiquidJS appends ", line:1, col:7" (and a file) to its messages; keep the plain reason.
  let reason = (original instanceof Error ? original.message : err.message).replace(/(, file:[^,]*)?, line:\d+, col:\d+$/, '');
  if (original instanceof FilterFailure) offset = original.offset;
  const unknownFilter = /^undefined filter: (.+)$/.exec(reason);
  if (unknownFilter && token) {
    const name = unknownFilter[1] as string;
    const text = source.slice(token.begin, token.end);
    const m = new RegExp(`\\|\\s*(${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})\\b`).exec(text);
    if (m) offset = token.begin + m.index + m[0].length - name.length;
    reason = `unknown filter "${name}"`;
  }
  const code: TemplateErrorCode = LIMIT.test(reason) ? 'CAIRN_ERR_TEMPLATE_LIMIT' : phase === 'parse' ? 'CAIRN_ERR_TEMPLATE_SYNTAX' : 'CAIRN_ERR_TEMPLATE_RENDER';
  return new TemplateError(code, where, source, offset, reason);
}
