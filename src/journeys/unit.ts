import { createHash } from 'node:crypto';
import { assertUnreachable, uuidv7 } from '../core/index.js';
import { inChunks, insertRows, type Store, type Trx } from '../store/index.js';
import type { Blueprint, WorkspaceModel } from '../blueprint/index.js';
import { customerZone, type ConditionEvent, type EvalInput } from '../conditions/index.js';
import { compileContentBlock, renderTemplate, type TemplateVars } from '../templates/index.js';
import { contentVars } from '../decisioning/index.js';
import { applyProfileEvents, applyTrait, buildEvalInput, traitValues, currentConsent, loadProfiles, primaryLifecycle, type ConsentEntry, type ConsentState, type ProfileEvent, type ProfileRow } from '../profiles/index.js';
import type { GateOutcome, MessageRequest } from '../delivery/index.js';
import { isStaleEntryEvent, type ResolvedJourney, type ResolvedJourneys, type ResolvedStep } from './model.js';
import { nextLocalTime } from './time.js';

/**
 * One unit of journey work: everything done for a set of customers in ONE transaction under the
 * workspace's profile lock (the lock ingest takes), so journey work and ingest of a customer never
 * interleave and a crash loses or repeats nothing: the instance state, the history, the trait
 * writes, the stage moves, the send requests (ledger + outbox rows written by delivery in this same
 * transaction) and the trigger cursor commit together or not at all.
 *
 * State is loaded in bulk when the unit starts, changed in memory while steps run, and written back
 * with a few multi-row statements at the end (save()).
 */

/** The delivery entry point a send step calls (src/delivery enqueueMessages); injected so the engine does not build a second gate. */
export type EnqueueMessages = (
  trx: Trx,
  store: Store,
  ws: { id: string; model: WorkspaceModel; blueprint: Blueprint },
  customer: { id: string; row: ProfileRow },
  requests: MessageRequest[],
  now: number,
  content?: (req: MessageRequest, channel: string) => Record<string, unknown>,
) => Promise<GateOutcome[]>;

export type InstanceStatus = 'active' | 'completed' | 'exited';
export type WaitKind = 'wait' | 'event' | 'continue';

/** A journey instance in memory (one row of journey_instances). */
export interface Instance {
  customerId: string;
  id: string;
  journey: string;
  status: InstanceStatus;
  step: string | null;
  waitKind: WaitKind | null;
  dueAt: number | null;
  pos: string;
  visits: Record<string, number>;
  variants: Record<string, string>;
  context: { trigger: string; event?: ConditionEvent };
  entryKey: string | null;
  enteredAt: number;
  updatedAt: number;
  endedAt: number | null;
  exitReason: string | null;
}

/** An event as journeys see it: committed, with its (final) customer and its position in the trigger order. */
export interface TriggerEvent {
  id: string;
  customerId: string;
  type: string;
  name: string | null;
  properties: Record<string, unknown> | undefined;
  ts: number;
  receivedAt: number;
  pos: string;
}

let lastMs = 0;
let seq = 0;

/**
 * A time-ordered id that also orders ids minted in the same millisecond (and under a virtual clock
 * that stands still): 12 hex digits of epoch ms, 8 of a per-process sequence, 8 random. A customer's
 * history is read in id order, so steps run in one unit keep their order.
 */
export function orderedId(now: number): string {
  const ms = Math.max(Math.floor(now), lastMs);
  seq = ms === lastMs ? seq + 1 : 0;
  lastMs = ms;
  return `${ms.toString(16).padStart(12, '0')}-${seq.toString(16).padStart(8, '0')}-${Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0')}`;
}

/** Position of an event in the trigger order: received time, then id (both sort as text). */
export function posOf(receivedAt: number, id: string): string {
  return `${String(Math.max(0, Math.floor(receivedAt))).padStart(15, '0')}:${id}`;
}

export type EntryRefusal = 'STALE_EVENT' | 'RE_ENTRY_NEVER' | 'ALREADY_ACTIVE' | 'MAX_CONCURRENT' | 'COOLDOWN' | 'CONDITION' | 'DUPLICATE' | 'PROFILE_GONE';
export type EntryResult = { entered: true; instanceId: string } | { entered: false; reason: EntryRefusal; instanceId?: string };

export interface Trigger {
  /** e:EVENT_ID, g:HISTORY_ID, s:MINUTE, a:KEY; undefined: none (every call is an attempt). */
  key?: string | undefined;
  /** What conditions read as `event`. */
  event?: ConditionEvent | undefined;
  /** Replay guard: events at or before this position never count for the new instance. */
  pos?: string | undefined;
  /** Event triggers: the event's own time (epoch ms, its timestamp, not its arrival), held to the journey's max_event_age. */
  ts?: number | undefined;
  kind: 'event' | 'segment' | 'schedule' | 'api';
}

