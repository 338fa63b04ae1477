import type { Logger } from 'pino';
import { sql, type Selectable } from 'kysely';
import { CairnError, closest, decodeCursor, encodeCursor, uuidv7, type Clock } from '../core/index.js';
import { customerZone } from '../conditions/index.js';
import { chunkRows, inChunks, insertRows, type Db, type DecisionsTable, type Store, type Trx } from '../store/index.js';
import { extractIdentities, mergeEpoch, parseIdentity, type ProfileEvent } from '../profiles/index.js';
import type { ResolvedOffer, ResolvedPlacement } from '../blueprint/index.js';
import type { Workspace } from '../governance/index.js';
import type { TemplateVars } from '../templates/index.js';
import { contentVars } from './content.js';
import { CapCounts, EXPOSURE_EVENTS, ProfileUseCache, profileSince, totalIncrements, totalSeries, type ProfileUse } from './caps.js';
import { arbitrate, evaluateOffer, NO_PROPENSITY, type CandidateExplanation, type DecideContext, type DecisionOutcome, type Evaluated, type Propensity, type ReasonCode } from './engine.js';
import { candidatesFor, planOf, type DecisionPlan } from './plan.js';
import { loadExcludedItems, loadSubject, SubjectCache, type LoadedSubject, type SubjectRef } from './subject.js';

/** A decide request, as the HTTP route and the CLI pass it. */
export interface DecideInput {
  userId?: string | number;
  anonymousId?: string | number;
  /** An identity as kind:value (email:ana@example.com). */
  identity?: string;
  /** A profile id (the CLI and server-side callers that hold one). */
  customerId?: string;
  placement?: string;
  channel?: string;
  context?: Record<string, unknown>;
  explain?: boolean;
}

export interface DecidedOffer {
  offer: string;
  title: string;
  score: number;
  rank: number;
  fallback?: true;
  content: Record<string, unknown> | null;
}

export interface DecisionResult {
  decisionId: string;
  placement: string | null;
  channel: string | null;
  outcome: 'SELECTED' | 'NO_ACTION';
  offers: DecidedOffer[];
  /** The customer the decision was for; null for an unknown identity. */
  customerId: string | null;
  explanation?: { outcome: 'SELECTED' | 'NO_ACTION'; customer: { known: boolean; segments: string[]; stage: string | null }; candidates: CandidateExplanation[] };
  /** True for dry runs (`cairn explain`): nothing was logged or counted. */
  dryRun?: true;
}

export interface LoggedDecision {
  decisionId: string;
  placement: string | null;
  channel: string | null;
  at: string;
  outcome: string;
  offers: { offer: string; rank: number; score: number; fallback?: true }[];
  reasons: Record<string, ReasonCode>;
}

interface Pending {
  workspace: Workspace;
  ctx: DecideContext;
  subject: LoadedSubject;
  evaluated: Evaluated[];
  /**
   * How many steps each of `evaluated` had before arbitration, for explained decisions: arbitrate
   * appends cap and score steps to them, so a decision arbitrated again (drain's per-workspace
   * retry) is first cut back to these, or its explanation would list those steps twice.
   */
  stepsBefore?: number[];
  resolve: (r: { id: string; outcome: DecisionOutcome }) => void;
  reject: (e: unknown) => void;
}

export interface DecisionServiceOptions {
  propensity?: Propensity;
  /** Most decisions written in one transaction. */
  maxBatch?: number;
  /** How long (ms) a group commit waits for more decisions to join it; 0 commits at the next turn. Default 1 (CAIRN_DECIDE_COMMIT_DELAY). */
  commitDelayMs?: number;
  /**
   * How long (ms) a loaded customer may be reused by later decisions when nothing in this process
   * changed it (see SubjectCache); 0 disables the cache. Default 1000.
   */
  subjectCacheMs?: number;
}

/**
 * Real-time decisions. `decide` loads the customer (outside any transaction), runs the eligibility
 * pass, then hands the decision to a group-commit writer: one transaction per batch of concurrent
 * decisions reads the cap counts the batch needs, arbitrates each decision in arrival order (so a
 * decision sees the ones before it, even in the same batch), writes the decision log and the total
 * counters, and commits. The caller gets its answer only after COMMIT, so a decisionId is always
 * resolvable by the time an impression carrying it arrives. On PostgreSQL the transaction takes an
 * advisory lock per workspace, so decision caps hold across processes too.
 */
