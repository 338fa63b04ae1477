/** Consent: an append-only ledger per customer; the current state is derived, never stored. */
export type ConsentStatus = 'granted' | 'denied' | 'withdrawn';

export interface ConsentInput {
  purpose: string;
  /** A channel (email, sms, push, …) or '*' for every channel of the purpose. */
  channel: string;
  status: ConsentStatus;
  /** Version of the wording the customer saw, for proof. */
  wordingVersion: string | null;
}

export interface ConsentEntry extends ConsentInput {
  id: string;
  source: string;
  occurredAt: number;
  recordedAt: number;
  messageId: string | null;
}

export interface ConsentState {
  purpose: string;
  channel: string;
  status: ConsentStatus;
  source: string;
  occurredAt: string;
  wordingVersion: string | null;
}

/** Protection order for decisions made at the same moment: a withdrawal outranks a denial, which outranks a grant. */
const PROTECTIVE: Record<ConsentStatus, number> = { granted: 0, denied: 1, withdrawn: 2 };

/**
 * True when `b` replaces `a` as the current decision. Later event time wins. At equal event times
 * the more protective status wins, then a total order on content (wording version, source), so
 * the derived state never depends on arrival order; recording time and id only separate entries
 * whose derived state is identical anyway.
 */
function supersedes(b: ConsentEntry, a: ConsentEntry): boolean {
  if (b.occurredAt !== a.occurredAt) return b.occurredAt > a.occurredAt;
  if (b.status !== a.status) return PROTECTIVE[b.status] > PROTECTIVE[a.status];
  const bw = b.wordingVersion === null ? '' : `v${b.wordingVersion}`;
  const aw = a.wordingVersion === null ? '' : `v${a.wordingVersion}`;
  if (bw !== aw) return bw > aw;
  if (b.source !== a.source) return b.source > a.source;
  return b.recordedAt > a.recordedAt || (b.recordedAt === a.recordedAt && b.id > a.id);
}

/** Latest entry per (purpose, channel) by when it happened; see `supersedes` for ties. */
export function currentConsent(entries: readonly ConsentEntry[]): ConsentState[] {
  // One entry is its own latest (the common case a recompute meets for every consenting customer).
  if (entries.length === 1) return [stateOf(entries[0] as ConsentEntry)];
  const latest = new Map<string, ConsentEntry>();
  for (const e of entries) {
    const k = `${e.purpose}\u0000${e.channel}`;
    const cur = latest.get(k);
    if (!cur || supersedes(e, cur)) latest.set(k, e);
  }
  return [...latest.values()]
    .sort((a, b) => a.purpose.localeCompare(b.purpose) || a.channel.localeCompare(b.channel))
    .map(stateOf);
}

function stateOf(e: ConsentEntry): ConsentState {
  return { purpose: e.purpose, channel: e.channel, status: e.status, source: e.source, occurredAt: new Date(e.occurredAt).toISOString(), wordingVersion: e.wordingVersion };
}

/** Whether the customer may be contacted for a purpose on a channel (channel entry beats '*'). */
export function hasConsent(state: readonly ConsentState[], purpose: string, channel: string, defaultStatus: 'granted' | 'denied' = 'denied'): boolean {
  const exact = state.find((s) => s.purpose === purpose && s.channel === channel);
  const any = state.find((s) => s.purpose === purpose && s.channel === '*');
  const pick = exact && any ? (Date.parse(exact.occurredAt) >= Date.parse(any.occurredAt) ? exact : any) : exact ?? any;
  return pick ? pick.status === 'granted' : defaultStatus === 'granted';
}
