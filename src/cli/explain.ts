import { Option, type Command } from 'commander';
import { CairnError, isObject } from '../core/index.js';
import { DecisionService, type DecisionResult } from '../decisioning/index.js';
import type { Runtime } from '../runtime.js';

type WithRuntime = <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>;

/**
 * `cairn explain CUSTOMER --placement P`: runs the decision engine as a dry run (the same code as
 * POST /v1/decide, against the stored counts; nothing is logged or counted) and prints every
 * candidate with its outcome and the step that decided it.
 */
export function registerExplain(program: Command, withRuntime: WithRuntime): void {
  program
    .command('explain <customer>')
    .description('Why a customer gets (or does not get) each offer of a placement or channel; a dry run of decide')
    .addOption(new Option('-w, --workspace <id>', 'workspace id').default('demo'))
    .option('-p, --placement <name>', 'the placement to decide for')
    .option('-c, --channel <name>', 'the channel (alone, or with a placement for consent)')
    .option('--context <json>', 'request context as a JSON object, e.g. \'{"device":"ios"}\'')
    .option('--json', 'print the whole decision with its explanation as JSON')
    .action(async (customer: string, opts: { workspace: string; placement?: string; channel?: string; context?: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        const context = opts.context === undefined ? undefined : parseContext(opts.context);
        const ws = await rt.workspaces.get(opts.workspace);
        const service = new DecisionService(rt.store, rt.clock, rt.log);
        // CUSTOMER is kind:value, or a profile id; anything else is tried as a userId.
        const ref = customer.includes(':') ? { identity: customer } : { customerId: customer, userId: customer };
        const r = await service.decide(ws, { ...ref, ...(opts.placement ? { placement: opts.placement } : {}), ...(opts.channel ? { channel: opts.channel } : {}), ...(context ? { context } : {}), explain: true }, { dryRun: true });
        await service.close();
        if (opts.json) console.log(JSON.stringify(r, null, 2));
        else console.log(formatExplanation(customer, r));
      }),
    );
}

/** `--context JSON`: a JSON object, else CAIRN_ERR_VALIDATION naming the flag. */
export function parseContext(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--context', reason: `not JSON: ${(e as Error).message}` });
  }
  if (!isObject(parsed)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--context', reason: 'expected a JSON object' });
  return parsed;
}

/** The readable table: one line per candidate, with the deciding step and what it saw. */
export function formatExplanation(customer: string, r: DecisionResult): string {
  const ex = r.explanation;
  const target = [r.placement && `placement ${r.placement}`, r.channel && `channel ${r.channel}`].filter(Boolean).join(', ');
  const lines: string[] = [];
  const who = ex?.customer.known ? `${customer} (profile ${r.customerId})` : `${customer} (unknown: an empty profile)`;
  lines.push(`Decision for ${who} at ${target} — dry run, nothing logged`);
  if (ex) lines.push(`  segments: ${ex.customer.segments.join(', ') || '(none)'}; stage: ${ex.customer.stage ?? '(none)'}`);
  lines.push(`  outcome: ${r.outcome}${r.offers.length ? ` → ${r.offers.map((o) => `${o.rank}. ${o.offer}${o.fallback ? ' (fallback)' : ''}`).join(', ')}` : ''}`);
  lines.push('');
  const rows: string[][] = [['offer', 'outcome', 'priority', 'score', 'deciding step']];
  for (const c of ex?.candidates ?? []) {
    const failed = c.steps.find((s) => !s.passed);
    const last = failed ?? c.steps[c.steps.length - 1];
    const step = last ? `${last.step}${last.passed ? '' : ' ✗'}: ${last.detail}` : '';
    rows.push([c.offer, c.outcome, String(c.priority), c.score === null ? '—' : String(c.score), step]);
  }
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows) lines.push('  ' + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ').trimEnd());
  if (!ex?.candidates.length) lines.push('  (no offer lists this placement or channel)');
  return lines.join('\n');
}