export class DecisionService {
  private queue: Pending[] = [];
  /** Whether the running commit's transaction body finished (a later failure is COMMIT's own). */
  private bodyDone = false;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly propensity: Propensity;
  private readonly maxBatch: number;
  private readonly commitDelayMs: number;
  private listenerWork: Promise<void> = Promise.resolve();
  private readonly subjects: SubjectCache;
  /** Recent per-profile decision uses, shared by every service on this store (see ProfileUseCache). */
  private readonly uses: ProfileUseCache;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: DecisionServiceOptions = {},
  ) {
    this.propensity = opts.propensity ?? NO_PROPENSITY;
    this.maxBatch = opts.maxBatch ?? 256;
    this.commitDelayMs = opts.commitDelayMs ?? 1;
    this.subjects = new SubjectCache(opts.subjectCacheMs ?? 1000);
    this.uses = ProfileUseCache.of(store);
  }

  /**
   * Decides for one request. With `dryRun`, the decision is computed against the stored counts and
   * neither logged nor counted (`cairn explain`).
   */
  async decide(ws: Workspace, req: DecideInput, opts: { dryRun?: boolean } = {}): Promise<DecisionResult> {
    const model = ws.model;
    const plan = planOf(model);
    const now = this.clock.now();
    const placement = resolvePlacement(plan, req.placement);
    const channel = resolveChannel(plan, req.channel);
    if (placement === null && channel === null) throw new CairnError('CAIRN_ERR_DECIDE_TARGET');
    const identities = requestIdentities(ws, req);
    const context: Record<string, unknown> = { ...req.context };
    if (placement && context.placement === undefined) context.placement = placement.name;
    if (channel && context.channel === undefined) context.channel = channel;

    const subject = await loadSubject(this.store.db, ws.id, model, plan, identities, context, now, opts.dryRun ? undefined : this.subjects);
    const candidates = candidatesFor(plan, placement, channel);
    if (plan.itemRules) await loadExcludedItems(this.store.db, ws.id, model, subject, candidates, now);
    const ctx: DecideContext = { model, placement, channel, slot: placement?.name ?? (channel as string), now, explain: req.explain === true, propensity: this.propensity };
    const evaluated = candidates.map((o) => evaluateOffer(o, subject, ctx));

    let id: string;
    let outcome: DecisionOutcome;
    if (opts.dryRun) {
      const counts = new CapCounts();
      await loadCounts(this.store.db, ws, [{ ctx, subject, evaluated }], counts);
      outcome = arbitrate(evaluated, subject, ctx, counts);
      id = uuidv7(now);
    } else {
      ({ id, outcome } = await this.submit({ workspace: ws, ctx, subject, evaluated }));
    }
    return this.respond(id, ws, ctx, subject, outcome, opts.dryRun === true);
  }

  private respond(id: string, ws: Workspace, ctx: DecideContext, subject: LoadedSubject, outcome: DecisionOutcome, dryRun: boolean): DecisionResult {
    const plan = planOf(ws.model);
    const vars = contentVars(ws.model, subject.customerId, subject.input, ctx.now);
    const segments = vars.profile.segments ?? [];
    const offers: DecidedOffer[] = outcome.selected.map((s) => ({
      offer: s.offer.name,
      title: s.offer.title,
      score: Math.round(s.score * 1e6) / 1e6,
      rank: s.rank,
      ...(s.fallback ? { fallback: true as const } : {}),
      content: this.render(plan, s.offer, ctx, vars, subject.input.segments),
    }));
    const result: DecisionResult = { decisionId: id, placement: ctx.placement?.name ?? null, channel: ctx.channel, outcome: outcome.outcome, offers, customerId: subject.customerId };
    if (outcome.candidates) result.explanation = { outcome: outcome.outcome, customer: { known: subject.customerId !== null, segments, stage: subject.input.stage }, candidates: outcome.candidates };
    if (dryRun) result.dryRun = true;
    return result;
  }

  /** Content for the placement (else the channel), falling back to the other key. */
  private render(plan: DecisionPlan, offer: ResolvedOffer, ctx: DecideContext, vars: TemplateVars, segments: ReadonlySet<string>): Record<string, unknown> | null {
    const keys = [ctx.placement?.name, ctx.channel].filter((k): k is string => k !== undefined && k !== null);
    for (const key of keys) {
      try {
        const c = plan.content(offer, key);
        if (c) return c.render({ ...vars, offer: { name: offer.name, title: offer.title } }, segments);
      } catch (err) {
        // A render that fails (a limit hit by odd profile data) returns the offer without content.
        this.log.warn({ err, offer: offer.name, key }, 'offer content failed to render');
        return null;
      }
    }
    return null;
  }

  private submit(p: Omit<Pending, 'resolve' | 'reject'>): Promise<{ id: string; outcome: DecisionOutcome }> {
    if (this.closed) return Promise.reject(new CairnError('CAIRN_ERR_SHUTTING_DOWN'));
    return new Promise((resolve, reject) => {
      this.queue.push({ ...p, ...(p.ctx.explain ? { stepsBefore: p.evaluated.map((e) => e.steps.length) } : {}), resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    // Wait up to `commitDelayMs` for more decisions to join the group: each commit costs about as
    // much as several decisions, and concurrent callers arrive a few hundred µs apart.
    const wait = this.commitDelayMs > 0 ? (f: () => void) => setTimeout(f, this.commitDelayMs) : setImmediate;
    this.running = new Promise<void>((done) => wait(() => void this.drain().finally(done)));
    void this.running.then(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const take = this.queue.splice(0, this.maxBatch);
      try {
        const ids = await this.commit(take);
        take.forEach((p, i) => p.resolve(ids[i] as { id: string; outcome: DecisionOutcome }));
      } catch (err) {
        const groups = new Map<string, Pending[]>();
        for (const p of take) groups.set(p.workspace.id, [...(groups.get(p.workspace.id) ?? []), p]);
        // Retried only when the failure came before COMMIT, so nothing was written. A failure of
        // COMMIT itself (a connection lost meanwhile) leaves the outcome unknown: deciding again
        // could log every decision and count every cap use twice, so those callers get the error.
        if (groups.size === 1 || this.bodyDone) {
          this.log.error({ err }, 'decision commit failed');
          for (const p of take) p.reject(err);
          continue;
        }
        // Each workspace is decided again on its own, so a workspace whose commit fails fails only
        // its own callers.
        for (const [workspaceId, group] of groups) {
          for (const p of group) p.stepsBefore?.forEach((n, i) => ((p.evaluated[i] as Evaluated).steps.length = n));
          try {
            const ids = await this.commit(group);
            group.forEach((p, i) => p.resolve(ids[i] as { id: string; outcome: DecisionOutcome }));
          } catch (e) {
            this.log.error({ err: e, workspaceId }, 'decision commit failed');
            for (const p of group) p.reject(e);
          }
        }
      }
    }
  }

  private async commit(take: Pending[]): Promise<{ id: string; outcome: DecisionOutcome }[]> {
    const byWs = new Map<string, Pending[]>();
    for (const p of take) {
      const list = byWs.get(p.workspace.id) ?? [];
      list.push(p);
      byWs.set(p.workspace.id, list);
    }
    const results = new Map<Pending, { id: string; outcome: DecisionOutcome }>();
    let token: number | undefined;
    this.bodyDone = false;
    await this.store.transaction(
      async (trx) => {
        token = this.uses.begin(await this.store.foreignWriteStamp(trx), mergeEpoch(this.store));
        const cache = token === undefined ? undefined : this.uses;
        for (const [wsId, list] of byWs) {
          const ws = (list[0] as Pending).workspace;
          const counts = new CapCounts();
          await loadCounts(trx, ws, list, counts, cache);
          const rows: unknown[][] = [];
          const uses: unknown[][] = [];
          const increments = new Map<string, { offer: string; placement: string; series: string; bucket: number; n: number }>();
          for (const p of list) {
            // `counts` already holds this batch's earlier decisions: arbitration records each selection into it.
            const outcome = arbitrate(p.evaluated, p.subject, p.ctx, counts);
            const id = uuidv7(p.ctx.now);
            results.set(p, { id, outcome });
            rows.push([
              wsId,
              id,
              p.subject.customerId,
              p.ctx.placement?.name ?? null,
              p.ctx.channel,
              p.ctx.now,
              outcome.outcome,
              JSON.stringify(outcome.selected.map((s) => ({ offer: s.offer.name, rank: s.rank, score: Math.round(s.score * 1e6) / 1e6, ...(s.fallback ? { fallback: true } : {}) }))),
              encodeReasons(outcome.reasons),
            ]);
            for (const s of outcome.selected) {
              if (p.subject.customerId !== null && s.offer.caps.some((c) => c.per === 'profile' && c.count === 'decision')) {
                uses.push([wsId, p.subject.customerId, s.offer.name, p.ctx.now, id, p.ctx.slot]);
                cache?.add(ProfileUseCache.key(wsId, p.subject.customerId), { offer: s.offer.name, placement: p.ctx.slot, kind: 'decision', at: p.ctx.now });
              }
              for (const t of totalIncrements(s.offer, 'decision', p.ctx.slot, p.ctx.now, ws.model.timezone)) {
                const k = `${s.offer.name}\u0000${t.placement}\u0000${t.series}\u0000${t.bucket}`;
                const cur = increments.get(k);
                if (cur) cur.n++;
                else increments.set(k, { offer: s.offer.name, placement: t.placement, series: t.series, bucket: t.bucket, n: 1 });
              }
            }
          }
          await insertRows(trx, this.store.dialect, 'decisions', ['workspace_id', 'id', 'customer_id', 'placement', 'channel', 'at', 'outcome', 'offers', 'reasons'], rows);
          await insertRows(trx, this.store.dialect, 'offer_uses', ['workspace_id', 'customer_id', 'offer', 'at', 'decision_id', 'slot'], uses);
          await bumpCounters(trx, this.store, wsId, 'decision', [...increments.values()]);
        }
        this.bodyDone = true;
      },
      [...byWs.keys()].map((w) => `decide:${w}`),
      // The log is answered from, not waited on: a process crash loses no decision, and a power cut
      // can lose only the last moment of them (docs/decisioning.md). Without this, every group
      // commit blocked the event loop for an fsync (SQLite) or a WAL flush round trip (PostgreSQL).
      { durability: 'relaxed' },
    );
    this.uses.end(token);
    return take.map((p) => results.get(p) as { id: string; outcome: DecisionOutcome });
  }

  /**
   * Counts impressions and clicks toward total caps after ingest commits them: `Offer Viewed` and
   * `Offer Clicked` track events with `properties.offer` (and `properties.placement`). This runs
   * after the ingest commit, in its own transaction: a crash between the two loses these increments
   * (the total can under-count by what was in flight). Per-profile caps read the events themselves
   * and are exact.
   */
  onIngestCommitted(workspaceId: string, workspace: () => Promise<Workspace>, unit: { readonly events: readonly { readonly customer: { readonly id: string }; readonly event: Omit<ProfileEvent, 'payload'> }[]; readonly log: readonly { customerId: string; otherId: string | null }[] }): void {
    // Cached customers this commit changed (or merged away) must be read again.
    this.subjects.invalidate(
      workspaceId,
      [...unit.events.map((p) => p.customer.id), ...unit.log.flatMap((l) => (l.otherId === null ? [l.customerId] : [l.customerId, l.otherId]))],
      unit.events.flatMap((p) => p.event.identities),
    );
    if (!unit.events.some((p) => p.event.type === 'track' && p.event.name !== null && EXPOSURE_EVENTS[p.event.name] !== undefined)) return;
    this.listenerWork = this.listenerWork
      .then(async () => {
        const ws = await workspace();
        const plan = planOf(ws.model);
        if (!plan.countsExposures) return;
        const increments = new Map<string, { kind: 'impression' | 'click'; offer: string; placement: string; series: string; bucket: number; n: number }>();
        for (const p of unit.events) {
          const e = p.event;
          if (e.type !== 'track' || e.name === null) continue;
          const kind = EXPOSURE_EVENTS[e.name];
          if (!kind) continue;
          const offer = typeof e.properties?.offer === 'string' ? plan.offersByName.get(e.properties.offer) : undefined;
          if (!offer) continue;
          const slot = typeof e.properties?.placement === 'string' ? e.properties.placement : typeof e.properties?.channel === 'string' ? e.properties.channel : '';
          for (const t of totalIncrements(offer, kind, slot, e.ts, ws.model.timezone)) {
            const k = `${kind}\u0000${offer.name}\u0000${t.placement}\u0000${t.series}\u0000${t.bucket}`;
            const cur = increments.get(k);
            if (cur) cur.n++;
            else increments.set(k, { kind, offer: offer.name, placement: t.placement, series: t.series, bucket: t.bucket, n: 1 });
          }
        }
        if (increments.size === 0) return;
        const list = [...increments.values()];
        await this.store.transaction(async (trx) => {
          for (const kind of ['impression', 'click'] as const) await bumpCounters(trx, this.store, ws.id, kind, list.filter((x) => x.kind === kind));
        });
      })
      .catch((err: unknown) => this.log.error({ err }, 'offer exposure counters not updated'));
  }

  /** Resolves once every counter update queued so far is written (tests, shutdown). */
  async settled(): Promise<void> {
    await this.listenerWork;
  }

  /** Waits for queued decisions and counter updates; new decisions are refused. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.kick();
      await this.running;
    }
    await this.listenerWork;
  }
}

async function bumpCounters(trx: Trx, store: Store, workspaceId: string, kind: string, rows: { offer: string; placement: string; series: string; bucket: number; n: number }[]): Promise<void> {
  if (rows.length === 0) return;
  await insertRows(
    trx,
    store.dialect,
    'offer_counters',
    ['workspace_id', 'offer', 'placement', 'kind', 'series', 'bucket', 'count'],
    rows.map((r) => [workspaceId, r.offer, r.placement, kind, r.series, r.bucket, r.n]),
    { suffix: 'on conflict ("workspace_id", "offer", "placement", "kind", "series", "bucket") do update set "count" = "offer_counters"."count" + excluded."count"' },
  );
}

/**
 * Reads the counts the caps of a batch's eligible candidates need: per-profile uses of the batch's
 * customers (decision log rows and exposure events within the longest window) and the total
 * counters of the offers concerned. With `useCache` (inside a decision transaction that began it),
 * per-profile decision uses come from it where it has them.
 */
async function loadCounts(db: Db | Trx, ws: Workspace, list: readonly Pick<Pending, 'ctx' | 'subject' | 'evaluated'>[], counts: CapCounts, useCache?: ProfileUseCache): Promise<void> {
  const decisionSince = new Map<string, number>();
  const exposureSince = new Map<string, number>();
  const totalOffers = new Set<string>();
  /** customer id → the offers whose per-profile decision caps its decision checks. */
  const decisionPairs = new Map<string, Set<string>>();
  let minBucket = Infinity;
  for (const p of list) {
    const zone = customerZone(p.subject.input.traits.timezone, ws.model.timezone);
    const fb = p.ctx.placement?.fallbackOffer;
    const offers = p.evaluated.filter((e) => e.removed === null || e.offer.name === fb).map((e) => e.offer);
    // The fallback may not be a candidate (a placement + channel request it does not list): arbitrate
    // still serves it under its caps, so they are read too.
    const fbOffer = fb === undefined ? undefined : ws.model.offers.find((o) => o.name === fb);
    if (fbOffer && !offers.includes(fbOffer)) offers.push(fbOffer);
    for (const offer of offers) {
      const e = { offer };
      for (const cap of e.offer.caps) {
        if (cap.per === 'total') {
          totalOffers.add(e.offer.name);
          minBucket = Math.min(minBucket, totalSeries(cap, p.ctx.now, ws.model.timezone).from);
          continue;
        }
        const id = p.subject.customerId;
        if (id === null) continue;
        const since = profileSince(cap, p.ctx.now, zone);
        if (cap.count === 'decision') {
          const set = decisionPairs.get(id);
          if (set) set.add(e.offer.name);
          else decisionPairs.set(id, new Set([e.offer.name]));
        }
        const m = cap.count === 'decision' ? decisionSince : exposureSince;
        m.set(id, Math.min(m.get(id) ?? Infinity, since));
      }
    }
  }
  const sinceOf = (m: Map<string, number>): number => {
    let s = Infinity;
    for (const v of m.values()) s = Math.min(s, v);
    return Number.isFinite(s) ? Math.max(0, Math.floor(s)) : 0;
  };
  const maxP = 500;
  if (decisionSince.size > 0 && useCache) {
    // Customers whose recent uses are cached; the others are read whole (every offer, from the
    // earliest `since` among them) so that their entries are complete.
    const misses: string[] = [];
    let missSince = Infinity;
    for (const [id, s] of decisionSince) {
      const since = Number.isFinite(s) ? Math.max(0, Math.floor(s)) : 0;
      const hit = useCache.get(ProfileUseCache.key(ws.id, id), since);
      if (hit) for (const u of hit) counts.addUse(id, u);
      else {
        misses.push(id);
        missSince = Math.min(missSince, since);
      }
    }
    for (const ids of inChunks(misses, maxP)) {
      const rows = await db.selectFrom('offer_uses').select(['customer_id', 'offer', 'slot', 'at']).where('workspace_id', '=', ws.id).where('customer_id', 'in', ids).where('at', '>=', missSince).execute();
      const read = new Map<string, ProfileUse[]>(ids.map((id) => [id, []]));
      for (const r of rows) read.get(r.customer_id)?.push({ offer: r.offer, placement: r.slot, kind: 'decision', at: Number(r.at) });
      for (const [id, uses] of read) {
        for (const u of uses) counts.addUse(id, u);
        useCache.set(ProfileUseCache.key(ws.id, id), missSince, uses);
      }
    }
  } else if (decisionSince.size > 0) {
    const since = sinceOf(decisionSince);
    // Only the (customer, offer) pairs some decision of the batch checks: `customer in (…) and
    // offer in (…)` read every batch customer's uses of every batch offer (most of them for
    // offers of other placements), about six rows for each one needed. A row-value IN over a
    // VALUES list works on SQLite (whose row-value IN needs a subquery) and PostgreSQL alike.
    const pairs = [...decisionPairs].flatMap(([id, offers]) => [...offers].map((o) => sql`(${id}, ${o})`));
    for (const chunk of chunkRows(pairs, 2, maxP)) {
      const rows = await db
        .selectFrom('offer_uses')
        .select(['customer_id', 'offer', 'slot', 'at'])
        .where('workspace_id', '=', ws.id)
        .where(sql<boolean>`(${sql.ref('customer_id')}, ${sql.ref('offer')}) in (values ${sql.join(chunk)})`)
        .where('at', '>=', since)
        .execute();
      for (const r of rows) counts.addUse(r.customer_id, { offer: r.offer, placement: r.slot, kind: 'decision', at: Number(r.at) });
    }
  }
  if (exposureSince.size > 0) {
    const since = sinceOf(exposureSince);
    const names = Object.keys(EXPOSURE_EVENTS);
    for (const ids of inChunks([...exposureSince.keys()], maxP)) {
      const rows = await db.selectFrom('events').select(['customer_id', 'name', 'ts', 'payload']).where('workspace_id', '=', ws.id).where('customer_id', 'in', ids).where('ts', '>=', since).where('type', '=', 'track').where('name', 'in', names).execute();
      for (const r of rows) {
        const props = (JSON.parse(r.payload) as { properties?: Record<string, unknown> }).properties ?? {};
        if (typeof props.offer !== 'string') continue;
        const slot = typeof props.placement === 'string' ? props.placement : typeof props.channel === 'string' ? props.channel : '';
        const use: ProfileUse = { offer: props.offer, placement: slot, kind: EXPOSURE_EVENTS[r.name as string] as 'impression' | 'click', at: Number(r.ts) };
        counts.addUse(r.customer_id, use);
      }
    }
  }
  if (totalOffers.size > 0) {
    // Lifetime counters live in bucket 0, below any window's start: read with the windows' buckets
    // in one statement (each row once, whichever condition matched it).
    const rows = await db
      .selectFrom('offer_counters')
      .select(['offer', 'placement', 'kind', 'series', 'bucket', 'count'])
      .where('workspace_id', '=', ws.id)
      .where('offer', 'in', [...totalOffers])
      .where((eb) => eb.or([eb('bucket', '>=', Number.isFinite(minBucket) ? minBucket : 0), eb('series', '=', 'all')]))
      .execute();
    for (const r of rows) counts.addTotal(r.offer, r.placement, r.kind, r.series, Number(r.bucket), Number(r.count));
  }
}

export function resolvePlacement(plan: DecisionPlan, name: string | undefined): ResolvedPlacement | null {
  if (name === undefined) return null;
  const p = plan.model.placements.get(name);
  if (!p) {
    const names = [...plan.model.placements.keys()];
    const guess = closest(name, names);
    throw new CairnError('CAIRN_ERR_UNKNOWN_PLACEMENT', { placement: name, suggestion: guess ? ` — did you mean "${guess}"?` : names.length ? ` (placements: ${names.join(', ')})` : ' (the blueprint declares no placements)' });
  }
  return p;
}

export function resolveChannel(plan: DecisionPlan, name: string | undefined): string | null {
  if (name === undefined) return null;
  if (!plan.model.channels.has(name)) {
    const names = [...plan.model.channels.keys()];
    const guess = closest(name, names);
    throw new CairnError('CAIRN_ERR_UNKNOWN_CHANNEL', { channel: name, suggestion: guess ? ` — did you mean "${guess}"?` : names.length ? ` (channels: ${names.join(', ')})` : ' (the blueprint declares no channels)' });
  }
  return name;
}

/** The identities to try, strongest first: `identity` (kind:value), then userId / anonymousId as the blueprint reads them. */
function requestIdentities(ws: Workspace, req: DecideInput): SubjectRef[] {
  const out: SubjectRef[] = [];
  if (req.customerId !== undefined) out.push({ id: req.customerId });
  if (req.identity !== undefined) {
    const i = parseIdentity(ws.model, req.identity);
    if (!i) throw new CairnError('CAIRN_ERR_BAD_IDENTITY', { identity: req.identity });
    out.push(i);
  }
  const msg: Record<string, unknown> = {};
  if (req.userId !== undefined) msg.userId = req.userId;
  if (req.anonymousId !== undefined) msg.anonymousId = req.anonymousId;
  for (const i of extractIdentities(ws.model, msg)) if (!out.some((o) => 'kind' in o && o.kind === i.kind && o.value === i.value)) out.push(i);
  if (out.length === 0) throw new CairnError('CAIRN_ERR_DECIDE_IDENTITY');
  return out;
}

/** A customer's decisions, newest first, keyset-paged by (time, id). */
export async function listDecisions(db: Db, workspaceId: string, customerId: string, opts: { limit: number; cursor?: string }): Promise<{ items: LoggedDecision[]; nextCursor: string | null }> {
  let q = db.selectFrom('decisions').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId);
  if (opts.cursor) {
    const [at, id] = decodeCursor(opts.cursor);
    q = q.where((eb) => eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', id)])]));
  }
  const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(opts.limit + 1).execute();
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(loggedDecisionOf),
    nextCursor: rows.length > opts.limit && last ? encodeCursor(Number(last.at), last.id) : null,
  };
}

/** One logged decision by id (what an impression's decision_id refers to). */
export async function getDecision(db: Db, workspaceId: string, id: string): Promise<(LoggedDecision & { customerId: string | null }) | undefined> {
  const r = await db.selectFrom('decisions').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  return r ? { ...loggedDecisionOf(r), customerId: r.customer_id } : undefined;
}

/** A stored `decisions` row as the API shows it. */
function loggedDecisionOf(r: Selectable<DecisionsTable>): LoggedDecision {
  return {
    decisionId: r.id,
    placement: r.placement,
    channel: r.channel,
    at: new Date(Number(r.at)).toISOString(),
    outcome: r.outcome,
    offers: JSON.parse(r.offers) as LoggedDecision['offers'],
    reasons: decodeReasons(r.reasons),
  };
}


/**
 * The log stores reasons grouped by code ({"NOT_ELIGIBLE":["a","b"],…}): most candidates share one
 * or two codes, and the grouped text is about half the size, which is half the log bytes every
 * decision commit writes. Rows written as a flat {offer: code} map read back unchanged.
 */
function encodeReasons(reasons: Readonly<Record<string, ReasonCode>>): string {
  // Built as text (the same text JSON.stringify gave for the grouped object): this runs for every
  // decision over every candidate, and quoting the same few offer names again was most of its cost.
  const byCode = new Map<string, string[]>();
  for (const offer in reasons) {
    const code = reasons[offer] as ReasonCode;
    const q = quoted(offer);
    const list = byCode.get(code);
    if (list) list.push(q);
    else byCode.set(code, [q]);
  }
  let out = '';
  for (const [code, list] of byCode) out += `${out ? ',' : '{'}${quoted(code)}:[${list.join(',')}]`;
  return out ? `${out}}` : '{}';
}

/** JSON string literals of offer names and reason codes, bounded (names come from blueprints). */
const quotedNames = new Map<string, string>();
function quoted(name: string): string {
  let q = quotedNames.get(name);
  if (q === undefined) {
    if (quotedNames.size >= 10_000) quotedNames.clear();
    quotedNames.set(name, (q = JSON.stringify(name)));
  }
  return q;
}

function decodeReasons(text: string): Record<string, ReasonCode> {
  const v = JSON.parse(text) as Record<string, ReasonCode | string[]>;
  const out: Record<string, ReasonCode> = {};
  for (const [k, x] of Object.entries(v)) {
    if (Array.isArray(x)) for (const offer of x) out[offer] = k as ReasonCode;
    else out[k] = x;
  }
  return out;
}
