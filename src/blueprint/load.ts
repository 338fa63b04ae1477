import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, isNode, visit, type Node, type Document, type YAMLError } from 'yaml';
import { Compile } from 'typebox/compile';
import { CairnError, closest, parseDuration, type ErrorCode } from '../core/index.js';
import { Blueprint } from './schema.js';
import { PRESET_NAMES } from './presets.js';

/** One problem in a blueprint, with its position (1-based line and column). */
export interface BlueprintIssue {
  code: ErrorCode;
  file: string;
  line: number;
  column: number;
  message: string;
  /** The offending lines with a ^ under the spot. */
  frame: string;
}

export class BlueprintError extends CairnError {
  readonly issues: BlueprintIssue[];
  constructor(issues: BlueprintIssue[]) {
    const first = issues[0] as BlueprintIssue;
    super(first.code, { file: first.file, line: first.line, column: first.column, reason: first.message }, issues);
    this.issues = issues;
    this.message = issues.map((i) => `${i.file}:${i.line}:${i.column}: ${i.message} [${i.code}]\n${i.frame}`).join('\n');
  }
}

const checker = Compile(Blueprint);

export function codeFrame(source: string, line: number, column: number): string {
  const lines = source.split(/\r?\n/);
  const out: string[] = [];
  const width = String(Math.min(lines.length, line + 1)).length;
  for (let n = Math.max(1, line - 2); n <= Math.min(lines.length, line + 1); n++) {
    const mark = n === line ? '>' : ' ';
    out.push(`${mark} ${String(n).padStart(width)} | ${lines[n - 1] ?? ''}`);
    if (n === line) out.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  }
  return out.join('\n');
}

/** A located problem found by a later check (references, lint) — built from a YAML path. */
export class BlueprintLocator {
  constructor(
    readonly file: string,
    readonly source: string,
    private readonly doc: Document,
    private readonly lc: LineCounter,
  ) {}

  issue(code: ErrorCode, path: readonly (string | number)[], message: string, atKey = false): BlueprintIssue {
    const offset = this.offsetOf(path, atKey);
    const { line, col } = this.lc.linePos(offset);
    return { code, file: this.file, line, column: col, message, frame: codeFrame(this.source, line, col) };
  }

