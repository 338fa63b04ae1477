import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { CONFIG_VARIABLES, ERRORS, type ErrorCode } from '../core/index.js';
import { Blueprint } from '../blueprint/index.js';

/**
 * Generated documentation: `docs/errors.md` from the error catalogue, `docs/blueprint.md` from the
 * blueprint schema, `docs/configuration.md` from CONFIG_VARIABLES, and the blueprint JSON Schema
 * for editors (`cairn schema`). Output depends only on the sources (no dates, no machine paths), so
 * `test/docs-drift.test.ts` can regenerate in memory and compare with the committed files.
 *
 * `npm run docs` builds and runs this module to rewrite the files.
 */

/** The repository root (this file lives in src/cli/ or, compiled, in dist/cli/). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const DEMO_BLUEPRINT = 'examples/demo/blueprint.yaml';
const ERRORS_SOURCE = 'src/core/errors.ts';

export interface GeneratedDoc {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  content: string;
}

/** Every generated document, rendered from the current sources under `root`. */
export function generateDocs(root: string = PROJECT_ROOT): GeneratedDoc[] {
  return [
    { path: 'docs/errors.md', content: renderErrorsDoc(readOptional(join(root, ERRORS_SOURCE))) },
    { path: 'docs/blueprint.md', content: renderBlueprintDoc({ path: DEMO_BLUEPRINT, source: readFileSync(join(root, DEMO_BLUEPRINT), 'utf8') }) },
    { path: 'docs/configuration.md', content: renderConfigurationDoc() },
  ];
}

/** Writes every generated document; returns the paths whose content changed. */
export function writeDocs(root: string = PROJECT_ROOT): string[] {
  const changed: string[] = [];
  for (const doc of generateDocs(root)) {
    const file = join(root, doc.path);
    if (readOptional(file) === doc.content) continue;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, doc.content);
    changed.push(doc.path);
  }
  return changed;
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown helpers

