import { celAst, compileCondition, conditionSyntax, isConditionError, type CompiledCondition, type ConditionDeclarations, type ConditionError } from '../conditions/index.js';
import type { ErrorCode } from '../core/index.js';
import type { Blueprint } from './schema.js';
import { codeFrame, type BlueprintIssue, type BlueprintLocator } from './load.js';
import { blueprintSymbols, collectConditions, type BlueprintCondition } from './collect.js';

/**
 * Compiles every condition of a blueprint once, at load, against the names the blueprint declares,
 * and maps a condition error's offset back to the YAML file's line and column. When no source
 * declares a data contract, an event or trait a condition names cannot be checked: it is accepted
 * with a warning instead of an error.
 */
export interface CompiledBlueprintConditions {
  /** By YAML path text, e.g. `segments[0].condition`. */
  byPath: Map<string, { condition: BlueprintCondition; compiled: CompiledCondition }>;
  errors: BlueprintIssue[];
  warnings: BlueprintIssue[];
}

export function compileBlueprintConditions(bp: Blueprint, locator: BlueprintLocator): CompiledBlueprintConditions {
  const symbols = blueprintSymbols(bp);
  const contracts = symbols.eventsChecked;
  const events = new Set(symbols.events);
  const traits = new Set(symbols.traits);
  const declarations = (): ConditionDeclarations => ({
    events: [...events],
    traits: Object.fromEntries([...traits].map((t) => [t, 'dyn' as const])),
    computed: (bp.computed_traits ?? []).map((c) => c.name),
    segments: symbols.segments,
    stages: symbols.stages,
    purposes: symbols.consentPurposes,
    channels: symbols.channels,
  });
  let decl = declarations();
  const out: CompiledBlueprintConditions = { byPath: new Map(), errors: [], warnings: [] };

  for (const c of collectConditions(bp)) {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        out.byPath.set(c.where, { condition: c, compiled: compileCondition(c.source, decl) });
        break;
      } catch (e) {
        if (!isConditionError(e)) throw e;
        const name = e.params.name;
        const unchecked = !contracts && e.code === 'CAIRN_ERR_CONDITION_UNKNOWN' && name !== undefined && (e.params.kind === 'event' || e.params.kind === 'trait');
        if (unchecked) {
          // Without contracts the blueprint cannot say which events and traits exist.
          out.warnings.push({ ...issueAt(locator, c, e, 'CAIRN_ERR_CONDITION_UNKNOWN'), severity: 'warning' } as BlueprintIssue);
          if (e.params.kind === 'event') events.add(name);
          else traits.add(name);
          decl = declarations();
          continue;
        }
        out.errors.push(issueAt(locator, c, e, e.code));
        break;
      }
    }
  }
  out.errors.push(...segmentCycles(bp, out.byPath, locator));
  return out;
}

function issueAt(locator: BlueprintLocator, c: BlueprintCondition, e: ConditionError, code: ErrorCode): BlueprintIssue {
  const { line, column } = conditionPosition(locator, c, e.offset);
  return { code, file: locator.file, line, column, message: `${c.where}: ${e.message}`, frame: codeFrame(locator.source, line, column) };
}

/**
 * The file position (1-based line and column) of a character offset inside a condition string, for
 * plain, quoted and block scalars. Used for condition errors, segment cycles and lint findings.
 *
 * The string YAML hands over is not the text in the file when the scalar spans lines: a literal
 * block (|) keeps its line breaks, but a folded block (>), a plain and a quoted scalar turn each
 * line break into a space (an empty line into one line break), and indentation (and in a plain or
 * quoted scalar, the spaces before a break) is dropped; inside quotes an escape (\", '') is one
 * character of several. The offset is walked through the file's lines by those rules.
 */
export function conditionPosition(locator: BlueprintLocator, c: BlueprintCondition, offset: number): { line: number; column: number } {
  const at = locator.position(c.path);
  if (!at) return { line: 1, column: 1 };
  const lines = locator.source.split(/\r?\n/);
  const block = at.scalarType === 'BLOCK_LITERAL' || at.scalarType === 'BLOCK_FOLDED';
  const folds = at.scalarType !== 'BLOCK_LITERAL';
  const quote = at.scalarType === 'QUOTE_DOUBLE' || at.scalarType === 'QUOTE_SINGLE' ? 1 : 0;
  let consumed = 0;
  let indent: number | undefined;
  let previousEmpty = false;
  // A block's content starts on the line after its header; other scalars start where the value does.
  for (let i = block ? at.line : at.line - 1; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const first = i === (block ? at.line : at.line - 1);
    const leading = raw.length - raw.trimStart().length;
    const empty = raw.trim() === '';
    let start: number;
    if (block) {
      if (!empty) {
        indent ??= leading;
        if (leading < indent) break; // the block ended
      }
      start = Math.min(indent ?? leading, raw.length);
    } else start = first ? at.column - 1 + quote : leading;
    // A flow scalar (plain or quoted) drops the spaces before each line break.
    const text = block ? raw.slice(start) : raw.slice(start).trimEnd();
    const length = decodedLength(text, at.scalarType);
    if (!first) consumed += !folds ? 1 : empty ? 1 : previousEmpty ? 0 : 1;
    if (!empty && offset <= consumed + length) return { line: i + 1, column: start + 1 + rawIndex(text, Math.max(0, offset - consumed), at.scalarType) };
    consumed += empty ? 0 : length;
    previousEmpty = empty;
  }
  return { line: at.line, column: at.column };
}

