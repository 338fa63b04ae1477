import { uuidv7 } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { identityKey, type Identity } from './identity.js';
import { applyTrait, mergeTraits, type Traits } from './traits.js';
import { applyEvent, mergeStates, type ComputedState } from './computed.js';
import type { ConsentInput } from './consent.js';

/**
 * An event as the profile engine takes it: already validated and normalized by ingest, identities
 * extracted in precedence order.
 */
export interface ProfileEvent {
  source: string;
  messageId: string;
  type: 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias';
  /** Track event name, page/screen name. */
  name: string | null;
  /** Event time, ms. */
  ts: number;
  receivedAt: number;
  identities: Identity[];
  /** alias: the previous id, looked up as user_id then anonymous_id. */
  previousId?: string;
  /** Apply to this profile directly (API writes on a known customer), skipping resolution. */
  customerId?: string;
  traits?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  consent?: ConsentInput[];
  /** The normalized message as JSON text, stored on the timeline. */
  payload: string;
}

export interface ProfileRow {
  id: string;
  createdAt: number;
  updatedAt: number;
  mergedInto: string | null;
  traits: Traits;
  computed: Record<string, ComputedState>;
  firstSeen: number;
  lastSeen: number;
  /** identityKey(kind, value) of every identity this profile holds. */
  identities: Set<string>;
}

/** A `customers` row as stored (JSON text columns; bigints may come back as strings on PostgreSQL). */
export type CustomerRecord = { id: string; created_at: number | string; updated_at: number | string; merged_into: string | null; traits: string; computed: string; first_seen: number | string; last_seen: number | string };

/** A stored row as the profile engine holds it (identities are loaded separately). */
export function profileRowOf(r: CustomerRecord): ProfileRow {
  return {
    id: r.id,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    mergedInto: r.merged_into,
    traits: JSON.parse(r.traits) as Traits,
    computed: JSON.parse(r.computed) as Record<string, ComputedState>,
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    identities: new Set(),
  };
}

export interface IdentityLogRow {
  id: string;
  outcome: 'merged' | 'refused_limit' | 'refused_unauthenticated' | 'refused_conflict';
  customerId: string;
  otherId: string | null;
  detail: string;
  messageId: string | null;
  at: number;
}

/**
 * What listeners of `ingest:committed` learn about a commit: the stored events with the (final,
 * after merges) id of the profile each one landed on, and the identity log. A plain object, so the
 * same shape comes back from the SQLite writer thread and from the inline writer.
 */
export interface CommittedUnit {
  /** The events as applied, without their stored JSON text (`payload`), which nobody downstream reads. */
  events: { id: string; customer: { id: string }; event: Omit<ProfileEvent, 'payload'> }[];
  log: IdentityLogRow[];
}

export interface PendingEvent {
  customer: ProfileRow;
  id: string;
  event: ProfileEvent;
}

/**
 * One batch of profile work, applied in memory in arrival order and then saved in one transaction
 * by the repository. Holds the identities and profiles the batch touches; nothing else is read.
 *
 * Invariants: an identity belongs to exactly one live (unmerged) profile; a merged profile points
 * at its survivor and keeps its row; no event, consent entry or trait value is dropped by a merge.
 */
export class ProfileUnit {
  /** identityKey -> owning customer id (live profiles only). */
  readonly owners = new Map<string, string>();
  readonly profiles = new Map<string, ProfileRow>();
  readonly dirty = new Set<ProfileRow>();
  readonly newIdentities = new Map<string, { kind: string; value: string; customer: ProfileRow }>();
  /** loser id -> survivor id, in the order the merges happened. */
  readonly merges = new Map<string, string>();
  readonly log: IdentityLogRow[] = [];
  readonly events: PendingEvent[] = [];
  readonly consent: { customer: ProfileRow; id: string; input: ConsentInput; event: ProfileEvent }[] = [];
  /**
   * The stored traits text of loaded profiles whose traits this unit has not changed: saving writes
   * it back instead of serializing the same traits again (most events are not identify calls). The
   * column is only ever written as JSON.stringify of parsed traits, which serializes back to the
   * same text, so the stored bytes are those a fresh JSON.stringify would give.
   */
  readonly storedTraits = new Map<ProfileRow, string>();
  private readonly logged = new Set<string>();

  constructor(
    readonly model: WorkspaceModel,
    readonly now: number,
  ) {}