/** Inline code that survives backticks in the text. */
function code(text: string): string {
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A table cell: one line, pipes escaped (GitHub also unescapes them inside code spans). */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** GitHub's heading anchor for a plain heading. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

const generatedNote = (from: string): string =>
  `<!-- Generated from ${from} by \`npm run docs\`; do not edit by hand. test/docs-drift.test.ts fails when this file is out of date. -->`;

/**
 * The default a description states, if any: "… Default 50.", "…; default track", or
 * "tracking (default): …" / "none (default for others)". Returns markdown.
 */
export function defaultFromDescription(description: string | undefined): string | undefined {
  if (!description) return undefined;
  const paren = /(\S+)\s+\(default(?:\s+for\s+([^),]+))?[),]/i.exec(description);
  if (paren?.[1]) return code(paren[1].replace(/^[(,]+|[,:]+$/g, '')) + (paren[2] ? ` for ${paren[2].trim()}` : '');
  // After a sentence or clause, "default X"; at the very start only a lone value ("Default 50."),
  // since a description like "Default locale, e.g. en-GB." names a thing rather than a default.
  const plain = /[.;:]\s+default\s+([^;]+?)(?:\.(?=\s|$)|;|$)/i.exec(description) ?? /^default\s+([^\s,;]+?)(?:\.(?=\s|$)|;|$)/i.exec(description);
  if (!plain?.[1]) return undefined;
  const [value = '', ...rest] = plain[1].trim().split(/\s+/);
  return code(value) + (rest.length ? ` ${rest.join(' ')}` : '');
}

// ---------------------------------------------------------------------------------------------
// docs/errors.md

/**
 * Areas of the catalogue, from the `// Area` comments that head each group in errors.ts. Codes the
 * source does not place (or when it is unavailable) fall into "Other".
 */
export function errorAreas(errorsSource: string | undefined, codes: readonly string[]): { area: string; codes: string[] }[] {
  const areaOf = new Map<string, string>();
  if (errorsSource !== undefined) {
    let area = 'Other';
    let inCatalogue = false;
    for (const line of errorsSource.split(/\r?\n/)) {
      if (!inCatalogue) {
        inCatalogue = /\bERRORS\s*=\s*\{/.test(line);
        continue;
      }
      if (/^\}/.test(line)) break;
      const comment = /^\s*\/\/\s*(.+?)\s*$/.exec(line);
      if (comment?.[1]) area = comment[1];
      const key = /^\s*(CAIRN_ERR_\w+)\s*:/.exec(line);
      if (key?.[1]) areaOf.set(key[1], area);
    }
  }
  const groups: { area: string; codes: string[] }[] = [];
  for (const c of codes) {
    const area = areaOf.get(c) ?? 'Other';
    let g = groups.find((x) => x.area === area);
    if (!g) groups.push((g = { area, codes: [] }));
    g.codes.push(c);
  }
  return groups;
}

export function renderErrorsDoc(errorsSource: string | undefined): string {
  const codes = Object.keys(ERRORS) as ErrorCode[];
  const groups = errorAreas(errorsSource, codes);
  const out: string[] = [
    '# Error codes',
    '',
    generatedNote(ERRORS_SOURCE),
    '',
    'Every error Cairn reports carries a stable code. The HTTP API answers with the status below and a body',
    '`{"success": false, "code": "CAIRN_ERR_…", "message": "…", "hint": "…"}`; a batch reports `{code, message}`',
    'for each rejected item and keeps the others. The CLI prints the code, the message and the hint, and exits',
    'with status 2. Match on the code, never on the message: messages may be reworded, codes stay.',
    '',
    'Messages are templates: `{name}` stands for a detail filled in when the error happens.',
    '',
    ...groups.map((g) => `- [${g.area}](#${anchor(g.area)})`),
  ];
  for (const g of groups) {
    out.push('', `## ${g.area}`, '');
    out.push(
      table(
        ['Code', 'HTTP', 'Message', 'How to fix'],
        g.codes.map((c) => {
          const e = ERRORS[c as ErrorCode];
          return [code(c), String(e.status), code(e.message.replace(/\n/g, '\\n')), e.hint === '' ? '—' : e.hint];
        }),
      ),
    );
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// docs/configuration.md

export function renderConfigurationDoc(): string {
  // A trailing "; default X" moves to the Default column.
  const rows = Object.entries(CONFIG_VARIABLES).map(([name, description]) => [code(name), defaultFromDescription(description) ?? '—', description.replace(/;\s*default\s+[^;]+$/i, '')]);
  return (
    [
      '# Configuration',
      '',
      generatedNote('CONFIG_VARIABLES in src/core/config.ts'),
      '',
      'Cairn reads its configuration from environment variables, once, when a process starts (`cairn serve`',
      'and every other command). All variables are checked together: if any is wrong, Cairn does not start and',
      'lists every violation in one `CAIRN_ERR_CONFIG` error (see [errors.md](errors.md)). The values are then',
      'normalized — durations to milliseconds, names to their canonical spelling — and frozen for the life of',
      'the process. An empty variable counts as unset.',
      '',
      table(['Variable', 'Default', 'Meaning'], rows),
      '',
      'Durations are a number and a unit: `ms`, `s`, `m`, `h`, `d` or `w` (`30s`, `48h`, `7d`). Booleans accept',
      '`true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off`; names of levels and modes are case-insensitive.',
    ].join('\n') + '\n'
  );
}

// ---------------------------------------------------------------------------------------------
// Schema walking (plain JSON Schema as TypeBox emits it)

type SchemaNode = Readonly<Record<string, unknown>>;

const isNode = (v: unknown): v is SchemaNode => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const nodes = (v: unknown): SchemaNode[] => (Array.isArray(v) ? v.filter(isNode) : []);

/** Resolves `$ref` against `$defs`/`definitions` of the root and `$id`s found anywhere in it. */
class SchemaIndex {
  private readonly byRef = new Map<string, SchemaNode>();

  constructor(readonly root: SchemaNode) {
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(visit);
      if (!isNode(n)) return;
      const id = str(n.$id);
      if (id) this.byRef.set(id, n);
      for (const defsKey of ['$defs', 'definitions']) {
        const defs = n[defsKey];
        if (isNode(defs)) for (const [name, d] of Object.entries(defs)) if (isNode(d)) this.byRef.set(`#/${defsKey}/${name}`, d).set(name, d);
      }
      for (const v of Object.values(n)) visit(v);
    };
    visit(root);
  }

  resolve(n: SchemaNode, seen = new Set<SchemaNode>()): SchemaNode {
    const ref = str(n.$ref);
    if (ref === undefined) return n;
    const target = this.byRef.get(ref);
    if (!target || seen.has(target)) return n;
    seen.add(target);
    // Keywords beside $ref (a description, say) win over the target's.
    const { $ref: _ignored, ...rest } = n;
    void _ignored;
    return { ...this.resolve(target, seen), ...rest };
  }
}

function literal(v: unknown): string {
  return code(typeof v === 'string' ? v : JSON.stringify(v));
}

/** Allowed values of an enumeration (`const`, `enum`, or a union of those), else undefined. */
function enumValues(n: SchemaNode, ix: SchemaIndex): unknown[] | undefined {
  if ('const' in n) return [n.const];
  if (Array.isArray(n.enum)) return n.enum;
  const union = nodes(n.anyOf ?? n.oneOf);
  if (union.length === 0) return undefined;
  const values: unknown[] = [];
  for (const b of union) {
    const v = enumValues(ix.resolve(b), ix);
    if (!v) return undefined;
    values.push(...v);
  }
  return values;
}

/** The object branches of a union, with the property that tells them apart (if one does). */
function objectUnion(n: SchemaNode, ix: SchemaIndex): { branches: SchemaNode[]; tag: string | undefined } | undefined {
  const union = nodes(n.anyOf ?? n.oneOf).map((b) => ix.resolve(b));
  if (union.length === 0 || !union.every((b) => isNode(b.properties))) return undefined;
  const first = union[0];
  const candidates = first && isNode(first.properties) ? Object.keys(first.properties) : [];
  const tag = candidates.find((k) =>
    union.every((b) => {
      const p = isNode(b.properties) ? b.properties[k] : undefined;
      return isNode(p) && enumValues(ix.resolve(p), ix)?.length === 1;
    }),
  );
  return { branches: union, tag };
}

function typeLabel(raw: SchemaNode, ix: SchemaIndex): string {
  const n = ix.resolve(raw);
  const values = enumValues(n, ix);
  if (values) return values.length === 1 ? `${literal(values[0])} (literal)` : `one of ${values.map(literal).join(', ')}`;
  const union = nodes(n.anyOf ?? n.oneOf);
  if (union.length) {
    if (objectUnion(n, ix)) return 'object (one of the variants below)';
    return union.map((b) => typeLabel(b, ix)).join(' or ');
  }
  const type = Array.isArray(n.type) ? n.type.filter((t): t is string => typeof t === 'string') : str(n.type) ? [str(n.type) as string] : [];
  if (type.length > 1) return type.join(' or ');
  switch (type[0]) {
    case 'array': {
      const items = isNode(n.items) ? ix.resolve(n.items) : undefined;
      if (!items || Object.keys(items).length === 0) return 'list';
      const inner = typeLabel(items, ix);
      return isNode(items.properties) || objectUnion(items, ix) ? 'list of objects' : `list of ${inner.includes(' ') ? `(${inner})` : inner}`;
    }
    case 'object': {
      const value = recordValue(n);
      if (value) return Object.keys(value).length === 0 ? 'map of any values' : `map of ${typeLabel(value, ix)}`;
      return 'object';
    }
    case 'string':
      return str(n.format) ? `string (${str(n.format)})` : 'string';
    case undefined:
      return 'any';
    default:
      return type[0];
  }
}

/** The value schema of a record-like object (patternProperties or a schema-valued additionalProperties). */
function recordValue(n: SchemaNode): SchemaNode | undefined {
  if (isNode(n.properties)) return undefined;
  const patterns = isNode(n.patternProperties) ? Object.values(n.patternProperties).filter(isNode) : [];
  if (patterns[0]) return patterns[0];
  return isNode(n.additionalProperties) ? n.additionalProperties : undefined;
}

function constraints(raw: SchemaNode, ix: SchemaIndex): string[] {
  const n = ix.resolve(raw);
  const out: string[] = [];
  const num = (k: string): number | undefined => (typeof n[k] === 'number' ? (n[k] as number) : undefined);
  const range = (min: number | undefined, max: number | undefined, unit: string): void => {
    const of = (k: number): string => (unit === '' ? '' : ` ${unit}${k === 1 ? '' : 's'}`);
    if (min !== undefined && max !== undefined) out.push(`${min} to ${max}${of(max)}`);
    else if (min !== undefined) out.push(`at least ${min}${of(min)}`);
    else if (max !== undefined) out.push(`at most ${max}${of(max)}`);
  };
  if (str(n.pattern)) out.push(`pattern ${code(str(n.pattern) as string)}`);
  range(num('minLength'), num('maxLength'), 'character');
  range(num('minimum'), num('maximum'), '');
  if (num('exclusiveMinimum') !== undefined) out.push(`greater than ${num('exclusiveMinimum')}`);
  if (num('exclusiveMaximum') !== undefined) out.push(`less than ${num('exclusiveMaximum')}`);
  range(num('minItems'), num('maxItems'), 'item');
  if (n.uniqueItems === true) out.push('no duplicates');
  if (isNode(n.items)) {
    const inner = constraints(n.items, ix);
    if (inner.length) out.push(`each item: ${inner.join(', ')}`);
  }
  return out;
}

export interface KeyRow {
  path: string;
  type: string;
  required: boolean;
  default: string | undefined;
  description: string;
}

function describe(raw: SchemaNode, ix: SchemaIndex, variant: string | undefined): string {
  const n = ix.resolve(raw);
  const parts: string[] = [];
  if (variant) parts.push(`*${variant}.*`);
  if (str(n.description)) parts.push(str(n.description) as string);
  const items = n.type === 'array' && isNode(n.items) ? ix.resolve(n.items) : undefined;
  if (items && str(items.description) && isNode(items.properties)) parts.push(`Each item: ${str(items.description)}`);
  const c = constraints(n, ix);
  if (c.length) parts.push(`Constraints: ${c.join('; ')}.`);
  return parts.join(' ');
}

function row(path: string, raw: SchemaNode, required: boolean, ix: SchemaIndex, variant?: string): KeyRow {
  const n = ix.resolve(raw);
  const def = n.default !== undefined ? literal(n.default) : defaultFromDescription(str(n.description));
  return { path, type: typeLabel(n, ix), required, default: def, description: describe(n, ix, variant) };
}

/** Rows for every key below `raw` (not for `raw` itself), depth first in declaration order. */
function keyRows(raw: SchemaNode, path: string, ix: SchemaIndex, stack: SchemaNode[] = [], variant?: string): KeyRow[] {
  const n = ix.resolve(raw);
  if (stack.includes(n)) return [];
  const inner = [...stack, n];
  const join = (key: string): string => (path === '' ? key : `${path}.${key}`);
  const out: KeyRow[] = [];
  if (isNode(n.properties)) {
    const required = new Set(Array.isArray(n.required) ? n.required : []);
    for (const [key, prop] of Object.entries(n.properties)) {
      if (!isNode(prop)) continue;
      out.push(row(join(key), prop, required.has(key), ix, variant));
      out.push(...keyRows(prop, join(key), ix, inner));
    }
    return out;
  }
  if (n.type === 'array' && isNode(n.items)) return keyRows(n.items, `${path}[]`, ix, inner);
  const value = recordValue(n);
  if (value) return keyRows(value, join('<name>'), ix, inner);
  const union = objectUnion(n, ix);
  if (union) {
    const { branches, tag } = union;
    if (tag) {
      const values = branches.flatMap((b) => {
        const p = isNode(b.properties) ? b.properties[tag] : undefined;
        return isNode(p) ? (enumValues(ix.resolve(p), ix) ?? []) : [];
      });
      out.push({ path: join(tag), type: `one of ${values.map(literal).join(', ')}`, required: true, default: undefined, description: `Selects the variant; the keys that follow depend on it.` });
    }
    branches.forEach((b, i) => {
      const p = tag && isNode(b.properties) ? b.properties[tag] : undefined;
      const v = tag && isNode(p) ? enumValues(ix.resolve(p), ix)?.[0] : undefined;
      const label = tag && v !== undefined ? `When ${code(`${tag}: ${String(v)}`)}` : `Variant ${i + 1}`;
      const rows = keyRows(b, path, ix, inner, label).filter((r) => !(tag && r.path === join(tag)));
      out.push(...rows);
    });
  }
  return out;
}

/**
 * Every key of a schema, depth first in declaration order, with its path (`identity.keys[].name`),
 * type, whether it is required, its default and description. The blueprint reference is this list.
 */
export function keyReference(schema: object): KeyRow[] {
  const root = schema as SchemaNode;
  return keyRows(root, '', new SchemaIndex(root));
}

function keyTable(rows: KeyRow[]): string {
  return table(
    ['Key', 'Type', 'Required', 'Default', 'Description'],
    rows.map((r) => [code(r.path), r.type, r.required ? 'required' : 'optional', r.default ?? '—', r.description || '—']),
  );
}

// ---------------------------------------------------------------------------------------------
// docs/blueprint.md

export function renderBlueprintDoc(example: { path: string; source: string }): string {
  const root = blueprintJsonSchema();
  const ix = new SchemaIndex(root);
  const props = isNode(root.properties) ? root.properties : {};
  const required = new Set(Array.isArray(root.required) ? root.required : []);
  const version = isNode(props.version) ? enumValues(ix.resolve(props.version), ix) : undefined;

  const top: KeyRow[] = [];
  const sections: { key: string; node: SchemaNode; rows: KeyRow[] }[] = [];
  for (const [key, prop] of Object.entries(props)) {
    if (!isNode(prop)) continue;
    top.push(row(key, prop, required.has(key), ix));
    const rows = keyRows(prop, key, ix);
    if (rows.length) sections.push({ key, node: ix.resolve(prop), rows });
  }

  const out: string[] = [
    '# Blueprint reference',
    '',
    generatedNote('the schema in src/blueprint/schema.ts'),
    '',
    '> **Editor completion.** `cairn schema --out blueprint.schema.json` writes the JSON Schema of this format',
    '> (draft-07, with every description below). Editors that use the YAML language server (VS Code with the',
    '> YAML extension, Neovim, JetBrains, …) pick it up from a comment on the first line of a blueprint:',
    '>',
    '> ```yaml',
    '> # yaml-language-server: $schema=./blueprint.schema.json',
    '> ```',
    '',
    'A **blueprint** is one YAML file that describes a workspace: how identities resolve, which consent',
    'purposes it records, which tools send data (with their data contracts and webhook mappings), the traits',
    'Cairn keeps up to date, segments and stages, channels and the contact policy, offers and placements,',
    'journeys, experiments, the rollout plan and KPIs. The same file is the documentation, the input to',
    'checks, and what the engine runs; check it with `cairn validate FILE` and `cairn lint FILE` ([lint.md](lint.md)), apply it with `cairn workspace apply FILE`.',
    'Conditions are written in CEL; see [conditions.md](conditions.md).',
    '',
    'Every object is closed: a key that is not listed here is an error that names the closest allowed key.',
    'Each problem is reported with `file:line:column`, a code frame and a code from [errors.md](errors.md)',
    '(`CAIRN_ERR_BLUEPRINT_YAML`, `CAIRN_ERR_BLUEPRINT_SCHEMA`, `CAIRN_ERR_BLUEPRINT_REFERENCE`,',
    '`CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE` for segments that read each other with in_segment() in a cycle, or a',
    '`CAIRN_ERR_CONDITION_…` code pointing inside a condition); names are checked across sections.',
    '',
    version && version.length === 1 ? `This reference covers format version ${literal(version[0])}.` : 'This reference covers the current format version.',
    '',
    'How to read a key: `a.b` is key `b` inside `a`; `a[]` is an item of the list `a`; `<name>` is any key',
    'of a map. A default in the table applies when the key is left out.',
    '',
    '## Contents',
    '',
    '- [Top level](#top-level)',
    ...sections.map((s) => `- [${s.key}](#${anchor(s.key)})`),
    `- [Complete example](#complete-example)`,
    '',
    '## Top level',
    '',
    str(root.description) ?? '',
    '',
    keyTable(top),
  ];
  for (const s of sections) {
    out.push('', `## ${s.key}`, '');
    const items = s.node.type === 'array' && isNode(s.node.items) ? ix.resolve(s.node.items) : undefined;
    const text = [str(s.node.description), items ? str(items.description) : undefined].filter((t): t is string => !!t);
    if (text.length) out.push(text.join(' '), '');
    out.push(keyTable(s.rows));
  }
  const fence = '`'.repeat(Math.max(3, ...Array.from(example.source.matchAll(/`{3,}/g), (m) => m[0].length + 1)));
  out.push(
    '',
    '## Complete example',
    '',
    `The demo workspace that \`npm start\` creates, [${example.path}](../${example.path}):`,
    '',
    `${fence}yaml`,
    example.source.replace(/\s+$/, ''),
    fence,
  );
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// JSON Schema for editors

export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/**
 * The blueprint JSON Schema for editors and other tools: TypeBox's schema as plain JSON, declared as
 * draft-07 (what the YAML language server implements), with a title. Tuples, the one construct
 * TypeBox writes in the 2020-12 form, are rewritten to the draft-07 form.
 */
export function blueprintJsonSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(Blueprint)) as Record<string, unknown>;
  const toDraft07 = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(toDraft07);
    if (!isNode(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toDraft07(x);
    if (Array.isArray(out.prefixItems)) {
      const extra = out.items;
      out.items = out.prefixItems;
      delete out.prefixItems;
      if (extra === false || isNode(extra)) out.additionalItems = extra;
      else delete out.additionalItems;
    }
    return out;
  };
  const body = toDraft07(plain) as Record<string, unknown>;
  return { $schema: JSON_SCHEMA_DIALECT, title: 'Cairn blueprint', ...body };
}

/** `cairn schema [--out FILE]`. */
export function registerSchemaCommand(program: Command): void {
  program
    .command('schema')
    .description('Print the blueprint JSON Schema for editor completion (YAML language server), or write it to a file')
    .option('-o, --out <file>', 'write the schema to FILE instead of standard output')
    .action((opts: { out?: string }) => {
      const text = JSON.stringify(blueprintJsonSchema(), null, 2) + '\n';
      if (!opts.out) {
        process.stdout.write(text);
        return;
      }
      const file = resolve(opts.out);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      console.error(`Wrote ${opts.out}. First line of a blueprint for completion: # yaml-language-server: $schema=${opts.out}`);
    });
}

// `npm run docs`: node dist/cli/docs-gen.js
const invokedDirectly = ((): boolean => {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === import.meta.url;
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  const changed = writeDocs();
  console.log(changed.length ? `Updated ${changed.join(', ')}.` : 'Generated docs are up to date.');
}