interface CustomerState {
  row: ProfileRow;
  segments: Set<string>;
  stage: string | null;
  consent: ConsentState[];
  input: EvalInput | undefined;
}

interface EntryRow {
  id: string;
  status: InstanceStatus;
  enteredAt: number;
  endedAt: number | null;
  entryKey: string | null;
}

export interface UnitHooks {
  step(e: { instance: Instance; step: ResolvedStep }): void;
  enter(e: { instance: Instance }): void;
  /** An entry was refused (any trigger); nothing was written for it. */
  refuse(e: { customerId: string; journey: string; trigger: Trigger; reason: EntryRefusal }): void;
  end(e: { instance: Instance }): void;
}

export interface UnitOptions {
  /** Steps one instance runs back to back in a unit before it yields (the loop guard). */
  maxStepsPerRun: number;
  /** Times one step may run in one instance before the instance exits with LOOP_LIMIT. */
  maxVisitsPerStep: number;
}

const EMPTY = new Set<string>();

type InstanceRecord = {
  customer_id: string;
  id: string;
  journey: string;
  status: string;
  step: string | null;
  wait_kind: string | null;
  due_at: number | string | null;
  pos: string;
  visits: string;
  variants: string;
  context: string;
  entry_key: string | null;
  entered_at: number | string;
  updated_at: number | string;
  ended_at: number | string | null;
  exit_reason: string | null;
};

