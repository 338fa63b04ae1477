import { DAY, HOUR } from '../core/index.js';
import { zoneOffset } from '../conditions/index.js';
import type { ResolvedOffer, ResolvedOfferCap } from '../blueprint/index.js';

/**
 * Offer caps: how many times an offer was decided, viewed or clicked, per customer or in total, per
 * placement or across placements, within a window.
 *
 * - Per profile, counts come from what is stored for the customer: the decision log for
 *   `decision`, the customer's `Offer Viewed` / `Offer Clicked` track events for `impression` /
 *   `click`. Windows are exact (rolling: the last LENGTH before now; calendar: since the start of
 *   the day/week/month in the customer's time zone).
 * - In total, counts come from the `offer_counters` table, one row per (offer, placement or '*',
 *   what is counted, series, bucket). Rolling windows sum hour buckets (windows under a day) or
 *   day buckets (UTC) whose start is inside the window, so the oldest bucket may be counted whole:
 *   a total cap may close up to one bucket early, never late. Calendar windows read the bucket of
 *   the current period in the workspace time zone; no window reads bucket 0.
 */

export const OFFER_VIEWED = 'Offer Viewed';
export const OFFER_CLICKED = 'Offer Clicked';
export const EXPOSURE_EVENTS: Readonly<Record<string, 'impression' | 'click'>> = { [OFFER_VIEWED]: 'impression', [OFFER_CLICKED]: 'click' };

/** Placement key of an 'across' cap. */
export const ACROSS = '*';

/** Start (epoch ms) of the calendar period holding `now` in `zone` (weeks start on Monday). */
export function periodStart(now: number, zone: string, period: 'day' | 'week' | 'month'): number {
  const offset = zoneOffset(zone, now);
  const local = new Date(now + offset);
  let y = local.getUTCFullYear();
  let m = local.getUTCMonth();
  let d = local.getUTCDate();
  if (period === 'week') {
    const dow = (local.getUTCDay() + 6) % 7; // Monday = 0
    const start = new Date(Date.UTC(y, m, d) - dow * DAY);
    y = start.getUTCFullYear();
    m = start.getUTCMonth();
    d = start.getUTCDate();
  } else if (period === 'month') d = 1;
  const wall = Date.UTC(y, m, d);
  // The offset at local midnight may differ from now's on a DST change day.
  return wall - zoneOffset(zone, wall - offset);
}

/** The earliest time a per-profile cap looks back to; -Infinity when it never resets. */
export function profileSince(cap: ResolvedOfferCap, now: number, zone: string): number {
  const w = cap.window;
  if (w === undefined) return -Infinity;
  return w.type === 'rolling' ? now - w.ms : periodStart(now, zone, w.period);
}

/** The counter series a total cap reads and writes, and the bucket range it sums. */
export function totalSeries(cap: ResolvedOfferCap, now: number, zone: string): { series: string; bucket: number; from: number } {
  const w = cap.window;
  if (w === undefined) return { series: 'all', bucket: 0, from: 0 };
  if (w.type === 'calendar') {
    const b = periodStart(now, zone, w.period);
    return { series: `cal:${w.period}`, bucket: b, from: b };
  }
  const width = w.ms >= DAY ? DAY : HOUR;
  return { series: width === DAY ? 'day' : 'hour', bucket: Math.floor(now / width) * width, from: Math.floor((now - w.ms) / width) * width };
}

/** One counted use of an offer by a customer. */
export interface ProfileUse {
  offer: string;
  placement: string;
  kind: 'decision' | 'impression' | 'click';
  at: number;
}

/**
 * Counts caps read, plus what decisions earlier in the same group commit added, so a decision sees
 * every decision committed before it and every one ahead of it in its batch (read-your-writes).
 */
export class CapCounts {
  /** customer id → uses within the longest window any candidate cap reads. */
  readonly profile = new Map<string, ProfileUse[]>();
  /** `offer\0placement\0kind\0series` → bucket → count. */
  readonly totals = new Map<string, Map<number, number>>();

  static totalKey(offer: string, placement: string, kind: string, series: string): string {
    return `${offer}\u0000${placement}\u0000${kind}\u0000${series}`;
  }

  addTotal(offer: string, placement: string, kind: string, series: string, bucket: number, n: number): void {
    const k = CapCounts.totalKey(offer, placement, kind, series);
    let m = this.totals.get(k);
    if (!m) this.totals.set(k, (m = new Map()));
    m.set(bucket, (m.get(bucket) ?? 0) + n);
  }

  addUse(customerId: string, use: ProfileUse): void {
    let list = this.profile.get(customerId);
    if (!list) this.profile.set(customerId, (list = []));
    list.push(use);
  }

  /** The count a cap compares with its limit, for `offer` shown in `placement`. */
  count(offer: ResolvedOffer, cap: ResolvedOfferCap, placement: string, customerId: string | null, now: number, customerZone: string, workspaceZone: string): number {
    const pkey = cap.placements === 'each' ? placement : ACROSS;
    if (cap.per === 'profile') {
      if (customerId === null) return 0;
      const since = profileSince(cap, now, customerZone);
      let n = 0;
      for (const u of this.profile.get(customerId) ?? []) {
        if (u.offer === offer.name && u.kind === cap.count && u.at >= since && u.at <= now && (pkey === ACROSS || u.placement === pkey)) n++;
      }
      return n;
    }
    const s = totalSeries(cap, now, workspaceZone);
    const m = this.totals.get(CapCounts.totalKey(offer.name, pkey, cap.count, s.series));
    if (!m) return 0;
    let n = 0;
    for (const [b, c] of m) if (b >= s.from && b <= s.bucket) n += c;
    return n;
  }

