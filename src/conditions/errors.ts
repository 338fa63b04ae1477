/**
 * Errors in a condition someone wrote. Every one points at the spot: a 0-based character offset
 * into the condition source and a length, so the blueprint loader can turn it into
 * file:line:column and a code frame. The codes belong in the catalogue of src/core/errors.ts
 * (CAIRN_ERR_CONDITION_*); until they are there this class carries them itself.
 */
export type ConditionErrorCode =
  | 'CAIRN_ERR_CONDITION_SYNTAX'
  | 'CAIRN_ERR_CONDITION_TYPE'
  | 'CAIRN_ERR_CONDITION_UNKNOWN'
  | 'CAIRN_ERR_CONDITION_LIMIT';

/** Message templates and hints, in the shape of the core catalogue (`{name}` placeholders). */
export const CONDITION_ERRORS = {
  CAIRN_ERR_CONDITION_SYNTAX: {
    status: 400,
    message: 'Condition syntax error at offset {offset}: {reason}',
    hint: 'Conditions are CEL expressions, e.g. count("Order Completed", "60d") >= 3 && traits.plan == "plus".',
  },
  CAIRN_ERR_CONDITION_TYPE: {
    status: 400,
    message: 'Condition type error at offset {offset}: {reason}',
    hint: 'Compare like with like (int with int or double, string with string); a condition must give a bool; event names, windows and filters must be literals.',
  },
  CAIRN_ERR_CONDITION_UNKNOWN: {
    status: 400,
    message: 'Condition refers to an undeclared {kind} "{name}" at offset {offset}{suggestion}',
    hint: 'Declare it in the blueprint (traits, events, segments, stages, consent purposes, channels) or fix the name.',
  },
  CAIRN_ERR_CONDITION_LIMIT: {
    status: 400,
    message: 'Condition exceeds a limit at offset {offset}: {reason}',
    hint: 'Split the condition into segments, or shorten lists; limits protect evaluation time.',
  },
} as const satisfies Record<ConditionErrorCode, { status: number; message: string; hint: string }>;

export interface ConditionErrorParams {
  /** The reason in words, without the position. */
  reason: string;
  /** For CAIRN_ERR_CONDITION_UNKNOWN: what kind of name (trait, event, segment …) and the name. */
  kind?: string;
  name?: string;
  /** The closest declared name, when one is close enough to be a likely typo. */
  suggestion?: string;
}

function fill(template: string, params: Record<string, string | number | undefined>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = params[k];
    return v === undefined ? '' : String(v);
  });
}

export class ConditionError extends Error {
  readonly code: ConditionErrorCode;
  /** 0-based character offset into the condition source. */
  readonly offset: number;
  /** Characters from offset that the error is about (at least 1 unless the source is empty). */
  readonly length: number;
  readonly source: string;
  readonly params: ConditionErrorParams;

  constructor(code: ConditionErrorCode, source: string, offset: number, length: number, params: ConditionErrorParams) {
    const off = Math.max(0, Math.min(offset, source.length));
    const len = Math.max(source.length === off ? 0 : 1, Math.min(length, source.length - off));
    super(
      code === 'CAIRN_ERR_CONDITION_UNKNOWN'
        ? fill(CONDITION_ERRORS[code].message, {
            kind: params.kind ?? 'name',
            name: params.name ?? '',
            offset: off,
            suggestion: params.suggestion !== undefined ? `; did you mean "${params.suggestion}"?` : '',
          })
        : fill(CONDITION_ERRORS[code].message, { offset: off, reason: params.reason }),
    );
    this.name = 'ConditionError';
    this.code = code;
    this.offset = off;
    this.length = len;
    this.source = source;
    this.params = params;
  }

  get hint(): string {
    return CONDITION_ERRORS[this.code].hint;
  }

  /** The source line with the spot underlined, for terminals and logs. */
  codeFrame(): string {
    return codeFrame(this.source, this.offset, this.length);
  }

  toJSON(): { code: ConditionErrorCode; message: string; offset: number; length: number; hint: string; suggestion?: string } {
    const out: { code: ConditionErrorCode; message: string; offset: number; length: number; hint: string; suggestion?: string } = {
      code: this.code,
      message: this.message,
      offset: this.offset,
      length: this.length,
      hint: this.hint,
    };
    if (this.params.suggestion !== undefined) out.suggestion = this.params.suggestion;
    return out;
  }
}

export function isConditionError(e: unknown): e is ConditionError {
  return e instanceof ConditionError;
}

/** A code frame: the line holding `offset`, and `^` under the `length` characters from it. */
export function codeFrame(source: string, offset: number, length: number): string {
  const lineStart = source.lastIndexOf('\n', offset - 1) + 1;
  const nl = source.indexOf('\n', offset);
  const lineEnd = nl === -1 ? source.length : nl;
  const lineNo = source.slice(0, lineStart).split('\n').length;
  const gutter = `${lineNo} | `;
  const marks = '^'.repeat(Math.max(1, Math.min(length, lineEnd - offset)));
  return `${gutter}${source.slice(lineStart, lineEnd)}\n${' '.repeat(gutter.length + offset - lineStart)}${marks}`;
}
