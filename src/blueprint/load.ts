import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, isNode, visit, type Node, type Document, type YAMLError } from 'yaml';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import { CairnError, closest, type ErrorCode } from '../core/index.js';
import { Blueprint } from './schema.js';
import { checkReferences } from './references.js';
import { compileBlueprintConditions, type CompiledBlueprintConditions } from './conditions.js';
import { checkBlueprintTemplates } from './templates.js';

/** One problem in a blueprint, with its position (1-based line and column). */
export interface BlueprintIssue {
  code: ErrorCode;
  file: string;
  line: number;
  column: number;
  message: string;
  /** The offending lines with a ^ under the spot. */
  frame: string;
  /** Absent for errors; a warning does not stop the blueprint from loading. */
  severity?: 'error' | 'warning';
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

/**
 * Every schema error, not TypeBox's default first eight: each union branch that does not apply
 * reports errors of its own (filtered out below), which would otherwise crowd out the real ones.
 * The setting is process-wide, so it is restored at once (this runs synchronously).
 */
function schemaErrors(value: unknown): ReturnType<typeof checker.Errors> {
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: 10_000 });
  try {
    return checker.Errors(value);
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

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

  /**
   * Where the value at `path` starts (1-based line and column, 0-based offset) and how it is written
   * (PLAIN, QUOTE_DOUBLE, QUOTE_SINGLE, BLOCK_LITERAL, BLOCK_FOLDED for scalars), so a position
   * inside a condition or template string can be mapped back to the file. Undefined when the path
   * does not exist.
   */
  position(path: readonly (string | number)[]): { line: number; column: number; offset: number; scalarType: string | undefined } | undefined {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return undefined;
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
      } else return undefined;
    }
    if (!isNode(node) || !node.range) return undefined;
    const offset = node.range[0];
    const { line, col } = this.lc.linePos(offset);
    return { line, column: col, offset, scalarType: isScalar(node) ? (node.type ?? undefined) : undefined };
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
export function formatPath(path: readonly (string | number)[]): string {
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
  /** Problems that do not stop loading (an event no contract declares when there are no contracts). */
  warnings: BlueprintIssue[];
  /** Every condition, compiled once, by YAML path text (segments[0].condition). */
  conditions: CompiledBlueprintConditions['byPath'];
}

// ---------------------------------------------------------------------------------------------
// Unions told apart by a tag (`type: wait`): only the branch the tag selects speaks.

type SchemaObject = Record<string, unknown>;
const isObject = (v: unknown): v is SchemaObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The tag of a union of objects (`type` when it qualifies) and each branch's value of it. */
function unionTag(union: unknown): { tag: string; values: unknown[] } | undefined {
  const branches = isObject(union) && Array.isArray(union.anyOf) ? (union.anyOf as unknown[]) : [];
  if (branches.length === 0 || !branches.every((b) => isObject(b) && isObject(b.properties))) return undefined;
  const props = (b: unknown): SchemaObject => (isObject(b) && isObject(b.properties) ? b.properties : {});
  const keys = Object.keys(props(branches[0])).sort((a, b) => Number(b === 'type') - Number(a === 'type'));
  const tag = keys.find((k) => branches.every((b) => isObject(props(b)[k]) && 'const' in (props(b)[k] as SchemaObject)));
  return tag === undefined ? undefined : { tag, values: branches.map((b) => (props(b)[tag] as SchemaObject).const) };
}

/** The union branches a schema path goes through, with the instance depth of each union. */
function unionsOnPath(schemaPath: string): { union: unknown; branch: number; depth: number }[] {
  const segs = schemaPath
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const out: { union: unknown; branch: number; depth: number }[] = [];
  let node: unknown = Blueprint;
  let depth = 0;
  for (let i = 0; i < segs.length && isObject(node); i++) {
    const seg = segs[i] as string;
    if (seg === 'properties' || seg === 'patternProperties') {
      const table = isObject(node[seg]) ? (node[seg] as SchemaObject) : {};
      // A pattern may itself hold a slash: join segments until a key matches.
      let key = segs[++i] ?? '';
      while (!(key in table) && i + 1 < segs.length) key += `/${segs[++i] ?? ''}`;
      node = table[key];
      depth++;
    } else if (seg === 'items' || seg === 'additionalProperties') {
      node = node[seg];
      depth++;
    } else if (seg === 'anyOf') {
      const branch = Number(segs[++i]);
      out.push({ union: node, branch, depth });
      node = Array.isArray(node.anyOf) ? (node.anyOf as unknown[])[branch] : undefined;
    } else node = node[seg];
  }
  return out;
}

type UnionVerdict = { kind: 'keep' } | { kind: 'drop' } | { kind: 'unknown_tag'; path: (string | number)[]; tag: string; values: unknown[] };