  /** Records a decision that returned `offer` in `placement`: per-profile use and total counters. */
  recordDecision(offer: ResolvedOffer, placement: string, customerId: string | null, now: number, workspaceZone: string): void {
    if (customerId !== null) this.addUse(customerId, { offer: offer.name, placement, kind: 'decision', at: now });
    for (const t of totalIncrements(offer, 'decision', placement, now, workspaceZone)) this.addTotal(offer.name, t.placement, 'decision', t.series, t.bucket, 1);
  }
}

/**
 * The counter rows one counted use of an offer increments: one per distinct (placement key, series)
 * among the offer's total caps of that kind.
 */
export function totalIncrements(offer: ResolvedOffer, kind: ResolvedOfferCap['count'], placement: string, at: number, workspaceZone: string): { placement: string; series: string; bucket: number }[] {
  const out: { placement: string; series: string; bucket: number }[] = [];
  for (const cap of offer.caps) {
    if (cap.per !== 'total' || cap.count !== kind) continue;
    const pkey = cap.placements === 'each' ? placement : ACROSS;
    const s = totalSeries(cap, at, workspaceZone);
    if (!out.some((o) => o.placement === pkey && o.series === s.series)) out.push({ placement: pkey, series: s.series, bucket: s.bucket });
  }
  return out;
}

/**
 * The per-profile decision uses (`offer_uses` rows) of recently decided customers, so a group
 * commit does not read back what this process wrote a moment ago.
 *
 * An entry holds every use of one customer at or after its `since`, as committed. It stays
 * complete because `offer_uses` is written only by DecisionService.commit, which adds each use it
 * writes to the entry (`add`), and by profile merges, which move a merged profile's uses (seen
 * through the merge epoch), and because the cache is trusted only between transactions that
 * prove nobody else wrote (`begin`/`end`):
 * - `begin(stamp, merges)` runs inside every decision transaction (holding the write lock) with the
 *   store's foreign-write stamp and merge epoch. Unless the previous transaction ended cleanly and
 *   both are the ones it saw, another connection or process committed in between, a profile merge
 *   moved uses (merge.ts), or a transaction failed after adding uses, and everything is dropped. An undefined stamp (PostgreSQL, where processes share the
 *   data) disables the cache.
 * - `end(token)` after the COMMIT marks the cache clean again, unless another transaction on the
 *   same store began meanwhile (its own `end` decides then).
 * Services deciding on one store share its cache (`ProfileUseCache.of`), since they write through
 * one connection that the stamp cannot tell apart.
 */
export class ProfileUseCache {
  private static readonly byStore = new WeakMap<object, ProfileUseCache>();

  /** The cache of a store (one per store object: its connection is what the stamp is relative to). */
  static of(store: object): ProfileUseCache {
    let c = ProfileUseCache.byStore.get(store);
    if (!c) ProfileUseCache.byStore.set(store, (c = new ProfileUseCache()));
    return c;
  }

  private readonly entries = new Map<string, { since: number; uses: ProfileUse[] }>();
  private stamp: number | undefined;
  private merges = 0;
  private clean = false;
  private generation = 0;

  constructor(
    private readonly maxCustomers = 50_000,
    /** An entry with more uses than this is dropped instead of grown (read again when needed). */
    private readonly maxUses = 512,
  ) {}

  /**
   * Starts a decision transaction; returns a token for `end`, or undefined when the cache must not
   * be used. `merges` is the store's merge epoch (profiles' mergeEpoch): a merge moves the merged
   * profile's uses to the survivor through this very connection, which the stamp does not see.
   */
  begin(stamp: number | undefined, merges = 0): number | undefined {
    this.generation++;
    if (stamp === undefined || !this.clean || stamp !== this.stamp || merges !== this.merges) this.entries.clear();
    this.clean = false;
    this.stamp = stamp;
    this.merges = merges;
    return stamp === undefined ? undefined : this.generation;
  }

  /** The transaction of `token` committed. */
  end(token: number | undefined): void {
    if (token !== undefined && token === this.generation) this.clean = true;
  }

  static key(workspaceId: string, customerId: string): string {
    return `${workspaceId}\u0000${customerId}`;
  }

  /** The customer's uses at or after `since`, or undefined when the entry is missing or does not reach back that far. */
  get(key: string, since: number): readonly ProfileUse[] | undefined {
    const e = this.entries.get(key);
    return e && e.since <= since ? e.uses : undefined;
  }

  /** Stores what a query read: every use of the customer at or after `since`. */
  set(key: string, since: number, uses: ProfileUse[]): void {
    if (uses.length > this.maxUses) return;
    if (this.entries.size >= this.maxCustomers) this.entries.clear();
    this.entries.set(key, { since, uses });
  }

  /** A use being written in the current transaction (entries that exist stay complete). */
  add(key: string, use: ProfileUse): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.uses.length >= this.maxUses) this.entries.delete(key);
    else e.uses.push(use);
  }
}
