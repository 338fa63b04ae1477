import { celAst, conditionSyntax, type CompiledCondition } from '../conditions/index.js';
import { assertUnreachable, CairnError, closest } from '../core/index.js';
import type { BlueprintCondition } from './collect.js';
import { conditionPosition } from './conditions.js';
import { codeFrame, formatPath, type BlueprintIssue, type LoadedBlueprint } from './load.js';
import { Vocabulary } from './references.js';
import type { Blueprint, Content, Offer } from './schema.js';

/**
 * `cairn lint`: advice on a blueprint that loads. Loading already refuses what cannot run (schema,
 * unknown names, conditions that do not compile, in_segment() cycles); lint looks for what runs but
 * is probably not what the author meant — offers nobody can get, stages where customers match no
 * offer, conditions that can never (or always) hold, negations that hide the positive statement.
 *
 * Each rule is a small function over the loaded blueprint, its compiled conditions (their syntax
 * trees, not their text) and the positions of both in the file; each finding names its rule, so a
 * reader can look the rule up in docs/lint.md and a CI job can select rules with `--rule`.
 */

type Path = (string | number)[];
type Node = celAst.Node;

export type LintSeverity = 'error' | 'warning' | 'info';

export interface LintFinding {
  rule: string;
  severity: LintSeverity;
  message: string;
  file: string;
  line: number;
  column: number;
  /** The offending lines with a ^ under the spot. */
  frame: string;
  /** The YAML path of the key the finding is about, e.g. offers[2].condition; absent for a loader warning. */
  where?: string;
}

/** A condition of the blueprint with its compiled form and syntax tree. */
export interface LintCondition {
  condition: BlueprintCondition;
  compiled: CompiledCondition;
  root: Node;
}

export interface LintReporter {
  /** A finding about the value (or with atKey, the key) at a YAML path. */
  at(path: Path, severity: LintSeverity, message: string, atKey?: boolean): void;
  /** A finding about a spot inside a condition: a syntax node, or a character offset. */
  inCondition(c: LintCondition, spot: Node | number, severity: LintSeverity, message: string): void;
  /** A loader issue, at its own position and with its own severity. */
  issue(issue: BlueprintIssue): void;
}

export interface LintRule {
  /** Stable id, kebab-case, used by `--rule` and in docs/lint.md. */
  readonly id: string;
  /** One line: what the rule finds. */
  readonly summary: string;
  check(ctx: LintContext, report: LintReporter): void;
}

/** What a rule reads: the loaded blueprint, with lookups computed once. */
export class LintContext {
  readonly blueprint: Blueprint;
  readonly vocabulary: Vocabulary;
  /** Every compiled condition, in document order of sections. */
  readonly conditions: LintCondition[];
  readonly #byWhere = new Map<string, LintCondition>();

  constructor(readonly loaded: LoadedBlueprint) {
    this.blueprint = loaded.blueprint;
    this.vocabulary = new Vocabulary(loaded.blueprint);
    this.conditions = [];
    for (const [where, entry] of loaded.conditions) {
      const root = conditionSyntax(entry.compiled);
      if (root === undefined) continue;
      const c = { condition: entry.condition, compiled: entry.compiled, root };
      this.conditions.push(c);
      this.#byWhere.set(where, c);
    }
  }

