import { analyzeTemplate, isTemplateError, TEMPLATE_ROOTS } from '../templates/index.js';
import { closest } from '../core/index.js';
import type { Blueprint } from './schema.js';
import { codeFrame, type BlueprintIssue, type BlueprintLocator } from './load.js';
import { collectTemplates, type BlueprintTemplate } from './collect.js';
import { Vocabulary } from './references.js';

/**
 * Parses every Liquid template of a blueprint at load, so a typo in an offer's headline fails
 * `cairn validate` instead of the first decision that shows it. A syntax error (unknown filter,
 * unclosed tag, include of a file) is reported at the file line and column of the spot inside the
 * template, mapped through the YAML scalar that holds it (plain, quoted, literal `|` or folded `>`).
 *
 * Warnings, which do not stop loading: a variable outside the ones templates get (`profle.…`),
 * and — when some source declares trait contracts — `profile.traits.X` for a trait nothing declares.
 */
export interface CheckedBlueprintTemplates {
  errors: BlueprintIssue[];
  warnings: BlueprintIssue[];
}

export function checkBlueprintTemplates(bp: Blueprint, locator: BlueprintLocator): CheckedBlueprintTemplates {
  const out: CheckedBlueprintTemplates = { errors: [], warnings: [] };
  const templates = collectTemplates(bp);
  if (templates.length === 0) return out;
  const vocab = new Vocabulary(bp);
  const lines = locator.source.split(/\r?\n/);
  for (const t of templates) {
    let refs: ReturnType<typeof analyzeTemplate>;
    try {
      refs = analyzeTemplate(t.source, t.where);
    } catch (e) {
      if (!isTemplateError(e)) throw e;
      out.errors.push(issueAt(locator, lines, t, e.offset, e.code, `${t.where}: ${e.reason}`));
      continue;
    }
    for (const r of refs) {
      const root = r.path[0];
      if (typeof root !== 'string') continue;
      if (!TEMPLATE_ROOTS.includes(root)) {
        const guess = closest(root, TEMPLATE_ROOTS);
        const message = `${t.where}: "${root}" is not a template variable${guess ? ` — did you mean "${guess}"?` : ''} (available: ${TEMPLATE_ROOTS.join(', ')}); it renders empty`;
        out.warnings.push({ ...issueAt(locator, lines, t, r.offset, 'CAIRN_ERR_TEMPLATE_UNKNOWN', message), severity: 'warning' });
        continue;
      }
      const trait = r.path[2];
      if (root === 'profile' && r.path[1] === 'traits' && typeof trait === 'string' && vocab.anyTraitContract && !vocab.traits.has(trait)) {
        const guess = closest(trait, vocab.traits);
        const at = t.source.indexOf(trait, r.offset);
        const message = `${t.where}: trait "${trait}" is not declared by any source contract, mapping or computed trait${guess ? ` — did you mean "${guess}"?` : ''}; it renders empty unless the profile has it`;
        out.warnings.push({ ...issueAt(locator, lines, t, at === -1 ? r.offset : at, 'CAIRN_ERR_TEMPLATE_UNKNOWN', message), severity: 'warning' });
      }
    }
  }
  return out;
}

function issueAt(locator: BlueprintLocator, lines: string[], t: BlueprintTemplate, offset: number, code: BlueprintIssue['code'], message: string): BlueprintIssue {
  const { line, column } = scalarPosition(locator, lines, t.path, t.source, offset);
  return { code, file: locator.file, line, column, message, frame: codeFrame(locator.source, line, column) };
}

/**
 * The file line and column of character `offset` of a scalar's value. The value is matched back
 * against the source lines the scalar spans, line by line from where it starts: each line's text
 * (indentation, opening quote and block header skipped) is found in the value at or just after the
 * position reached so far, which holds for every YAML scalar style because folding only turns line
 * breaks into spaces or fewer line breaks. Escape sequences in double-quoted scalars break a line's
 * match; the position then falls back to the last matched text, close to the spot.
 */
export function scalarPosition(locator: BlueprintLocator, lines: readonly string[], path: readonly (string | number)[], value: string, offset: number): { line: number; column: number } {
  const at = locator.position(path);
  if (!at) return { line: 1, column: 1 };
  const block = at.scalarType === 'BLOCK_LITERAL' || at.scalarType === 'BLOCK_FOLDED';
  const quote = at.scalarType === 'QUOTE_DOUBLE' || at.scalarType === 'QUOTE_SINGLE' ? 1 : 0;
  let last = { idx: 0, len: 0, line: at.line, column: at.column + quote };
  let cursor = 0;
  const maxLine = Math.min(lines.length, at.line + value.length + 1);
  for (let n = block ? at.line + 1 : at.line; n <= maxLine && cursor < value.length; n++) {
    const raw = lines[n - 1] ?? '';
    const from = n === at.line ? at.column - 1 + quote : 0;
    const rest = raw.slice(from);
    const text = rest.trimStart();
    if (text.length === 0) continue;
    const column = from + (rest.length - text.length) + 1;
    // The longest prefix of the line found near the cursor (the gap is a folded space, line breaks or
    // extra indentation): the start within the slack whose common prefix with the line is longest,
    // the first such start on a tie. Linear in the line for each of the few starts (searching for
    // ever shorter prefixes was quadratic on a long line that stops matching early, as an escape does).
    let newlines = 0;
    while (value.charCodeAt(cursor + newlines) === 10) newlines++;
    const slack = rest.length - text.length + 2 + newlines;
    let len = 0;
    let idx = -1;
    for (let start = cursor; start <= cursor + slack && start < value.length; start++) {
      let l = 0;
      while (l < text.length && start + l < value.length && text.charCodeAt(l) === value.charCodeAt(start + l)) l++;
      if (l > len) {
        len = l;
        idx = start;
        if (l === text.length) break;
      }
    }
    if (len === 0 || idx === -1) continue;
    if (offset < idx) return { line: n, column };
    if (offset < idx + len) return { line: n, column: column + (offset - idx) };
    last = { idx, len, line: n, column };
    cursor = idx + len;
  }
  return { line: last.line, column: last.column + Math.min(Math.max(0, offset - last.idx), last.len) };
}