  /** Registers loaded state (repository); `traitsText` is the stored text `row.traits` was parsed from. */
  addLoaded(row: ProfileRow, identities: readonly { kind: string; value: string }[], traitsText?: string): void {
    this.profiles.set(row.id, row);
    if (traitsText !== undefined) this.storedTraits.set(row, traitsText);
    for (const i of identities) {
      const k = identityKey(i.kind, i.value);
      row.identities.add(k);
      if (row.mergedInto === null) this.owners.set(k, row.id);
    }
  }

  /** Follows merge pointers to the live profile. */
  live(id: string): ProfileRow | undefined {
    let row = this.profiles.get(id);
    for (let hops = 0; row && row.mergedInto !== null && hops < 1000; hops++) row = this.profiles.get(row.mergedInto);
    return row;
  }

  finalId(id: string): string {
    return this.live(id)?.id ?? id;
  }

  /** The committed unit as listeners see it (see CommittedUnit). */
  summary(): CommittedUnit {
    return {
      events: this.events.map((p) => {
        const { payload: _payload, ...event } = p.event;
        return { id: p.id, customer: { id: this.finalId(p.customer.id) }, event };
      }),
      log: this.log,
    };
  }

  /** Identity keys to look up for an event before apply(). */
  static lookupKeys(e: ProfileEvent): Identity[] {
    const keys = [...e.identities];
    if (e.previousId !== undefined) keys.push({ kind: 'user_id', value: e.previousId }, { kind: 'anonymous_id', value: e.previousId });
    return keys;
  }

  apply(e: ProfileEvent): ProfileRow {
    const customer = e.customerId !== undefined ? this.live(e.customerId) ?? this.create(e) : this.resolve(e);
    if (e.ts < customer.firstSeen) customer.firstSeen = e.ts;
    if (e.ts > customer.lastSeen) customer.lastSeen = e.ts;
    if (e.type === 'identify' && e.traits) {
      let changed = false;
      for (const [k, v] of Object.entries(e.traits)) if (applyTrait(customer.traits, k, { v, ts: e.ts, src: e.source })) changed = true;
      if (changed) this.storedTraits.delete(customer);
    }
    applyEvent(this.model.computed, customer.computed, { type: e.type, name: e.name, ts: e.ts, properties: e.properties }, this.now);
    for (const c of e.consent ?? []) this.consent.push({ customer, id: uuidv7(e.receivedAt), input: c, event: e });
    customer.updatedAt = this.now;
    this.dirty.add(customer);
    this.events.push({ customer, id: uuidv7(e.receivedAt), event: e });
    return customer;
  }

  private create(e: ProfileEvent): ProfileRow {
    const row: ProfileRow = { id: uuidv7(this.now), createdAt: this.now, updatedAt: this.now, mergedInto: null, traits: {}, computed: {}, firstSeen: e.ts, lastSeen: e.ts, identities: new Set() };
    this.profiles.set(row.id, row);
    this.dirty.add(row);
    return row;
  }

