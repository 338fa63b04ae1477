import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { CairnError, loadConfig } from '../core/index.js';
import { BlueprintError, checkLintRuleIds, lintBlueprint, loadBlueprintFile, LINT_RULE_IDS, type LintFinding, type LintSeverity } from '../blueprint/index.js';

/**
 * `cairn lint [FILE]`: loads a blueprint as `cairn validate` does, then runs the lint rules
 * (docs/lint.md). Exit code 0 when there is no error (warnings and info are allowed, unless
 * --strict), 1 when there is one — or when the blueprint does not load, in which case the load
 * errors are printed as validate prints them. A bad --rule id is a usage error (exit 2, like any
 * other CairnError from the command line).
 */

interface LintOptions {
  strict?: boolean;
  json?: boolean;
  rule?: string[];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 || word === 'info' ? '' : 's'}`;

function summary(counts: Record<LintSeverity, number>): string {
  return `${plural(counts.error, 'error')}, ${plural(counts.warning, 'warning')}, ${plural(counts.info, 'info')}`;
}

/** A finding as validate prints a warning: position, severity, message, rule, code frame. */
function formatFinding(f: LintFinding): string {
  return `${f.file}:${f.line}:${f.column}: ${f.severity}: ${f.message} [${f.rule}]\n${f.frame}`;
}

export function registerLint(program: Command): void {
  program
    .command('lint [blueprint]')
    .description('Find likely mistakes in a blueprint that loads: unreachable or overlapping offers, stages without offers, contradictory or negation-heavy conditions, undeclared events (docs/lint.md). The blueprint defaults to CAIRN_BLUEPRINT (examples/demo/blueprint.yaml)')
    .option('--strict', 'fail on warnings too')
    .option('--json', 'print the result as JSON on stdout')
    .option('--rule <id...>', `run only these rules (${LINT_RULE_IDS.join(', ')})`)
    .action((file: string | undefined, opts: LintOptions) => {
      if (opts.rule !== undefined) checkLintRuleIds(opts.rule);
      const path = file ?? loadConfig().blueprintPath;
      let loaded: ReturnType<typeof loadBlueprintFile>;
      try {
        if (!existsSync(path)) throw new CairnError('CAIRN_ERR_NOT_FOUND', { what: `Blueprint file "${path}"` });
        loaded = loadBlueprintFile(path);
      } catch (err) {
        if (!(err instanceof CairnError)) throw err;
        if (opts.json) {
          const errors = err instanceof BlueprintError ? err.issues.map(({ frame: _frame, ...issue }) => issue) : [{ code: err.code, message: err.message }];
          console.log(JSON.stringify({ file: path, valid: false, errors }, null, 2));
        } else console.error(err.message);
        process.exitCode = 1;
        return;
      }
      const rules = opts.rule ?? [...LINT_RULE_IDS];
      const { findings, counts } = lintBlueprint(loaded, { rules });
      const failed = counts.error > 0 || (opts.strict === true && counts.warning > 0);
      if (opts.json) {
        console.log(JSON.stringify({ file: path, valid: true, rules, counts, findings: findings.map(({ frame: _frame, ...f }) => f) }, null, 2));
      } else {
        for (const f of findings) console.log(formatFinding(f));
        console.log(`${path}: ${summary(counts)} (${plural(rules.length, 'rule')} run)`);
      }
      if (failed) process.exitCode = 1;
    });
}
