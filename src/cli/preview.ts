import { Option, type Command } from 'commander';
import { CairnError, systemClock } from '../core/index.js';
import { previewOffer, type OfferPreview, type PreviewBlock, type PreviewMissing } from '../decisioning/index.js';
import type { Runtime } from '../runtime.js';
import { parseContext } from './explain.js';

type WithRuntime = <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>;

interface PreviewOptions {
  customer: string;
  workspace: string;
  placement?: string;
  channel?: string;
  context?: string;
  json?: boolean;
  now?: string;
  allowUnknown?: boolean;
}

/**
 * `cairn preview OFFER --customer REF`: renders an offer's content for one stored customer through
 * the code decide and delivery use (previewOffer), so a marketer sees what would be shown or sent:
 * every field, the variant chosen and why, the zone and locale used, and the variables that
 * rendered empty. Exit codes: 0 rendered, 1 a template failed to render, 2 a usage error (unknown
 * offer, customer, placement or channel).
 */
export function registerPreview(program: Command, withRuntime: WithRuntime): void {
  program
    .command('preview <offer>')
    .description("Render an offer's content for one customer as it would be shown or sent (every block, or one placement or channel)")
    .requiredOption('--customer <ref>', 'profile id or identity kind:value (email:ana@example.com, user_id:u1)')
    .addOption(new Option('-w, --workspace <id>', 'workspace id').default('demo'))
    .option('-p, --placement <name>', 'render the block for this placement')
    .option('-c, --channel <name>', 'render the block delivery sends on this channel (its name, else its type)')
    .option('--context <json>', 'request context as a JSON object, e.g. \'{"page":"/cart"}\'')
    .option('--now <iso>', 'the instant "now" means in templates (default: the current time)')
    .option('--allow-unknown', 'render for an empty profile when the customer is not found')
    .option('--json', 'print the preview as JSON')
    .action(async (offer: string, opts: PreviewOptions) =>
      withRuntime(async (rt) => {
        if (opts.placement !== undefined && opts.channel !== undefined) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--placement, --channel', reason: 'give one of them, or neither to render every block' });
        const context = opts.context === undefined ? undefined : parseContext(opts.context);
        const now = opts.now === undefined ? systemClock.now() : Date.parse(opts.now);
        if (!Number.isFinite(now)) throw new CairnError('CAIRN_ERR_VALIDATION', { path: '--now', reason: `not an ISO-8601 date-time: ${opts.now}` });
        const ws = await rt.workspaces.get(opts.workspace);
        let p: OfferPreview;
        try {
          p = await previewOffer(rt.store.db, ws, {
            offer,
            customer: opts.customer,
            now,
            ...(opts.placement !== undefined ? { placement: opts.placement } : {}),
            ...(opts.channel !== undefined ? { channel: opts.channel } : {}),
            ...(context ? { context } : {}),
            ...(opts.allowUnknown ? { allowUnknown: true } : {}),
          });
        } catch (err) {
          if (!(err instanceof CairnError) || err.code !== 'CAIRN_ERR_PROFILE_NOT_FOUND') throw err;
          console.error(`${err.code}: ${err.message}\n  Check the profile id or the identity (kind:value), or pass --allow-unknown to preview for an empty profile.`);
          process.exitCode = 2;
          return;
        }
        const failed = p.blocks.filter((b) => b.error);
        if (opts.json) console.log(JSON.stringify(p, null, 2));
        else {
          console.log(formatPreview(p));
          for (const b of failed) console.error(formatRenderError(b));
        }
        if (failed.length > 0) process.exitCode = 1;
      }),
    );
}

const indent = (text: string, by: string): string => text.split('\n').join(`\n${by}`);

/** One field: `name: value`, or the name on its own line with a multi-line value indented below. */
function field(name: string, value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (!text.includes('\n')) return `  ${name}: ${text}`;
  return `  ${name}:\n    ${indent(text.replace(/\n+$/, ''), '    ')}`;
}

function variantLine(b: PreviewBlock): string {
  const { chosen, checked } = b.variant;
  if (chosen !== null) {
    const c = checked[checked.length - 1];
    const skipped = checked.slice(0, -1).map((v) => `variants[${v.index}]: ${v.reason}`);
    return `  variant: variants[${chosen}] — ${c?.reason ?? ''}${skipped.length ? ` (before it: ${skipped.join('; ')})` : ''}`;
  }
  if (checked.length === 0) return '  variant: none declared — the block itself';
  return `  variant: none fits — the block itself (${checked.map((v) => `variants[${v.index}]: ${v.reason}`).join('; ')})`;
}

function missingLine(m: PreviewMissing): string {
  const at = `[${m.field}, line ${m.line}, column ${m.column}]`;
  if (m.in === 'tag') return `  ! not set: ${m.path} (read by a {% %} tag) ${at}`;
  return `  ! rendered empty: ${m.path}${m.defaulted ? " (the template's default filter used)" : ''} ${at}`;
}

/** The readable preview: a heading with the customer, zone and locale, then each block's fields. */
export function formatPreview(p: OfferPreview): string {
  const lines: string[] = [];
  const who = p.customer.known ? `${p.customer.ref} (profile ${p.customer.id})` : `${p.customer.ref} (unknown: an empty profile)`;
  lines.push(`Preview of offer ${p.offer} ("${p.title}") for ${who}`);
  lines.push(`  segments: ${p.customer.segments.join(', ') || '(none)'}; stage: ${p.customer.stage ?? '(none)'}`);
  lines.push(`  time zone: ${p.zone.name} (${p.zone.from}); locale: ${p.locale.name} (${p.locale.from}); now: ${p.now}`);
  lines.push('  nothing is logged, counted or sent');
  for (const b of p.blocks) {
    lines.push('', `== ${b.key} (${b.kind}) ==`, variantLine(b));
    if (b.content) {
      for (const [name, value] of Object.entries(b.content)) {
        if (name === 'cta' && value && typeof value === 'object') for (const [k, v] of Object.entries(value)) lines.push(field(`cta.${k}`, v));
        else lines.push(field(name, value));
      }
    } else if (b.error) lines.push(`  ✗ not rendered: ${b.error.code} in ${b.error.where} at line ${b.error.line}, column ${b.error.column} (see the error below)`);
    for (const m of b.missing) lines.push(missingLine(m));
  }
  return lines.join('\n');
}

/** A block's render error: the message with the template's line and column, and its code frame. */
export function formatRenderError(b: PreviewBlock): string {
  const e = b.error;
  if (!e) return '';
  return `${e.code}: ${e.message}\n${e.frame}`;
}