  /** The condition at a YAML path text such as `offers[2].condition`. */
  condition(where: string): LintCondition | undefined {
    return this.#byWhere.get(where);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading conditions: atoms of a conjunction, and when a conjunction can never hold.

const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);
type Comparison = '==' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * A canonical text of a node: the same expression gives the same text whatever its spacing or
 * parentheses, so two conditions (or two sides of a comparison) can be compared for identity.
 */
export function shapeOf(n: Node): string {
  switch (n.op) {
    case 'value':
      return typeof n.args === 'string' ? JSON.stringify(n.args) : typeof n.args === 'bigint' ? `${n.args}` : n.args instanceof Uint8Array ? `b${JSON.stringify([...n.args])}` : String(n.args);
    case 'id':
      return n.args;
    case '.':
    case '.?':
      return `${shapeOf(n.args[0])}${n.op}${n.args[1]}`;
    case 'call':
      return `${n.args[0]}(${n.args[1].map(shapeOf).join(',')})`;
    case 'rcall':
      return `${shapeOf(n.args[1])}.${n.args[0]}(${n.args[2].map(shapeOf).join(',')})`;
    default:
      return `${n.op}(${celAst.children(n).map(shapeOf).join(',')})`;
  }
}

/** A literal a condition compares with: numbers of either kind compare by value (1 == 1.0). */
interface Value {
  key: string;
  num: number | undefined;
}

function valueOf(n: Node): Value | undefined {
  const lit = celAst.literalOf(n);
  if (lit === undefined) return undefined;
  const v = lit.value;
  if (typeof v === 'bigint' || typeof v === 'number') return { key: `n:${Number(v)}`, num: Number(v) };
  if (typeof v === 'string') return { key: `s:${v}`, num: undefined };
  if (typeof v === 'boolean') return { key: `b:${v}`, num: undefined };
  if (v === null) return { key: 'null', num: undefined };
  return undefined;
}

/** One operand of a conjunction, as far as simple reasoning on literals goes. */
type Atom =
  | { kind: 'const'; value: boolean; node: Node }
  | { kind: 'bool'; subject: string; positive: boolean; node: Node }
  | { kind: 'cmp'; subject: string; op: Comparison; value: Value; node: Node }
  | { kind: 'in'; subject: string; values: Value[]; positive: boolean; node: Node };

const FLIP: Record<Comparison, Comparison> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
const NEGATE: Record<Comparison, Comparison> = { '==': '!=', '!=': '==', '<': '>=', '<=': '>', '>': '<=', '>=': '<' };

/** The atom a node states (or, with `negated`, the atom its negation states). */
function atomOf(n: Node, negated: boolean): Atom {
  if (n.op === '!_') return { ...atomOf(n.args, !negated), node: n };
  if (n.op === 'value' && typeof n.args === 'boolean') return { kind: 'const', value: n.args !== negated, node: n };
  if (COMPARISONS.has(n.op)) {
    const [l, r] = n.args as [Node, Node];
    const lv = valueOf(l);
    const rv = valueOf(r);
    let subject: Node | undefined;
    let value: Value | undefined;
    let op = n.op as Comparison;
    if (rv !== undefined && lv === undefined) [subject, value] = [l, rv];
    else if (lv !== undefined && rv === undefined) [subject, value, op] = [r, lv, FLIP[op]];
    if (subject !== undefined && value !== undefined) {
      if ((op === '==' || op === '!=') && value.key.startsWith('b:')) {
        // x == true is x; x != true is !x.
        return { kind: 'bool', subject: shapeOf(subject), positive: (op === '==') === (value.key === 'b:true') !== negated, node: n };
      }
      // Ordering is reasoned about for numbers only.
      if (op === '==' || op === '!=' || value.num !== undefined) return { kind: 'cmp', subject: shapeOf(subject), op: negated ? NEGATE[op] : op, value, node: n };
    }
  }
  if (n.op === 'in') {
    const [l, r] = n.args as [Node, Node];
    if (valueOf(l) === undefined && r.op === 'list') {
      const values = r.args.map(valueOf);
      if (values.every((v): v is Value => v !== undefined)) return { kind: 'in', subject: shapeOf(l), values, positive: !negated, node: n };
    }
  }
  return { kind: 'bool', subject: shapeOf(n), positive: !negated, node: n };
}

/** The operands of a chain of one operator (a && b && c → [a, b, c]); a node of another kind is a chain of one. */
function chain(n: Node, op: '&&' | '||'): Node[] {
  return n.op === op ? [...chain(n.args[0], op), ...chain(n.args[1], op)] : [n];
}

/**
 * Atoms that cannot all hold at once, or undefined when they can (as far as this reasoning goes):
 * `false`; `x && !x`; two different values for one expression (`a == "x" && a == "y"`); a value
 * that is excluded (`a == "x" && a != "x"`, `a in ["x"] && a == "y"`); numeric bounds that leave
 * nothing (`n > 10 && n < 5`, `n >= 3 && n < 3`).
 */
function conflict(atoms: readonly Atom[]): Atom[] | undefined {
  const f = atoms.find((a) => a.kind === 'const' && !a.value);
  if (f) return [f];
  const bySubject = new Map<string, Atom[]>();
  for (const a of atoms) {
    if (a.kind === 'const') continue;
    const list = bySubject.get(a.subject) ?? [];
    list.push(a);
    bySubject.set(a.subject, list);
  }
  for (const list of bySubject.values()) {
    const pos = list.find((a) => a.kind === 'bool' && a.positive);
    const neg = list.find((a) => a.kind === 'bool' && !a.positive);
    if (pos && neg) return [pos, neg];
    const about = list.filter((a) => a.kind === 'cmp' || a.kind === 'in');
    if (about.length < 2) continue;
    let allowed: Map<string, Value> | undefined;
    const excluded = new Set<string>();
    let lo: { v: number; strict: boolean } | undefined;
    let hi: { v: number; strict: boolean } | undefined;
    const narrow = (values: readonly Value[]): void => {
      const next = new Map(values.map((v) => [v.key, v]));
      allowed = allowed === undefined ? next : new Map([...allowed].filter(([k]) => next.has(k)));
    };
    for (const a of about) {
      if (a.kind === 'in') {
        if (a.positive) narrow(a.values);
        else for (const v of a.values) excluded.add(v.key);
      } else if (a.kind === 'cmp') {
        const num = a.value.num;
        switch (a.op) {
          case '==':
            narrow([a.value]);
            break;
          case '!=':
            excluded.add(a.value.key);
            break;
          case '>':
          case '>=':
            if (num !== undefined && (lo === undefined || num > lo.v || (num === lo.v && a.op === '>'))) lo = { v: num, strict: a.op === '>' };
            break;
          case '<':
          case '<=':
            if (num !== undefined && (hi === undefined || num < hi.v || (num === hi.v && a.op === '<'))) hi = { v: num, strict: a.op === '<' };
            break;
          default:
            assertUnreachable(a.op);
        }
      }
    }
    const inBounds = (v: Value): boolean => {
      if (lo === undefined && hi === undefined) return true;
      if (v.num === undefined) return false;
      if (lo !== undefined && (v.num < lo.v || (v.num === lo.v && lo.strict))) return false;
      if (hi !== undefined && (v.num > hi.v || (v.num === hi.v && hi.strict))) return false;
      return true;
    };
    if (allowed !== undefined) {
      if (![...allowed.values()].some((v) => !excluded.has(v.key) && inBounds(v))) return about;
    } else if (lo !== undefined && hi !== undefined) {
      if (lo.v > hi.v || (lo.v === hi.v && (lo.strict || hi.strict || excluded.has(`n:${lo.v}`)))) return about;
    }
  }
  return undefined;
}

/** The atoms of `n` that make it always false, or undefined. */
export function alwaysFalse(n: Node): Atom[] | undefined {
  return conflict(chain(n, '&&').map((a) => atomOf(a, false)));
}

/** The atoms of `n` that make it always true (their negations conflict), or undefined. */
export function alwaysTrue(n: Node): Atom[] | undefined {
  return conflict(chain(n, '||').map((a) => atomOf(a, true)));
}

/** Every node of a tree with its parent, in source order. */
function* walk(n: Node, parent: Node | undefined = undefined): Generator<{ node: Node; parent: Node | undefined }> {
  yield { node: n, parent };
  for (const c of celAst.children(n)) yield* walk(c, n);
}

/**
 * The source text of a node, on one line. cel-js's range of a node can stop before the closing
 * parenthesis of a group it starts with (`!(a == b)`), or run past one it does not open; both are
 * balanced here.
 */
function text(c: LintCondition, n: Node): string {
  const source = c.condition.source;
  let end = n.end;
  let depth = 0;
  let quote: string | null = null;
  for (let i = n.start; i < end; i++) {
    const ch = source[i];
    if (quote !== null) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
  }
  while (depth > 0 && end < source.length) {
    const ch = source[end++];
    if (ch === ')') depth--;
    else if (ch !== undefined && ch.trim() !== '') break;
  }
  // sourceText reads only the range.
  return celAst.sourceText(source, { start: n.start, end } as unknown as Node).replace(/\s+/g, ' ');
}
const quoted = (c: LintCondition, atoms: readonly Atom[]): string => atoms.map((a) => `\`${text(c, a.node)}\``).join(atoms.length > 2 ? ', ' : ' and ');
/** "the condition" for the whole of it, else the part in backquotes. */
const part = (c: LintCondition, n: Node): string => (n === c.root ? 'the condition' : `\`${text(c, n)}\``);

// ---------------------------------------------------------------------------------------------
// Offers: when one can never be chosen, and when two tie.

/** Named directly somewhere (a journey sends it, an experiment uses it, a placement falls back to it): not chosen by arbitration alone. */
function namedOffers(bp: Blueprint): Set<string> {
  const out = new Set<string>();
  for (const p of bp.placements ?? []) if (p.fallback_offer !== undefined) out.add(p.fallback_offer);
  for (const j of bp.journeys ?? []) for (const s of j.steps) if (s.type === 'send' && s.offer !== undefined) out.add(s.offer);
  for (const t of bp.experiments?.tests ?? []) {
    if (t.target.type === 'offer') out.add(t.target.offer);
    if (t.type === 'ab') for (const v of t.variants) if (v.offer !== undefined) out.add(v.offer);
  }
  return out;
}

/** Offers an experiment targets: some customers do not get them, so they do not reliably win. */
function experimentTargets(bp: Blueprint): Set<string> {
  const out = new Set<string>();
  for (const t of bp.experiments?.tests ?? []) if (t.target.type === 'offer') out.add(t.target.offer);
  return out;
}

const covers = (outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean => outer === undefined || (inner !== undefined && inner.every((s) => outer.includes(s)));
const overlaps = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean => a === undefined || b === undefined || a.some((s) => b.includes(s));

interface OfferView {
  index: number;
  offer: Offer;
  condition: LintCondition | undefined;
  /** Canonical text of the condition; 'true' when there is none. */
  shape: string;
  always: boolean;
  never: boolean;
}

function offerViews(ctx: LintContext): OfferView[] {
  return (ctx.blueprint.offers ?? []).map((offer, index) => {
    const condition = ctx.condition(`offers[${index}].condition`);
    const root = condition?.root;
    return {
      index,
      offer,
      condition,
      shape: root === undefined ? 'true' : shapeOf(root),
      always: root === undefined || alwaysTrue(root) !== undefined,
      never: root !== undefined && alwaysFalse(root) !== undefined,
    };
  });
}

/**
 * Whether `a` is eligible (and not capped or held out) wherever and whenever `b` is, so that with a
 * higher priority it wins every arbitration `b` could enter: the same category and message class
 * (so policies treat both alike), stages covering b's, no caps, no validity dates, no item key
 * (exclude_item rules could drop it), not under an experiment, and a condition that always holds
 * or is the same as b's.
 */
function beats(a: OfferView, b: OfferView, targets: ReadonlySet<string>): boolean {
  const x = a.offer;
  const y = b.offer;
  return (
    (x.priority ?? 0) > (y.priority ?? 0) &&
    (a.always || a.shape === b.shape) &&
    !a.never &&
    covers(x.stages, y.stages) &&
    !x.caps?.length &&
    x.valid_from === undefined &&
    x.valid_until === undefined &&
    x.item_key === undefined &&
    (x.category ?? '') === (y.category ?? '') &&
    (x.message_class ?? 'marketing') === (y.message_class ?? 'marketing') &&
    !targets.has(x.name)
  );
}

// ---------------------------------------------------------------------------------------------
// The rules

/** Every place that names an event, with the condition or YAML path to point at. */
function eventUses(ctx: LintContext): { name: string; path?: Path; condition?: LintCondition; node?: Node }[] {
  const bp = ctx.blueprint;
  const out: { name: string; path?: Path; condition?: LintCondition; node?: Node }[] = [];
  for (const c of ctx.conditions) {
    for (const name of c.compiled.references.events) {
      const node = [...walk(c.root)].find(({ node: n }) => celAst.stringLiteral(n) === name)?.node;
      out.push({ name, condition: c, ...(node ? { node } : {}) });
    }
  }
  bp.computed_traits?.forEach((t, i) => {
    if (t.event !== undefined && (t.types === undefined || t.types.includes('track'))) out.push({ name: t.event, path: ['computed_traits', i, 'event'] });
  });
  bp.policies?.suppressions?.forEach((s, i) => {
    if (s.type === 'exclude_item') out.push({ name: s.event, path: ['policies', 'suppressions', i, 'event'] });
  });
  bp.journeys?.forEach((j, ji) => {
    if (j.entry.type === 'event') out.push({ name: j.entry.event, path: ['journeys', ji, 'entry', 'event'] });
    j.exit?.forEach((e, ei) => {
      if (e.type === 'event') out.push({ name: e.event, path: ['journeys', ji, 'exit', ei, 'event'] });
    });
    j.steps.forEach((s, si) => {
      if (s.type === 'wait_for_event') out.push({ name: s.event, path: ['journeys', ji, 'steps', si, 'event'] });
    });
  });
  bp.experiments?.tests?.forEach((t, ti) =>
    t.goals.forEach((g, gi) => {
      if (g.type === 'conversion' || g.type === 'revenue') out.push({ name: g.event, path: ['experiments', 'tests', ti, 'goals', gi, 'event'] });
    }),
  );
  bp.kpis?.forEach((k, i) => {
    if (k.metric.type === 'event_rate' || k.metric.type === 'revenue_per_customer') out.push({ name: k.metric.event, path: ['kpis', i, 'metric', 'event'] });
  });
  return out;
}

const undeclaredEvent: LintRule = {
  id: 'undeclared-event',
  summary: 'A condition, computed trait, journey, goal, KPI or suppression names an event that no data contract declares and no source mapping produces, so the name cannot be checked.',
  check(ctx, report) {
    const vocab = ctx.vocabulary;
    const fix = vocab.anyEventContract ? 'declare it in the contract of the source that sends it' : 'declare it under sources[].contract.events of the source that sends it; until some source has a contract, no event name is checked';
    for (const use of eventUses(ctx)) {
      if (vocab.events.has(use.name)) continue;
      const guess = closest(use.name, vocab.events.keys());
      const message = `event "${use.name}" is not declared in a data contract and no source mapping produces it${guess ? ` — did you mean "${guess}"?` : ''}; ${fix}`;
      if (use.condition) {
        const spot = use.node ? celAst.literalSpan(use.condition.condition.source, use.node).offset : 0;
        report.inCondition(use.condition, spot, 'warning', `${use.condition.condition.where}: ${message}`);
      } else if (use.path) report.at(use.path, 'warning', message);
    }
  },
};

const undeclaredTrait: LintRule = {
  id: 'undeclared-trait',
  summary: 'A condition or KPI reads a trait that no data contract, mapping, computed trait or journey step declares, so the name cannot be checked.',
  check(ctx, report) {
    const vocab = ctx.vocabulary;
    const declared = [...vocab.traits];
    const message = (name: string): string => {
      const guess = closest(name, declared);
      return `trait "${name}" is not declared by any source contract, mapping, computed trait or update_trait step${guess ? ` — did you mean "${guess}"?` : ''}; declare it under sources[].contract.traits`;
    };
    for (const c of ctx.conditions) {
      for (const name of c.compiled.references.traits) {
        if (vocab.traits.has(name)) continue;
        // Reading `traits` as a whole names every declared trait; only a field access is a use.
        let spot: number | undefined;
        for (const { node: n } of walk(c.root)) {
          if ((n.op === '.' || n.op === '.?') && n.args[0].op === 'id' && n.args[0].args === 'traits' && n.args[1] === name) spot = celAst.fieldSpan(n, name).offset;
          else if ((n.op === '[]' || n.op === '[?]') && n.args[0].op === 'id' && n.args[0].args === 'traits' && celAst.stringLiteral(n.args[1]) === name) spot = celAst.literalSpan(c.condition.source, n.args[1]).offset;
          else continue;
          break;
        }
        if (spot !== undefined) report.inCondition(c, spot, 'warning', `${c.condition.where}: ${message(name)}`);
      }
    }
    ctx.blueprint.kpis?.forEach((k, i) => {
      if (k.metric.type === 'trait_average' && !vocab.traits.has(k.metric.trait)) report.at(['kpis', i, 'metric', 'trait'], 'warning', message(k.metric.trait));
    });
  },
};

const offerUnreachable: LintRule = {
  id: 'offer-unreachable',
  summary: 'An offer that can never be chosen: its condition can never hold, or on every placement and channel it lists, offers with a higher priority that always apply fill every slot.',
  check(ctx, report) {
    const views = offerViews(ctx);
    const named = namedOffers(ctx.blueprint);
    const targets = experimentTargets(ctx.blueprint);
    const capacity = new Map((ctx.blueprint.placements ?? []).map((p) => [p.name, p.max_offers ?? 1]));
    for (const v of views) {
      const c = v.condition;
      const never = c ? alwaysFalse(c.root) : undefined;
      if (c && never) {
        const why = never.length === 1 ? `needs ${quoted(c, never)}` : `needs ${quoted(c, never)} at once`;
        report.inCondition(c, c.root, 'error', `offer "${v.offer.name}" can never be chosen: its condition ${why}, so it never holds`);
        continue;
      }
      if (named.has(v.offer.name)) continue;
      const slots = [...(v.offer.placements ?? []).map((p) => ({ kind: 'placement', name: p, size: capacity.get(p) ?? 1 })), ...(v.offer.channels ?? []).map((ch) => ({ kind: 'channel', name: ch, size: 1 }))];
      if (slots.length === 0) continue;
      const winners = new Set<string>();
      const shadowed = slots.every((slot) => {
        const above = views.filter((w) => w !== v && (slot.kind === 'placement' ? w.offer.placements : w.offer.channels)?.includes(slot.name) && beats(w, v, targets));
        for (const w of above.slice(0, slot.size)) winners.add(w.offer.name);
        return above.length >= slot.size;
      });
      if (!shadowed) continue;
      const where = slots.map((s) => `${s.kind} "${s.name}"`).join(', ');
      report.at(
        ['offers', v.index, 'name'],
        'warning',
        `offer "${v.offer.name}" can never be chosen: on ${where} it always loses to ${[...winners].map((w) => `"${w}"`).join(', ')} (higher priority, applies to everyone it does, no caps); lower their priority, give them a condition, or remove "${v.offer.name}"`,
      );
    }
  },
};

const offersOverlap: LintRule = {
  id: 'offers-overlap',
  summary: 'Two offers compete for the same placement with the same priority, stages and condition: arbitration falls to value, propensity and the tie-break.',
  check(ctx, report) {
    const views = offerViews(ctx).filter((v) => !v.never);
    const capacity = new Map((ctx.blueprint.placements ?? []).map((p) => [p.name, p.max_offers ?? 1]));
    views.forEach((b, j) => {
      for (const a of views.slice(0, j)) {
        const x = a.offer;
        const y = b.offer;
        if ((x.priority ?? 0) !== (y.priority ?? 0) || a.shape !== b.shape || !overlaps(x.stages, y.stages)) continue;
        // Only a placement with fewer slots than the offers tied on it makes them compete.
        const shared = (y.placements ?? []).filter((p) => {
          if (!x.placements?.includes(p)) return false;
          const tied = views.filter((w) => w.offer.placements?.includes(p) && (w.offer.priority ?? 0) === (y.priority ?? 0) && w.shape === b.shape && overlaps(w.offer.stages, y.stages));
          return tied.length > (capacity.get(p) ?? 1);
        });
        if (shared.length === 0) continue;
        report.at(
          ['offers', b.index, 'name'],
          'warning',
          `offers "${x.name}" and "${y.name}" compete for ${shared.map((p) => `placement "${p}"`).join(', ')} with the same priority (${y.priority ?? 0}) and ${b.shape === 'true' ? 'no condition' : 'the same condition'}: which one is shown is left to value, propensity and the tie-break; give one a higher priority or a condition of its own`,
        );
      }
    });
  },
};

const stageWithoutOffer: LintRule = {
  id: 'stage-without-offer',
  summary: 'A stage that no offer lists in its stages (while every offer lists some): customers in that stage match no offer.',
  check(ctx, report) {
    const views = offerViews(ctx).filter((v) => !v.never);
    if (views.length === 0) return;
    ctx.blueprint.stages?.forEach((s, i) => {
      if (views.some((v) => v.offer.stages === undefined || v.offer.stages.includes(s.name))) return;
      report.at(['stages', i, 'name'], 'warning', `no offer lists stage "${s.name}" under its stages, so customers in it match no offer (a silent gap); add "${s.name}" to an offer's stages, or add an offer for it`);
    });
  },
};

const conditionContradiction: LintRule = {
  id: 'condition-contradiction',
  summary: 'A condition, or part of one, that can never hold (n > 10 && n < 5, a && !a) or always holds (a || !a), found by reasoning on literals.',
  check(ctx, report) {
    for (const c of ctx.conditions) {
      // The whole condition of an offer that never holds is offer-unreachable's finding.
      const skipRoot = c.condition.kind === 'offer';
      for (const { node, parent } of walk(c.root)) {
        if (node.op === '&&' && parent?.op !== '&&') {
          const never = alwaysFalse(node);
          if (never && !(skipRoot && node === c.root)) {
            const why = never.length === 1 ? `${quoted(c, never)} is false` : `${quoted(c, never)} cannot ${never.length > 2 ? 'all' : 'both'} hold`;
            report.inCondition(c, never[0]?.node ?? node, 'error', `${c.condition.where}: ${why}, so ${part(c, node)} never holds`);
          }
        } else if (node.op === '||' && parent?.op !== '||') {
          const always = alwaysTrue(node);
          if (always) {
            const why = always.length === 1 ? `${quoted(c, always)} is true` : `${quoted(c, always)} leave no case out`;
            report.inCondition(c, always[0]?.node ?? node, 'warning', `${c.condition.where}: ${why}, so ${part(c, node)} always holds; say which customers you mean`);
          }
        } else if (node.op === 'value' && typeof node.args === 'boolean' && parent !== undefined && (parent.op === '&&' || parent.op === '||')) {
          // `x && true`, `x || false`: a constant that does not decide, left over from an edit.
          const decides = (parent.op === '&&') !== node.args;
          if (!decides) report.inCondition(c, node, 'warning', `${c.condition.where}: \`${node.args}\` in \`${text(c, parent)}\` changes nothing; remove it`);
        }
      }
    }
  },
};

const MAX_NEGATIONS = 2;

const negationHeavy: LintRule = {
  id: 'negation-heavy',
  summary: `A double negation (!!x, !(a != b)), a negated comparison with a positive form (!(n < 3) is n >= 3), or more than ${MAX_NEGATIONS} negations in one condition.`,
  check(ctx, report) {
    for (const c of ctx.conditions) {
      let count = 0;
      for (const { node, parent } of walk(c.root)) {
        if (node.op !== '!_') continue;
        count++;
        // The inner ! of !!x is part of the double negation reported at the outer one.
        if (parent?.op === '!_') continue;
        const inner = node.args;
        if (inner.op === '!_') {
          report.inCondition(c, node, 'warning', `${c.condition.where}: \`${text(c, node)}\` is a double negation; write \`${text(c, inner.args)}\``);
        } else if (COMPARISONS.has(inner.op) && inner.op !== '==') {
          // !(a == b) is a != b, which is no more positive; the others have a positive form.
          const [l, r] = inner.args as [Node, Node];
          const positive = NEGATE[inner.op as Comparison];
          const kind = inner.op === '!=' ? 'is a double negation' : 'negates a comparison';
          report.inCondition(c, node, 'warning', `${c.condition.where}: \`${text(c, node)}\` ${kind}; write \`${text(c, l)} ${positive} ${text(c, r)}\``);
        }
      }
      if (count > MAX_NEGATIONS) {
        report.inCondition(c, c.root, 'warning', `${c.condition.where}: ${count} negations in one condition; state what the customer did or is (a segment for the exclusions, then in_segment()), not what they did not`);
      }
    }
  },
};

/** Segments named outside conditions: journey entries, content variants, rollout pilots, KPI cohorts. */
function structuralSegmentRefs(bp: Blueprint): Set<string> {
  const out = new Set<string>();
  const content = (c: Content | undefined): void => {
    for (const block of Object.values(c ?? {})) for (const v of block.variants ?? []) if (v.segment !== undefined) out.add(v.segment);
  };
  for (const o of bp.offers ?? []) content(o.content);
  for (const j of bp.journeys ?? []) {
    if ((j.entry.type === 'segment' || j.entry.type === 'schedule') && j.entry.segment !== undefined) out.add(j.entry.segment);
    for (const s of j.steps) if (s.type === 'send') content(s.message?.content);
  }
  for (const t of bp.experiments?.tests ?? []) if (t.type === 'ab') for (const v of t.variants) content(v.content);
  for (const p of bp.rollout?.phases ?? []) if (p.pilot?.segment !== undefined) out.add(p.pilot.segment);
  for (const k of bp.kpis ?? []) if (k.cohort !== undefined) out.add(k.cohort);
  return out;
}

const unusedSegment: LintRule = {
  id: 'unused-segment',
  summary: 'A segment that no condition, journey, content variant, rollout pilot or KPI refers to (it is still kept up to date and visible on profiles).',
  check(ctx, report) {
    const used = structuralSegmentRefs(ctx.blueprint);
    // A segment reading itself is a load error (a cycle), so every reference counts as a use.
    for (const c of ctx.conditions) for (const s of c.compiled.references.segments) used.add(s);
    ctx.blueprint.segments?.forEach((s, i) => {
      if (used.has(s.name)) return;
      report.at(['segments', i, 'name'], 'info', `segment "${s.name}" is not used by any condition, journey, content variant, rollout pilot or KPI${s.persona ? ' (it describes a persona)' : ''}; it is still kept up to date and shown on profiles`);
    });
  },
};

/**
 * The loader's own warnings (an event property a contract does not list, …) under a rule id, so
 * lint shows everything validate does. Those that another rule reports at the same spot are dropped
 * by lintBlueprint; a condition naming an undeclared event or trait is always left to
 * undeclared-event and undeclared-trait.
 */
const loadWarning: LintRule = {
  id: 'load-warning',
  summary: 'A warning the loader gives (as `cairn validate` prints it) that no other rule covers, such as an event property that the contract does not list.',
  check(ctx, report) {
    for (const w of ctx.loaded.warnings) {
      if (w.code === 'CAIRN_ERR_CONDITION_UNKNOWN') continue;
      report.issue(w);
    }
  },
};

/** Every rule, in the order findings are grouped in docs/lint.md. */
export const LINT_RULES: readonly LintRule[] = [
  undeclaredEvent,
  undeclaredTrait,
  offerUnreachable,
  offersOverlap,
  stageWithoutOffer,
  conditionContradiction,
  negationHeavy,
  unusedSegment,
  loadWarning,
];

export const LINT_RULE_IDS: readonly string[] = LINT_RULES.map((r) => r.id);

class Reporter implements LintReporter {
  constructor(
    private readonly ctx: LintContext,
    private readonly rule: string,
    private readonly out: LintFinding[],
  ) {}

  at(path: Path, severity: LintSeverity, message: string, atKey = false): void {
    // The locator's issue() finds the position (the deepest node of the path that exists); the code is not used.
    const i = this.ctx.loaded.locator.issue('CAIRN_ERR_BLUEPRINT_REFERENCE', path, message, atKey);
    this.out.push({ rule: this.rule, severity, message, file: i.file, line: i.line, column: i.column, frame: i.frame, where: formatPath(path) });
  }

  inCondition(c: LintCondition, spot: Node | number, severity: LintSeverity, message: string): void {
    const locator = this.ctx.loaded.locator;
    const offset = typeof spot === 'number' ? spot : spot.start;
    const { line, column } = conditionPosition(locator, c.condition, offset);
    this.out.push({ rule: this.rule, severity, message, file: locator.file, line, column, frame: codeFrame(locator.source, line, column), where: c.condition.where });
  }

  /** A loader issue as it is. */
  issue(w: BlueprintIssue): void {
    this.out.push({ rule: this.rule, severity: w.severity ?? 'error', message: w.message, file: w.file, line: w.line, column: w.column, frame: w.frame });
  }
}

/** Throws CAIRN_ERR_LINT_RULE, with the closest id and the list, for an id that is not a rule. */
export function checkLintRuleIds(ids: readonly string[]): void {
  for (const id of ids) {
    if (LINT_RULE_IDS.includes(id)) continue;
    const guess = closest(id, LINT_RULE_IDS);
    throw new CairnError('CAIRN_ERR_LINT_RULE', { rule: id, suggestion: `${guess ? ` — did you mean "${guess}"?` : ''} (rules: ${LINT_RULE_IDS.join(', ')})` });
  }
}

export interface LintOptions {
  /** Run only these rules (ids from LINT_RULE_IDS); default all. */
  rules?: readonly string[];
}

export interface LintResult {
  findings: LintFinding[];
  counts: Record<LintSeverity, number>;
}

/**
 * Lints a loaded blueprint. Findings are sorted by position in the file. Throws
 * CAIRN_ERR_LINT_RULE for a rule id that does not exist.
 *
 * @example
 * const { findings, counts } = lintBlueprint(loadBlueprintFile('blueprint.yaml'));
 * if (counts.error > 0) process.exitCode = 1;
 */
export function lintBlueprint(loaded: LoadedBlueprint, options: LintOptions = {}): LintResult {
  const wanted = options.rules;
  if (wanted !== undefined) checkLintRuleIds(wanted);
  const ctx = new LintContext(loaded);
  const findings: LintFinding[] = [];
  for (const rule of LINT_RULES) {
    if (wanted !== undefined && !wanted.includes(rule.id)) continue;
    rule.check(ctx, new Reporter(ctx, rule.id, findings));
  }
  // A loader warning that a rule reports at the same spot is said once, by the rule.
  const spots = new Set(findings.filter((f) => f.rule !== loadWarning.id).map((f) => `${f.line}:${f.column}`));
  const kept = findings.filter((f) => f.rule !== loadWarning.id || !spots.has(`${f.line}:${f.column}`));
  const seen = new Set<string>();
  const unique = kept.filter((f) => {
    const key = `${f.rule}|${f.line}|${f.column}|${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort((a, b) => a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
  const counts: Record<LintSeverity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of unique) counts[f.severity]++;
  return { findings: unique, counts };
}
