import { compileCondition, isConditionError, type CompiledCondition, type ConditionDeclarations, type ConditionError } from '../conditions/index.js';
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
  return out;
}

/** The file position of a character inside a condition string, for plain, quoted and block scalars. */
function issueAt(locator: BlueprintLocator, c: BlueprintCondition, e: ConditionError, code: ErrorCode): BlueprintIssue {
  const at = locator.position(c.path);
  let line = at?.line ?? 1;
  let column = at?.column ?? 1;
  if (at) {
    if (at.scalarType === 'BLOCK_LITERAL' || at.scalarType === 'BLOCK_FOLDED') {
      // Content starts on the next line, at that line's indentation; folded lines map one to one.
      const before = c.source.slice(0, e.offset);
      const nl = before.split('\n').length - 1;
      const lines = locator.source.split(/\r?\n/);
      const first = lines[at.line] ?? '';
      const indent = first.length - first.trimStart().length;
      line = at.line + 1 + nl;
      column = indent + 1 + (e.offset - (before.lastIndexOf('\n') + 1));
    } else {
      const quoted = at.scalarType === 'QUOTE_DOUBLE' || at.scalarType === 'QUOTE_SINGLE' ? 1 : 0;
      // Single-line scalars: the offset maps directly (escapes inside quotes may shift it slightly).
      const rawLine = locator.source.split(/\r?\n/)[at.line - 1] ?? '';
      const nlBefore = c.source.slice(0, e.offset).split('\n').length - 1;
      if (nlBefore === 0 || quoted) {
        column = at.column + quoted + e.offset;
        if (column > rawLine.length + 1) column = rawLine.length + 1;
      } else {
        line = at.line + nlBefore;
        const cont = locator.source.split(/\r?\n/)[line - 1] ?? '';
        column = cont.length - cont.trimStart().length + 1 + (e.offset - (c.source.lastIndexOf('\n', e.offset - 1) + 1));
      }
    }
  }
  return { code, file: locator.file, line, column, message: `${c.where}: ${e.message}`, frame: codeFrame(locator.source, line, column) };
}