export function instanceOf(r: InstanceRecord): Instance {
  return {
    customerId: r.customer_id,
    id: r.id,
    journey: r.journey,
    status: r.status as InstanceStatus,
    step: r.step,
    waitKind: r.wait_kind as WaitKind | null,
    dueAt: r.due_at === null ? null : Number(r.due_at),
    pos: r.pos,
    visits: JSON.parse(r.visits) as Record<string, number>,
    variants: JSON.parse(r.variants) as Record<string, string>,
    context: JSON.parse(r.context) as Instance['context'],
    entryKey: r.entry_key,
    enteredAt: Number(r.entered_at),
    updatedAt: Number(r.updated_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    exitReason: r.exit_reason,
  };
}

/** Deterministic uniform number in [0, 1) for a customer at a split step (sticky, reproducible). */
export function splitHash(customerId: string, journey: string, step: string): number {
  const h = createHash('sha256').update(`${customerId}\u0000${journey}\u0000${step}`).digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

export class JourneyUnit {
  readonly customers = new Map<string, CustomerState | null>();
  /** Active instances per customer (those this unit loaded or created). */
  readonly active = new Map<string, Instance[]>();
  private readonly entryRows = new Map<string, EntryRow[]>();
  private readonly dirty = new Set<Instance>();
  private readonly history: unknown[][] = [];
  private readonly profileEvents: ProfileEvent[] = [];
  /** Steps run in this unit (the bench's figure). */
  steps = 0;

  constructor(
    readonly trx: Trx,
    readonly store: Store,
    readonly ws: { id: string; model: WorkspaceModel; blueprint: Blueprint },
    readonly journeys: ResolvedJourneys,
    readonly now: number,
    private readonly opts: UnitOptions,
    private readonly hooks: UnitHooks,
    private readonly enqueue: EnqueueMessages | undefined,
    /** Replaying events after a restart: an event counts for an instance only past the instance's pos. */
    readonly replay = false,
  ) {}

  private get maxP(): number {
    return this.store.dialect.capabilities.maxParameters;
  }

  // -------------------------------------------------------------------------------------------
  // Loading

  /** Loads profiles (live ones; merged-away customers stay absent) and what conditions need of them. */
  async loadCustomers(ids: Iterable<string>): Promise<void> {
    const want = [...new Set(ids)].filter((id) => !this.customers.has(id));
    if (want.length === 0) return;
    const rows = await loadProfiles(this.trx, this.store, this.ws.id, want);
    const found = new Map(rows.map((r) => [r.id, r]));
    for (const id of want) {
      const row = found.get(id);
      this.customers.set(id, row && row.mergedInto === null ? { row, segments: EMPTY, stage: null, consent: [], input: undefined } : null);
    }
    const live = want.filter((id) => this.customers.get(id) != null);
    if (live.length === 0) return;
    const { needs } = this.journeys;
    if (needs.segments) {
      for (const chunk of inChunks(live, this.maxP - 1)) {
        const rows = await this.trx.selectFrom('segment_membership').select(['customer_id', 'segment']).where('workspace_id', '=', this.ws.id).where('customer_id', 'in', chunk).execute();
        for (const r of rows) {
          const c = this.customers.get(r.customer_id) as CustomerState;
          if (c.segments === EMPTY) c.segments = new Set();
          c.segments.add(r.segment);
        }
      }
    }
    if (needs.stage) {
      const lifecycle = primaryLifecycle(this.ws.model);
      for (const chunk of inChunks(live, this.maxP - 2)) {
        const rows = await this.trx.selectFrom('customer_stage').select(['customer_id', 'stage']).where('workspace_id', '=', this.ws.id).where('lifecycle', '=', lifecycle).where('customer_id', 'in', chunk).execute();
        for (const r of rows) (this.customers.get(r.customer_id) as CustomerState).stage = r.stage;
      }
    }
    if (needs.consent) {
      const ledger = new Map<string, ConsentEntry[]>();
      for (const chunk of inChunks(live, this.maxP - 1)) {
        const rows = await this.trx.selectFrom('consent').selectAll().where('workspace_id', '=', this.ws.id).where('customer_id', 'in', chunk).execute();
        for (const r of rows) {
          const list = ledger.get(r.customer_id) ?? [];
          list.push({ id: r.id, purpose: r.purpose, channel: r.channel, status: r.status, source: r.source, occurredAt: Number(r.occurred_at), recordedAt: Number(r.recorded_at), wordingVersion: r.wording_version, messageId: r.message_id });
          ledger.set(r.customer_id, list);
        }
      }
      for (const [id, entries] of ledger) (this.customers.get(id) as CustomerState).consent = currentConsent(entries);
    }
  }

  /** Loads the active instances of these customers (all journeys). */
  async loadActive(ids: Iterable<string>): Promise<void> {
    const want = [...new Set(ids)].filter((id) => !this.active.has(id));
    for (const id of want) this.active.set(id, []);
    for (const chunk of inChunks(want, this.maxP - 2)) {
      const rows = (await this.trx.selectFrom('journey_instances').selectAll().where('workspace_id', '=', this.ws.id).where('customer_id', 'in', chunk).where('status', '=', 'active').execute()) as InstanceRecord[];
      for (const r of rows) (this.active.get(r.customer_id) as Instance[]).push(instanceOf(r));
    }
  }

  /** Adopts instances claimed elsewhere (the timer worker) as this unit's, so steps and saves see them. */
  adopt(instances: readonly Instance[]): void {
    for (const inst of instances) {
      const list = this.active.get(inst.customerId);
      if (!list) this.active.set(inst.customerId, [inst]);
      else if (!list.some((i) => i.id === inst.id)) list.push(inst);
    }
  }

  /** Every instance (any status) of these customers in one journey: what re-entry rules read. */
  async loadEntryRows(journey: string, ids: Iterable<string>): Promise<void> {
    const want = [...new Set(ids)].filter((id) => !this.entryRows.has(`${journey}\u0000${id}`));
    for (const id of want) this.entryRows.set(`${journey}\u0000${id}`, []);
    for (const chunk of inChunks(want, this.maxP - 2)) {
      const rows = await this.trx
        .selectFrom('journey_instances')
        .select(['customer_id', 'id', 'status', 'entered_at', 'ended_at', 'entry_key'])
        .where('workspace_id', '=', this.ws.id)
        .where('journey', '=', journey)
        .where('customer_id', 'in', chunk)
        .execute();
      for (const r of rows) {
        (this.entryRows.get(`${journey}\u0000${r.customer_id}`) as EntryRow[]).push({ id: r.id, status: r.status as InstanceStatus, enteredAt: Number(r.entered_at), endedAt: r.ended_at === null ? null : Number(r.ended_at), entryKey: r.entry_key });
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Conditions

  private input(c: CustomerState, event: ConditionEvent | undefined): EvalInput {
    c.input ??= buildEvalInput(this.ws.model, c.row, { now: this.now, segments: c.segments, stage: c.stage, consent: c.consent });
    return event === undefined ? c.input : { ...c.input, event };
  }

  private record(inst: Instance, step: string | null, kind: string, detail?: Record<string, unknown>): void {
    this.history.push([this.ws.id, inst.customerId, orderedId(this.now), inst.id, inst.journey, step, kind, detail === undefined ? null : JSON.stringify(detail), this.now]);
  }

  private touch(inst: Instance): void {
    inst.updatedAt = this.now;
    this.dirty.add(inst);
  }

  private end(inst: Instance, status: 'completed' | 'exited', reason: string | null, detail?: Record<string, unknown>): void {
    inst.status = status;
    inst.waitKind = null;
    inst.dueAt = null;
    inst.endedAt = this.now;
    inst.exitReason = reason;
    if (status === 'completed') inst.step = null;
    this.touch(inst);
    this.record(inst, inst.step, status === 'completed' ? 'complete' : 'exit', reason === null ? detail : { reason, ...detail });
    const list = this.active.get(inst.customerId);
    if (list) {
      const i = list.indexOf(inst);
      if (i >= 0) list.splice(i, 1);
    }
    for (const r of this.entryRows.get(`${inst.journey}\u0000${inst.customerId}`) ?? []) {
      if (r.id === inst.id) {
        r.status = status;
        r.endedAt = this.now;
      }
    }
    this.hooks.end({ instance: inst });
  }

  /** Exit conditions of the instance's journey; ends it and returns true when one holds. */
  private checkExitConditions(inst: Instance, j: ResolvedJourney, c: CustomerState): boolean {
    for (const ex of j.exits) {
      if (ex.type !== 'condition') continue;
      if (ex.condition.evaluate(this.input(c, inst.context.event))) {
        this.end(inst, 'exited', `exit:${ex.name}`);
        return true;
      }
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Entry

  /**
   * Enters a customer into a journey when the event's age, the re-entry rules, max_concurrent and
   * the entry condition allow, then runs its first steps. Call loadCustomers/loadActive/loadEntryRows
   * first (bulk) or let this load them one customer at a time. A refusal is reported to the
   * `refuse` hook and returned.
   */
  async enter(customerId: string, j: ResolvedJourney, trigger: Trigger): Promise<EntryResult> {
    const result = await this.admit(customerId, j, trigger);
    if (!result.entered) this.hooks.refuse({ customerId, journey: j.name, trigger, reason: result.reason });
    return result;
  }

  private async admit(customerId: string, j: ResolvedJourney, trigger: Trigger): Promise<EntryResult> {
    // First, before anything of the customer is read: the age needs only the event, and a backfill
    // refuses every one of its events here, so history costs no profile, instance or entry-row reads.
    if (trigger.kind === 'event' && trigger.ts !== undefined && isStaleEntryEvent(j, trigger.ts, this.now)) return { entered: false, reason: 'STALE_EVENT' };
    await this.loadCustomers([customerId]);
    const c = this.customers.get(customerId);
    if (!c) return { entered: false, reason: 'PROFILE_GONE' };
    await this.loadActive([customerId]);
    await this.loadEntryRows(j.name, [customerId]);
    const rows = this.entryRows.get(`${j.name}\u0000${customerId}`) as EntryRow[];
    if (trigger.key !== undefined) {
      const dup = rows.find((r) => r.entryKey === trigger.key);
      if (dup) return { entered: false, reason: 'DUPLICATE', instanceId: dup.id };
    }
    const active = rows.filter((r) => r.status === 'active');
    const re = j.reEntry;
    if (re.type === 'never' && rows.length > 0) return { entered: false, reason: 'RE_ENTRY_NEVER' };
    if (re.type === 'after_exit' && active.length > 0) return { entered: false, reason: 'ALREADY_ACTIVE' };
    if (active.length >= j.maxConcurrent) return { entered: false, reason: 'MAX_CONCURRENT' };
    if (re.type !== 'never' && re.cooldownMs > 0) {
      const last = re.type === 'after_exit' ? Math.max(0, ...rows.map((r) => r.endedAt ?? 0)) : Math.max(0, ...rows.map((r) => r.enteredAt));
      if (rows.length > 0 && last + re.cooldownMs > this.now) return { entered: false, reason: 'COOLDOWN' };
    }
    if (j.entryCondition && !j.entryCondition.evaluate(this.input(c, trigger.event))) return { entered: false, reason: 'CONDITION' };
    const inst: Instance = {
      customerId,
      id: orderedId(this.now),
      journey: j.name,
      status: 'active',
      step: j.first,
      waitKind: null,
      dueAt: null,
      pos: trigger.pos ?? posOf(this.now, ''),
      visits: {},
      variants: {},
      context: trigger.event === undefined ? { trigger: trigger.kind } : { trigger: trigger.kind, event: trigger.event },
      entryKey: trigger.key ?? null,
      enteredAt: this.now,
      updatedAt: this.now,
      endedAt: null,
      exitReason: null,
    };
    rows.push({ id: inst.id, status: 'active', enteredAt: this.now, endedAt: null, entryKey: inst.entryKey });
    (this.active.get(customerId) as Instance[]).push(inst);
    this.touch(inst);
    this.record(inst, null, 'enter', { trigger: trigger.kind, ...(trigger.key !== undefined ? { key: trigger.key } : {}) });
    this.hooks.enter({ instance: inst });
    await this.run(inst);
    return { entered: true, instanceId: inst.id };
  }

  // -------------------------------------------------------------------------------------------
  // Events and timers

  /**
   * Applies one committed event to the customer's active instances (exit events, exit conditions,
   * wait_for_event), then enters the journeys it triggers. Call loadCustomers and loadActive first.
   * For a customer left unloaded (the engine loads no one for entry events too old to enter) only
   * those refusals are reported (the refuse hook), without reading anything.
   */
  async onEvent(e: TriggerEvent): Promise<void> {
    const c = this.customers.get(e.customerId);
    if (c === null) return;
    const ev: ConditionEvent = { type: e.type, name: e.name, properties: e.properties ?? null, timestamp: e.ts };
    if (c !== undefined) await this.applyToInstances(e, ev, c);
    if (e.type !== 'track' || e.name === null) return;
    for (const j of this.journeys.entriesByEvent.get(e.name) ?? []) {
      if (c === undefined && !isStaleEntryEvent(j, e.ts, this.now)) continue;
      await this.enter(e.customerId, j, { kind: 'event', key: `e:${e.id}`, event: ev, pos: e.pos, ts: e.ts });
    }
  }

  /** Exit events, exit conditions and event waits of the customer's active instances. */
  private async applyToInstances(e: TriggerEvent, ev: ConditionEvent, c: CustomerState): Promise<void> {
    for (const inst of [...(this.active.get(e.customerId) ?? [])]) {
      if (inst.status !== 'active') continue;
      if (this.replay && e.pos <= inst.pos) continue;
      const j = this.journeys.byName.get(inst.journey);
      if (!j) continue;
      if (e.type === 'track' && e.name !== null) {
        const hit = j.exits.find((x) => x.type === 'event' && x.event === e.name && (x.condition === undefined || x.condition.evaluate(this.input(c, ev))));
        if (hit) {
          this.end(inst, 'exited', `exit:${hit.name}`, { event: e.name, eventId: e.id });
          continue;
        }
      }
      if (this.checkExitConditions(inst, j, c)) continue;
      if (inst.waitKind === 'event' && e.type === 'track' && inst.step !== null) {
        const s = j.steps.get(inst.step);
        if (s && s.step.type === 'wait_for_event' && s.step.event === e.name && (s.condition === undefined || s.condition.evaluate(this.input(c, ev)))) {
          this.record(inst, s.id, 'event', { event: e.name, eventId: e.id });
          inst.step = s.next;
          inst.waitKind = null;
          inst.dueAt = null;
          this.touch(inst);
          await this.run(inst);
        }
      }
    }
  }

  /** Fires an instance's timer (it was claimed as due): resume after a wait, time out an event wait, or continue after a yield. */
  async fire(inst: Instance): Promise<void> {
    if (inst.status !== 'active') return;
    const j = this.journeys.byName.get(inst.journey);
    const s = inst.step === null ? undefined : j?.steps.get(inst.step);
    const kind = inst.waitKind;
    inst.waitKind = null;
    inst.dueAt = null;
    this.touch(inst);
    if (!j || (!s && kind !== 'continue')) {
      this.end(inst, 'exited', j ? 'STEP_REMOVED' : 'JOURNEY_REMOVED');
      return;
    }
    if (s && kind === 'wait') {
      this.record(inst, s.id, 'resume');
      inst.step = s.next;
    } else if (s && kind === 'event') {
      this.record(inst, s.id, 'timeout');
      inst.step = s.step.type === 'wait_for_event' ? s.step.on_timeout ?? s.following : s.next;
    }
    await this.run(inst);
  }

  // -------------------------------------------------------------------------------------------
  // Steps

  /** Runs steps back to back until the instance waits, ends, or hits the loop guard. */
  async run(inst: Instance): Promise<void> {
    const j = this.journeys.byName.get(inst.journey);
    if (!j) {
      this.end(inst, 'exited', 'JOURNEY_REMOVED');
      return;
    }
    await this.loadCustomers([inst.customerId]);
    const c = this.customers.get(inst.customerId);
    if (!c) {
      this.end(inst, 'exited', 'PROFILE_GONE');
      return;
    }
    for (let n = 0; ; n++) {
      if (inst.status !== 'active') return;
      if (inst.step === null) {
        this.end(inst, 'completed', null);
        return;
      }
      if (this.checkExitConditions(inst, j, c)) return;
      if (n >= this.opts.maxStepsPerRun) {
        // The loop guard: a path without waits that keeps going yields to the timer worker.
        inst.waitKind = 'continue';
        inst.dueAt = this.now;
        this.touch(inst);
        this.record(inst, inst.step, 'yield', { steps: n });
        return;
      }
      const s = j.steps.get(inst.step);
      if (!s) {
        this.end(inst, 'exited', 'STEP_REMOVED', { step: inst.step });
        return;
      }
      const visit = (inst.visits[s.id] ?? 0) + 1;
      if (visit > this.opts.maxVisitsPerStep) {
        this.end(inst, 'exited', 'LOOP_LIMIT', { step: s.id, visits: visit - 1 });
        return;
      }
      inst.visits[s.id] = visit;
      this.touch(inst);
      this.steps++;
      this.hooks.step({ instance: inst, step: s });
      await this.runStep(inst, j, s, c, visit);
      if (inst.waitKind !== null) return;
    }
  }

  /** Runs one step; moves inst.step on, or leaves the instance waiting or ended. */
  private async runStep(inst: Instance, j: ResolvedJourney, s: ResolvedStep, c: CustomerState, visit: number): Promise<void> {
    const step = s.step;
    const key = visit === 1 ? `j:${inst.id}:${s.id}` : `j:${inst.id}:${s.id}:${visit}`;
    switch (step.type) {
      case 'wait': {
        inst.waitKind = 'wait';
        inst.dueAt = this.now + (s.durationMs ?? 0);
        this.record(inst, s.id, 'wait', { until: new Date(inst.dueAt).toISOString() });
        return;
      }
      case 'wait_until': {
        const zone = customerZone(c.row.traits.timezone?.v, this.ws.model.timezone);
        inst.waitKind = 'wait';
        inst.dueAt = nextLocalTime(zone, this.now, step.time, step.days);
        this.record(inst, s.id, 'wait', { until: new Date(inst.dueAt).toISOString(), zone });
        return;
      }
      case 'wait_for_event': {
        inst.waitKind = 'event';
        inst.dueAt = this.now + (s.timeoutMs ?? 0);
        const here = posOf(this.now, '');
        if (here > inst.pos) inst.pos = here;
        this.record(inst, s.id, 'wait', { event: step.event, until: new Date(inst.dueAt).toISOString() });
        return;
      }
      case 'branch': {
        for (const b of s.branches ?? []) {
          if (b.condition?.evaluate(this.input(c, inst.context.event)) === true) {
            this.record(inst, s.id, 'branch', { taken: b.name, next: b.next });
            inst.step = b.next;
            return;
          }
        }
        this.record(inst, s.id, 'branch', { taken: 'otherwise', next: s.next });
        inst.step = s.next;
        return;
      }
      case 'split': {
        const u = splitHash(inst.customerId, j.name, s.id);
        const holdout = (step.holdout ?? 0) / 100;
        if (u < holdout) {
          inst.variants[s.id] = 'holdout';
          this.end(inst, 'exited', 'HOLDOUT', { step: s.id });
          return;
        }
        const total = step.variants.reduce((a, v) => a + v.weight, 0);
        let x = ((u - holdout) / (1 - holdout)) * total;
        let chosen = step.variants[step.variants.length - 1] as (typeof step.variants)[number];
        for (const v of step.variants) {
          if (x < v.weight) {
            chosen = v;
            break;
          }
          x -= v.weight;
        }
        inst.variants[s.id] = chosen.name;
        this.record(inst, s.id, 'split', { variant: chosen.name, next: chosen.next });
        inst.step = chosen.next;
        return;
      }
      case 'send': {
        const outcome = await this.send(inst, j, s, c, key);
        this.record(inst, s.id, 'send', { key, ...outcome });
        inst.step = s.next;
        return;
      }
      case 'update_trait': {
        // In memory now (later steps of this unit read it), written through the profile path at save().
        applyTrait(c.row.traits, step.trait, { v: step.value, ts: this.now, src: `journey:${j.name}` });
        c.input = undefined;
        this.profileEvents.push({
          source: `journey:${j.name}`,
          messageId: key,
          type: 'identify',
          name: null,
          ts: this.now,
          receivedAt: this.now,
          identities: [],
          customerId: inst.customerId,
          traits: { [step.trait]: step.value },
          payload: JSON.stringify({ type: 'identify', messageId: key, traits: { [step.trait]: step.value }, context: { journey: { name: j.name, instanceId: inst.id, step: s.id } }, timestamp: new Date(this.now).toISOString() }),
        });
        this.record(inst, s.id, 'trait', { trait: step.trait, value: step.value });
        inst.step = s.next;
        return;
      }
      case 'move_stage': {
        const moved = await this.moveStage(inst.customerId, step.stage);
        if (moved.lifecycle === primaryLifecycle(this.ws.model)) c.stage = step.stage;
        c.input = undefined;
        this.record(inst, s.id, 'stage', moved.from === step.stage ? { stage: step.stage, unchanged: true } : { from: moved.from, to: step.stage });
        inst.step = s.next;
        return;
      }
      case 'webhook': {
        // Rendered now, like an inline message: the profile as this step sees it (trait writes of
        // earlier steps included) and the entry event. The sender (webhooks.ts) calls it after commit.
        const call = this.renderWebhook(inst, j, s, c, key);
        await this.trx
          .insertInto('journey_webhooks')
          .values({
            workspace_id: this.ws.id,
            key,
            customer_id: inst.customerId,
            instance_id: inst.id,
            journey: j.name,
            step: s.id,
            url: call.url,
            method: step.method ?? 'POST',
            headers: JSON.stringify(call.headers),
            body: call.body,
            status: call.error === undefined ? 'pending' : 'failed',
            created_at: this.now,
            attempts: 0,
            next_at: call.error === undefined ? this.now : null,
            last_error: call.error ?? null,
            response_status: null,
            sent_at: null,
          })
          .onConflict((oc) => oc.columns(['workspace_id', 'key']).doNothing())
          .execute();
        this.record(inst, s.id, 'webhook', call.error === undefined ? { key, url: call.url } : { key, url: step.url, error: call.error });
        inst.step = s.next;
        return;
      }
      case 'exit': {
        this.end(inst, 'exited', step.reason ?? 'EXIT_STEP', { step: s.id });
        return;
      }
      default:
        assertUnreachable(step);
    }
  }

  private async send(inst: Instance, j: ResolvedJourney, s: ResolvedStep, c: CustomerState, key: string): Promise<Record<string, unknown>> {
    const step = s.step;
    if (step.type !== 'send') return {};
    const offer = step.offer !== undefined ? this.ws.model.offers.find((o) => o.name === step.offer) : undefined;
    const channels = step.channel !== undefined ? [step.channel] : offer?.channels ?? [];
    const req: MessageRequest = {
      key,
      workspaceId: this.ws.id,
      customerId: inst.customerId,
      channels,
      messageClass: offer?.messageClass ?? step.message?.message_class ?? 'marketing',
      priority: offer?.priority ?? 0,
      journey: { name: j.name, instanceId: inst.id, step: s.id },
      requestedAt: this.now,
    };
    const category = offer?.category ?? step.message?.category;
    if (category !== undefined) req.category = category;
    if (offer) req.offer = offer.name;
    if (!this.enqueue) return { outcome: 'drop', reason: 'CHANNEL_UNAVAILABLE', detail: 'no delivery is configured in this process' };
    const inline = step.message;
    const model = this.ws.model;
    // An inline message renders its own content (an offer's is rendered by delivery's default renderer).
    const content = inline
      ? (_r: MessageRequest, channel: string): Record<string, unknown> => {
          const type = model.channels.get(channel);
          const key = inline.content[channel] ? channel : type !== undefined && inline.content[type] ? type : undefined;
          if (key === undefined) return {};
          const block = compileContentBlock(key, inline.content[key] as NonNullable<(typeof inline.content)[string]>, `journeys[${j.index}].steps[${s.index}].message.content.${key}`);
          // The same variables decide and delivery render offers with (traits, computed, segments, stage).
          const vars: TemplateVars = contentVars(model, c.row.id, this.input(c, inst.context.event), this.now);
          if (inst.context.event) vars.event = { ...inst.context.event };
          return block.render(vars, c.segments);
        }
      : undefined;
    const [outcome] = await this.enqueue(this.trx, this.store, this.ws, { id: inst.customerId, row: c.row }, [req], this.now, content);
    return outcome ? { ...outcome } : { outcome: 'drop', reason: 'CHANNEL_UNAVAILABLE', detail: 'delivery returned no outcome' };
  }

  /**
   * A webhook step's url, headers and body rendered with Liquid (`profile`, `event`, `timezone`,
   * `locale`). A template that fails to render, or a header value with a line break, gives an
   * `error` (RENDER_FAILED: …): the call is recorded as failed and the journey goes on.
   */
  private renderWebhook(inst: Instance, j: ResolvedJourney, s: ResolvedStep, c: CustomerState, key: string): { url: string; headers: Record<string, string>; body: string; error?: string } {
    const step = s.step;
    if (step.type !== 'webhook') throw new Error(`renderWebhook called for a ${step.type} step`);
    const defaultBody = JSON.stringify({ profileId: inst.customerId, journey: j.name, instanceId: inst.id, step: s.id, key });
    const vars: TemplateVars = { profile: { id: c.row.id, traits: traitValues(c.row.traits) }, timezone: this.ws.model.timezone, locale: this.ws.model.locale, now: this.now };
    if (inst.context.event) vars.event = { ...inst.context.event };
    const at = `journeys[${j.index}].steps[${s.index}]`;
    try {
      const url = renderTemplate(step.url, vars).trim();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(step.headers ?? {})) {
        const v = renderTemplate(value, vars);
        if (/[\r\n\0]/.test(v)) throw new Error(`${at}.headers.${name} rendered to a value with a line break`);
        headers[name] = v;
      }
      const body = step.body === undefined ? defaultBody : renderTemplate(step.body, vars);
      return { url, headers, body };
    } catch (err) {
      return { url: step.url, headers: step.headers ?? {}, body: step.body ?? defaultBody, error: `RENDER_FAILED: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  /** Writes the customer's stage (and a stage_history row) the way profiles/stages.ts writeStageDiff does. */
  private async moveStage(customerId: string, stage: string): Promise<{ lifecycle: string; from: string | null }> {
    const lifecycle = this.ws.model.stages.find((s) => s.name === stage)?.lifecycle ?? '';
    const cur = await this.trx.selectFrom('customer_stage').select('stage').where('workspace_id', '=', this.ws.id).where('customer_id', '=', customerId).where('lifecycle', '=', lifecycle).executeTakeFirst();
    const from = cur?.stage ?? null;
    if (from === stage) return { lifecycle, from };
    await this.trx.deleteFrom('customer_stage').where('workspace_id', '=', this.ws.id).where('customer_id', '=', customerId).where('lifecycle', '=', lifecycle).execute();
    await this.trx.insertInto('customer_stage').values({ workspace_id: this.ws.id, customer_id: customerId, lifecycle, stage, entered_at: this.now }).execute();
    await this.trx.insertInto('stage_history').values({ workspace_id: this.ws.id, customer_id: customerId, id: uuidv7(this.now), lifecycle, from_stage: from, to_stage: stage, at: this.now }).execute();
    return { lifecycle, from };
  }

  // -------------------------------------------------------------------------------------------
  // Saving

  /** Writes everything the unit changed, in its transaction. */
  async save(): Promise<void> {
    if (this.profileEvents.length > 0) await applyProfileEvents(this.trx, this.store, this.ws.id, this.ws.model, this.profileEvents, this.now);
    const rows = [...this.dirty].map((i) => [
      this.ws.id,
      i.customerId,
      i.id,
      i.journey,
      i.status,
      i.step,
      i.waitKind,
      i.dueAt,
      i.pos,
      JSON.stringify(i.visits),
      JSON.stringify(i.variants),
      JSON.stringify(i.context),
      i.entryKey,
      i.enteredAt,
      i.updatedAt,
      i.endedAt,
      i.exitReason,
    ]);
    await insertRows(
      this.trx,
      this.store.dialect,
      'journey_instances',
      ['workspace_id', 'customer_id', 'id', 'journey', 'status', 'step', 'wait_kind', 'due_at', 'pos', 'visits', 'variants', 'context', 'entry_key', 'entered_at', 'updated_at', 'ended_at', 'exit_reason'],
      rows,
      {
        suffix:
          'on conflict ("workspace_id", "customer_id", "id") do update set "status" = excluded."status", "step" = excluded."step", "wait_kind" = excluded."wait_kind", "due_at" = excluded."due_at", "pos" = excluded."pos", "visits" = excluded."visits", "variants" = excluded."variants", "updated_at" = excluded."updated_at", "ended_at" = excluded."ended_at", "exit_reason" = excluded."exit_reason"',
      },
    );
    await insertRows(this.trx, this.store.dialect, 'journey_history', ['workspace_id', 'customer_id', 'id', 'instance_id', 'journey', 'step', 'kind', 'detail', 'at'], this.history);
    this.dirty.clear();
    this.history.length = 0;
    this.profileEvents.length = 0;
  }
}