/**
 * Whether a schema error belongs to the branch that the value's tag selects. Errors from other
 * branches are noise ("missing key offer" for a wait step); when the tag selects no branch, the
 * one thing to say is that the tag is wrong.
 */
function unionVerdict(err: { keyword: string; instancePath: string; schemaPath: string }, value: unknown): UnionVerdict {
  const path = pointerToPath(err.instancePath);
  const steps = unionsOnPath(err.schemaPath);
  if (err.keyword === 'anyOf') steps.push({ union: schemaAt(err.schemaPath), branch: -1, depth: path.length });
  for (const s of steps) {
    const info = unionTag(s.union);
    if (!info) continue;
    const at = path.slice(0, s.depth);
    const v = valueAt(value, at);
    const selected = isObject(v) ? info.values.findIndex((x) => x === v[info.tag]) : -1;
    if (selected === -1) return { kind: 'unknown_tag', path: at, tag: info.tag, values: info.values };
    if (s.branch !== selected) return { kind: 'drop' };
  }
  return { kind: 'keep' };
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
    // After the first error the parser often reports every following token as unexpected; that
    // is noise, not news.
    if (issues.length > 0 && /^Unexpected .* token/i.test(err.message)) continue;
    const offset = openingOffset(doc, source, err);
    const { line, col } = lc.linePos(offset);
    issues.push({ code: 'CAIRN_ERR_BLUEPRINT_YAML', file, line, column: col, message: err.message.split('\n')[0] ?? err.message, frame: codeFrame(source, line, col) });
  }
  if (issues.length > 0) throw new BlueprintError(issues);

  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!checker.Check(value)) {
    const seen = new Set<string>();
    for (const e of schemaErrors(value)) {
      const err = e as unknown as { keyword: string; instancePath: string; schemaPath: string; message: string; params: Record<string, unknown> };
      if (err.keyword === 'boolean') continue;
      const verdict = unionVerdict(err, value);
      if (verdict.kind === 'drop') continue;
      if (verdict.kind === 'unknown_tag') {
        const id = `${JSON.stringify(verdict.path)}|tag`;
        if (seen.has(id)) continue;
        seen.add(id);
        const v = valueAt(value, verdict.path);
        const allowed = verdict.values.map((x) => String(x));
        const where = formatPath(verdict.path);
        if (!isObject(v)) issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', verdict.path, `${where}: expected an object with "${verdict.tag}" (one of: ${allowed.join(', ')})`));
        else if (!(verdict.tag in v)) issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', verdict.path, `${where}: missing required key "${verdict.tag}" (one of: ${allowed.join(', ')})`));
        else {
          const got = v[verdict.tag];
          const guess = typeof got === 'string' ? closest(got, allowed) : undefined;
          issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', [...verdict.path, verdict.tag], `${where}.${verdict.tag}: ${JSON.stringify(got)} is not allowed${guess ? ` — did you mean "${guess}"?` : ''} (allowed: ${allowed.join(', ')})`));
        }
        continue;
      }
      // Union branches report one error each plus an anyOf summary; keep the summary only.
      if (err.keyword === 'const' && /anyOf\/\d+$/.test(err.schemaPath)) continue;
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
      const candidate = err.keyword === 'anyOf' ? err.schemaPath : /^(.*)\/anyOf\/\d+$/.exec(err.schemaPath)?.[1];
      const unionPath = candidate !== undefined && !unionTag(schemaAt(candidate)) ? candidate : undefined;
      const msg = unionPath !== undefined ? `${where}: ${describeUnionMismatch(schemaAt(unionPath), valueAt(value, path))}` : `${where}: ${describeSchemaError(err)}`;
      issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', path, msg));
    }
    if (issues.length === 0) issues.push(locator.issue('CAIRN_ERR_BLUEPRINT_SCHEMA', [], 'the blueprint does not match the schema'));
    throw new BlueprintError(issues);
  }
  const blueprint = value as Blueprint;
  const { errors, warnings } = checkReferences(blueprint, locator);
  if (errors.length > 0) throw new BlueprintError(errors);
  const conditions = compileBlueprintConditions(blueprint, locator);
  // Liquid templates are parsed at load too; their errors are reported with the conditions'.
  const templates = checkBlueprintTemplates(blueprint, locator);
  if (conditions.errors.length > 0 || templates.errors.length > 0) throw new BlueprintError([...conditions.errors, ...templates.errors]);
  return { blueprint, locator, warnings: [...warnings, ...conditions.warnings, ...templates.warnings], conditions: conditions.byPath };
}

export function loadBlueprintFile(path: string): LoadedBlueprint & { source: string } {
  const source = readFileSync(path, 'utf8');
  return { ...parseBlueprint(source, path), source };
}