/** Characters in the file one character of a quoted scalar takes at `i`: an escape (\", \xNN, \uNNNN) or '' in single quotes. */
function rawStep(text: string, i: number, scalarType: string | undefined): number {
  if (scalarType === 'QUOTE_DOUBLE' && text[i] === '\\') {
    const kind = text[i + 1];
    return kind === 'x' ? 4 : kind === 'u' ? 6 : kind === 'U' ? 10 : 2;
  }
  if (scalarType === 'QUOTE_SINGLE' && text[i] === "'" && text[i + 1] === "'") return 2;
  return 1;
}

/** How many characters of the string a line of the file gives. */
function decodedLength(text: string, scalarType: string | undefined): number {
  let n = 0;
  for (let i = 0; i < text.length; i += rawStep(text, i, scalarType)) n++;
  return n;
}

/** Where in the line's text the `count`-th character of the string starts. */
function rawIndex(text: string, count: number, scalarType: string | undefined): number {
  let i = 0;
  for (let n = 0; n < count && i < text.length; n++) i += rawStep(text, i, scalarType);
  return Math.min(i, text.length);
}

/**
 * Segments that read each other with in_segment() in a cycle (a → b → a, or a segment reading
 * itself) are refused: membership is decided in one pass in dependency order (see
 * model.ts orderSegments), and a cycle has no order — its members' membership would depend on which
 * one happens to be evaluated first, and could flip on every pass without any event. One error per
 * cycle (per strongly connected group of segments), at the in_segment() call in the first declared
 * member that leads around it, naming the whole cycle.
 */
function segmentCycles(bp: Blueprint, byPath: CompiledBlueprintConditions['byPath'], locator: BlueprintLocator): BlueprintIssue[] {
  const segments = bp.segments ?? [];
  const index = new Map(segments.map((s, i) => [s.name, i]));
  const edges = segments.map((_, i) => (byPath.get(`segments[${i}].condition`)?.compiled.references.segments ?? []).flatMap((d) => (index.has(d) ? [index.get(d) as number] : [])));

  // Tarjan's strongly connected components, iteratively (a deep chain must not overflow the stack).
  const order: number[] = new Array<number>(segments.length).fill(-1);
  const low: number[] = new Array<number>(segments.length).fill(0);
  const onStack: boolean[] = new Array<boolean>(segments.length).fill(false);
  const stack: number[] = [];
  const groups: number[][] = [];
  let counter = 0;
  for (let root = 0; root < segments.length; root++) {
    if (order[root] !== -1) continue;
    const work: [node: number, next: number][] = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const top = work[work.length - 1] as [number, number];
      const [v, i] = top;
      const out = edges[v] ?? [];
      if (i < out.length) {
        top[1] = i + 1;
        const w = out[i] as number;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v] as number, order[w] as number);
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]] as number, low[v] as number);
      if (low[v] === order[v]) {
        const group: number[] = [];
        let w: number;
        do {
          w = stack.pop() as number;
          onStack[w] = false;
          group.push(w);
        } while (w !== v);
        groups.push(group);
      }
    }
  }

  const issues: BlueprintIssue[] = [];
  for (const group of groups) {
    const members = new Set(group);
    const first = Math.min(...group);
    if (group.length === 1 && !(edges[first] ?? []).includes(first)) continue;
    // The shortest way around from the first declared member back to itself, inside the group.
    const prev = new Map<number, number>();
    const queue = [first];
    let closing: number | undefined;
    while (queue.length > 0 && closing === undefined) {
      const v = queue.shift() as number;
      for (const w of edges[v] ?? []) {
        if (!members.has(w)) continue;
        if (w === first) {
          closing = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [first];
    for (let v = closing ?? first; v !== first; v = prev.get(v) ?? first) path.splice(1, 0, v);
    const names = [...path, first].map((i) => segments[i]?.name ?? '');
    const next = names[1] as string;
    const others = group.filter((i) => !path.includes(i)).sort((a, b) => a - b).map((i) => `"${segments[i]?.name ?? ''}"`);
    const where = `segments[${first}].condition`;
    const entry = byPath.get(where);
    const call = entry ? findInSegmentCall(entry.compiled, next) : undefined;
    const message =
      `${where}: segment "${names[0] ?? ''}" depends on itself through in_segment(): ${names.join(' → ')}` +
      (others.length > 0 ? ` (${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} in the same cycle)` : '') +
      '; membership in a cycle would depend on the order of evaluation';
    if (entry && call !== undefined) {
      const { line, column } = conditionPosition(locator, entry.condition, call);
      issues.push({ code: 'CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE', file: locator.file, line, column, message, frame: codeFrame(locator.source, line, column) });
    } else issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE', ['segments', first, 'condition'], message));
  }
  return issues;
}

/** The offset of the first `in_segment("NAME")` call in a condition. */
function findInSegmentCall(c: CompiledCondition, name: string): number | undefined {
  const root = conditionSyntax(c);
  const visit = (n: celAst.Node): number | undefined => {
    if (n.op === 'call' && n.args[0] === 'in_segment' && n.args[1].length === 1 && n.args[1][0] && celAst.stringLiteral(n.args[1][0]) === name) return n.start;
    for (const child of celAst.children(n)) {
      const found = visit(child);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return root ? visit(root) : undefined;
}
