import type { ASTNode } from '@marcbachmann/cel-js';

/**
 * Reading cel-js's AST. The node shapes (`op`, `args`, `start`, `end`) are the library's typed
 * surface. After `check()` cel-js also leaves the inferred type on each node (`checkedType`); that
 * is not in its typings, so it is read defensively here and used only to pick faster code paths —
 * when it is missing every node is treated as dyn and dispatched at run time, with the same result.
 */
export type Node = ASTNode;

const SIMPLE = new Set(['int', 'double', 'string', 'bool', 'null', 'google.protobuf.Timestamp', 'google.protobuf.Duration', 'bytes', 'uint']);

/** The static type cel-js inferred: a simple type name, 'list', 'map', a message name, or 'dyn'. */
export function staticType(n: Node): string {
  const t = (n as unknown as { checkedType?: { name?: unknown } }).checkedType;
  const name = t?.name;
  if (typeof name !== 'string') return 'dyn';
  if (SIMPLE.has(name)) return name;
  if (name.startsWith('list<')) return 'list';
  if (name.startsWith('map<')) return 'map';
  if (name.startsWith('cairn.')) return name;
  return 'dyn';
}

/** Direct child nodes, in source order. */
export function children(n: Node): Node[] {
  switch (n.op) {
    case 'value':
    case 'id':
      return [];
    case '.':
    case '.?':
      return [n.args[0]];
    case 'call':
      return [...n.args[1]];
    case 'rcall':
      return [n.args[1], ...n.args[2]];
    case 'list':
      return [...n.args];
    case 'map':
      return n.args.flatMap(([k, v]) => [k, v]);
    case '!_':
    case '-_':
      return [n.args];
    default:
      return [...n.args];
  }
}

export type Literal = string | bigint | number | boolean | null | readonly Literal[] | { readonly [k: string]: Literal };

/**
 * The value of a literal argument: a scalar, a negated number, or a list or map built only of
 * literals (map keys must be strings). Undefined when the node is an expression.
 */
export function literalOf(n: Node): { value: Literal } | undefined {
  switch (n.op) {
    case 'value': {
      const v = n.args;
      if (v === null || typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return { value: v };
      return undefined;
    }
    case '-_': {
      const inner = n.args;
      if (inner.op !== 'value') return undefined;
      const v = inner.args;
      if (typeof v === 'bigint') return { value: -v };
      if (typeof v === 'number') return { value: -v };
      return undefined;
    }
    case 'list': {
      const out: Literal[] = [];
      for (const el of n.args) {
        const l = literalOf(el);
        if (l === undefined) return undefined;
        out.push(l.value);
      }
      return { value: out };
    }
    case 'map': {
      const out: Record<string, Literal> = {};
      for (const [k, v] of n.args) {
        if (k.op !== 'value' || typeof k.args !== 'string') return undefined;
        const l = literalOf(v);
        if (l === undefined) return undefined;
        out[k.args] = l.value;
      }
      return { value: out };
    }
    default:
      return undefined;
  }
}

export function stringLiteral(n: Node): string | undefined {
  return n.op === 'value' && typeof n.args === 'string' ? n.args : undefined;
}

/** Where the text of a string literal starts (after r/b prefixes and quotes) and how long it is. */
export function literalSpan(source: string, n: Node): { offset: number; length: number } {
  const raw = source.slice(n.start, n.end);
  const m = /^[rRbB]{0,2}("""|'''|"|')/.exec(raw);
  if (m === null) return { offset: n.start, length: Math.max(1, n.end - n.start) };
  const q = m[0].length;
  return { offset: n.start + q, length: Math.max(1, raw.length - q - (m[1] ?? '').length) };
}

/** Where the field name of a select (`traits.plan`) sits: the last characters of the node. */
export function fieldSpan(n: Node, field: string): { offset: number; length: number } {
  return { offset: Math.max(n.start, n.end - field.length), length: field.length };
}

/**
 * The source text of a node. cel-js's ranges can include a closing parenthesis of the group
 * around the node; trailing parentheses that do not balance are dropped.
 */
export function sourceText(source: string, n: Node): string {
  let text = source.slice(n.start, n.end).trim();
  for (;;) {
    if (!text.endsWith(')')) return text;
    let depth = 0;
    let inString: string | null = null;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString !== null) {
        if (c === '\\') i++;
        else if (c === inString) inString = null;
      } else if (c === '"' || c === "'") inString = c;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
    }
    if (depth >= 0) return text;
    text = text.slice(0, -1).trimEnd();
  }
}