  private offsetOf(path: readonly (string | number)[], atKey: boolean): number {
    // Walk down as far as the path exists; point at the deepest node found.
    let node: unknown = this.doc.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const last = i === path.length - 1;
        if (last && atKey && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
        node = pair.value;
        const r = (pair.value as Node | null)?.range ?? (isScalar(pair.key) ? pair.key.range : undefined);
        if (r) offset = r[0];
      } else if (node && typeof node === 'object' && 'items' in node && Array.isArray((node as { items: unknown[] }).items)) {
        const item = (node as { items: unknown[] }).items[Number(seg)] as Node | undefined;
        if (!item) break;
        node = item;
        if (item.range) offset = item.range[0];
      } else break;
    }
    return offset;
  }
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The schema node at a schema path such as `#/properties/sources/items`. */
function schemaAt(schemaPath: string): unknown {
  let node: unknown = Blueprint;
  for (const seg of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (node && typeof node === 'object') node = (node as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/** Allowed keys of the schema object at a data path (for "did you mean"). */
function allowedKeysAt(schemaPath: string): string[] {
  const node = schemaAt(schemaPath);
  const props = node && typeof node === 'object' ? (node as { properties?: Record<string, unknown> }).properties : undefined;
  return props ? Object.keys(props) : [];
}

/** `computed_traits[0].kind` for the path ['computed_traits', 0, 'kind']. */
function formatPath(path: readonly (string | number)[]): string {
  return path.length ? path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') : 'blueprint';
}

function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const seg of path) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
  return v;
}

/**
 * Why a value matches no branch of a union: for a list of literals (`kind: cout`), the allowed
 * values and the closest one; otherwise the kinds of value accepted.
 */
function describeUnionMismatch(union: unknown, value: unknown): string {
  const branches = union && typeof union === 'object' ? ((union as { anyOf?: unknown[] }).anyOf ?? []) : [];
  const literals = branches.map((b) => (b && typeof b === 'object' && 'const' in b ? (b as { const: unknown }).const : undefined));
  if (literals.length > 0 && literals.every((l) => l !== undefined)) {
    const allowed = literals.map((l) => String(l));
    const guess = typeof value === 'string' ? closest(value, allowed) : undefined;
    return `${JSON.stringify(value)} is not allowed${guess ? ` — did you mean "${guess}"?` : ''} (allowed: ${allowed.join(', ')})`;
  }
  const kinds = branches.map((b) => (b && typeof b === 'object' ? String((b as { type?: unknown }).type ?? 'a matching value') : 'a matching value'));
  return `expected ${[...new Set(kinds)].join(' or ')}`;
}

/**
 * The parser notices an unclosed quote or flow collection only where it runs out of input; point at
 * the quote or bracket that opened it instead.
 */
function openingOffset(doc: Document, source: string, err: YAMLError): number {
  const offset = err.pos[0];
  const want = /closing .?quote/i.test(err.message) ? 'quote' : /^flow (sequence|map)/i.exec(err.message)?.[1]?.toLowerCase();
  if (!want) return offset;
  let best: number | undefined;
  visit(doc, (_key, node) => {
    if (!isNode(node) || !node.range || node.range[0] >= offset) return;
    const text = source.slice(node.range[0], node.range[1]).trimEnd();
    let open = false;
    if (want === 'quote') open = isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && (text.length < 2 || !text.endsWith(text.charAt(0)));
    else if (want === 'sequence') open = isSeq(node) && node.flow === true && !text.endsWith(']');
    else open = isMap(node) && node.flow === true && !text.endsWith('}');
    if (open && (best === undefined || node.range[0] > best)) best = node.range[0];
  });
  return best ?? offset;
}

function describeSchemaError(e: { keyword: string; message: string; params: Record<string, unknown>; schemaPath: string }): string {
  switch (e.keyword) {
    case 'type':
      return `expected ${String(e.params.type)}`;
    case 'required':
      return `missing required key "${String((e.params.requiredProperties as string[] | undefined)?.[0] ?? e.params.missingProperty ?? '')}"`;
    case 'pattern':
      return `does not match the pattern ${String(e.params.pattern)}`;
    case 'const':
      return `expected ${JSON.stringify(e.params.allowedValue)}`;
    default:
      return e.message;
  }
}

export interface LoadedBlueprint {
  blueprint: Blueprint;
  locator: BlueprintLocator;
}

/**
 * Parses and validates a blueprint. Throws a BlueprintError listing every problem with
 * file:line:column and a code frame.
 */
export function parseBlueprint(source: string, file = 'blueprint.yaml'): LoadedBlueprint {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const locator = new BlueprintLocator(file, source, doc, lc);
  const issues: BlueprintIssue[] = [];
  for (const err of doc.errors) {
    const offset = openingOffset(doc, source, err);
    const { line, col } = lc.linePos(offset);
    issues.push({ code: 'CAIRN_ERR_BLUEPRINT_YAML', file, line, column: col, message: err.message.split('\n')[0] ?? err.message, frame: codeFrame(source, line, col) });
  }
  if (issues.length > 0) throw new BlueprintError(issues);

  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!checker.Check(value)) {
    const seen = new Set<string>();
    for (const e of checker.Errors(value)) {
      const err = e as unknown as { keyword: string; instancePath: string; schemaPath: string; message: string; params: Record<string, unknown> };
      // Union branches report one error each plus an anyOf summary; keep the summary only.
      if (err.keyword === 'const' && /anyOf\/\d+$/.test(err.schemaPath)) continue;
      if (err.keyword === 'boolean') continue;
      if (err.keyword === 'additionalProperties') {
        for (const key of (err.params.additionalProperties as string[] | undefined) ?? []) {
          const allowed = allowedKeysAt(err.schemaPath);
          const guess = closest(key, allowed);
          const path = [...pointerToPath(err.instancePath), key];
          const msg = `unknown key "${key}"${guess ? ` — did you mean "${guess}"?` : ''} (allowed: ${allowed.join(', ')})`;
          const id = `${err.instancePath}/${key}`;
          if (seen.has(id)) continue;
          seen.add(id);
          issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', path, msg, true));
        }
        continue;
      }
      const id = `${err.instancePath}|${err.keyword}`;
      if (seen.has(err.instancePath)) continue;
      seen.add(err.instancePath);
      seen.add(id);
      const path = pointerToPath(err.instancePath);
      const where = formatPath(path);
      // A union reports each branch that failed, then itself; describe the union once.
      const unionPath = err.keyword === 'anyOf' ? err.schemaPath : /^(.*)\/anyOf\/\d+$/.exec(err.schemaPath)?.[1];
      const msg = unionPath !== undefined ? `${where}: ${describeUnionMismatch(schemaAt(unionPath), valueAt(value, path))}` : `${where}: ${describeSchemaError(err)}`;
      issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', path, msg));
    }
    if (issues.length === 0) issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', [], 'the blueprint does not match the schema'));
    throw new BlueprintError(issues);
  }
  const blueprint = value as Blueprint;
  checkReferences(blueprint, locator);
  return { blueprint, locator };
}