  private resolve(e: ProfileEvent): ProfileRow {
    // The common case, a returning customer: every key of the event already belongs to one live
    // profile. Nothing can be merged or attached, and no unique key can conflict (the profile holds
    // one value per unique kind, and it holds these), so the general path below would pick that
    // profile and change nothing; it is taken directly, without the general path's allocations.
    if (e.previousId === undefined && e.identities.length > 0) {
      let only: string | undefined;
      for (const k of e.identities) {
        const o = this.owners.get(identityKey(k.kind, k.value));
        if (o === undefined || (only !== undefined && o !== only)) {
          only = undefined;
          break;
        }
        only = o;
      }
      const row = only === undefined ? undefined : this.profiles.get(only);
      if (row && row.mergedInto === null) return row;
    }
    const keys = [...e.identities];
    if (e.previousId !== undefined) {
      const asUser = identityKey('user_id', e.previousId);
      const prevKind = this.owners.has(asUser) ? 'user_id' : 'anonymous_id';
      if (this.model.identity.byName.has(prevKind)) keys.push({ kind: prevKind, value: e.previousId });
    }
    // Owners in precedence order of the keys that point at them.
    const ownerIds: string[] = [];
    for (const k of keys) {
      const o = this.owners.get(identityKey(k.kind, k.value));
      if (o !== undefined && !ownerIds.includes(o)) ownerIds.push(o);
    }
    // The event's own unique keys (user_id …). A profile holding a different value of one is another
    // person (say, a shared device): it can neither receive this event nor be merged with its owner.
    const incoming = new Set(e.identities.filter((k) => this.model.identity.byName.get(k.kind)?.unique === true).map((k) => identityKey(k.kind, k.value)));
    const survivorId = ownerIds.find((id) => this.uniqueConflict((this.profiles.get(id) as ProfileRow).identities, incoming) === undefined);
    const survivor = survivorId !== undefined ? (this.profiles.get(survivorId) as ProfileRow) : this.create(e);
    const authenticated = e.type === 'alias' || keys.some((k) => this.model.identity.byName.get(k.kind)?.authenticated === true);
    for (const otherId of ownerIds) {
      const other = this.profiles.get(otherId) as ProfileRow;
      if (other.mergedInto !== null || other === survivor) continue;
      if (!authenticated && !this.model.identity.mergeOnUnauthenticated) {
        this.note('refused_unauthenticated', survivor, other, e, 'the signal carries no authenticated identity key; set identity.merge_on_unauthenticated to allow');
        continue;
      }
      const conflict = this.uniqueConflict(new Set([...survivor.identities, ...incoming]), other.identities);
      if (conflict) {
        this.note('refused_conflict', survivor, other, e, `both profiles hold a different ${conflict}, which is unique`);
        continue;
      }
      const union = new Set([...survivor.identities, ...other.identities]);
      if (union.size > this.model.identity.maxIdentitiesPerProfile) {
        this.note('refused_limit', survivor, other, e, `the merged profile would hold ${union.size} identities; the limit is ${this.model.identity.maxIdentitiesPerProfile}`);
        continue;
      }
      this.merge(other, survivor, e);
    }
    for (const k of keys) {
      const key = identityKey(k.kind, k.value);
      if (this.owners.has(key)) continue;
      const conflict = this.uniqueConflict(survivor.identities, new Set([key]));
      if (conflict) {
        this.note('refused_conflict', survivor, null, e, `the profile already holds a different ${conflict}; ${k.kind} ${k.value} was not attached`);
        continue;
      }
      if (survivor.identities.size >= this.model.identity.maxIdentitiesPerProfile) {
        this.note('refused_limit', survivor, null, e, `the profile holds ${survivor.identities.size} identities, the limit; ${k.kind} was not attached`);
        continue;
      }
      survivor.identities.add(key);
      this.owners.set(key, survivor.id);
      this.newIdentities.set(key, { kind: k.kind, value: k.value, customer: survivor });
    }
    return survivor;
  }

  /** The first unique identity kind in which the two sets hold different values. */
  private uniqueConflict(a: Set<string>, b: Set<string>): string | undefined {
    for (const key of this.model.identity.keys) {
      if (!key.unique) continue;
      const prefix = `${key.name}\u0000`;
      const av = [...a].find((k) => k.startsWith(prefix));
      const bv = [...b].find((k) => k.startsWith(prefix));
      if (av !== undefined && bv !== undefined && av !== bv) return key.name;
    }
    return undefined;
  }

  private merge(loser: ProfileRow, survivor: ProfileRow, e: ProfileEvent): void {
    const snapshot = { traits: loser.traits, identities: [...loser.identities].map((k) => k.replace('\u0000', ':')), createdAt: loser.createdAt };
    mergeTraits(survivor.traits, loser.traits);
    this.storedTraits.delete(survivor);
    mergeStates(this.model.computed, survivor.computed, loser.computed, this.now);
    survivor.firstSeen = Math.min(survivor.firstSeen, loser.firstSeen);
    survivor.lastSeen = Math.max(survivor.lastSeen, loser.lastSeen);
    for (const k of loser.identities) {
      survivor.identities.add(k);
      this.owners.set(k, survivor.id);
    }
    loser.mergedInto = survivor.id;
    loser.updatedAt = this.now;
    this.dirty.add(loser);
    this.dirty.add(survivor);
    this.merges.set(loser.id, survivor.id);
    this.log.push({ id: uuidv7(this.now), outcome: 'merged', customerId: survivor.id, otherId: loser.id, detail: JSON.stringify(snapshot), messageId: e.messageId, at: this.now });
  }

  private note(outcome: IdentityLogRow['outcome'], customer: ProfileRow, other: ProfileRow | null, e: ProfileEvent, detail: string): void {
    const k = `${outcome}|${customer.id}|${other?.id ?? ''}`;
    if (this.logged.has(k)) return;
    this.logged.add(k);
    this.log.push({ id: uuidv7(this.now), outcome, customerId: customer.id, otherId: other?.id ?? null, detail, messageId: e.messageId, at: this.now });
  }
}