const PRESETS = PRESET_NAMES;

function checkReferences(bp: Blueprint, loc: BlueprintLocator): void {
  const issues: BlueprintIssue[] = [];
  const dup = (list: { name: string }[] | undefined, ...at: string[]): void => {
    const seen = new Map<string, number>();
    list?.forEach((item, i) => {
      if (seen.has(item.name)) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', [...at, i, 'name'], `${at.join('.')}: "${item.name}" is declared twice (first at item ${(seen.get(item.name) ?? 0) + 1})`));
      seen.set(item.name, i);
    });
  };
  dup(bp.identity?.keys, 'identity', 'keys');
  dup(bp.consent?.purposes, 'consent', 'purposes');
  dup(bp.sources, 'sources');
  dup(bp.computed_traits, 'computed_traits');

  bp.sources?.forEach((s, i) => {
    if (s.type === 'webhook' && !s.preset && !s.mapping) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['sources', i], `source "${s.name}" is a webhook but has neither preset nor mapping`));
    if (s.preset && !PRESETS.includes(s.preset)) {
      const guess = closest(s.preset, PRESETS);
      issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['sources', i, 'preset'], `unknown preset "${s.preset}"${guess ? ` — did you mean "${guess}"?` : ''} (shipped: ${PRESETS.join(', ')})`));
    }
    s.mapping?.forEach((r, j) => {
      if (r.type === 'track' && !r.event) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['sources', i, 'mapping', j], 'a track rule needs "event"'));
      if (!r.userId && !r.anonymousId) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['sources', i, 'mapping', j], 'a rule needs "userId" or "anonymousId"'));
    });
  });
  bp.computed_traits?.forEach((c, i) => {
    if ((c.kind === 'sum' || c.kind === 'last') && !c.property) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['computed_traits', i], `computed trait "${c.name}" of kind ${c.kind} needs "property"`));
    if (c.window && (parseDuration(c.window) ?? 0) < 60 * 60 * 1000) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['computed_traits', i, 'window'], `window ${c.window} is shorter than the 1h bucket size`));
    if ((c.kind === 'last' || c.kind === 'first_seen' || c.kind === 'last_seen') && c.window) issues.push(loc.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', ['computed_traits', i, 'window'], `a ${c.kind} trait takes no window`));
  });
  if (issues.length > 0) throw new BlueprintError(issues);
}

export function loadBlueprintFile(path: string): LoadedBlueprint & { source: string } {
  const source = readFileSync(path, 'utf8');
  return { ...parseBlueprint(source, path), source };
}
