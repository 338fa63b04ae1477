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

/** Latest entry per (purpose, channel) by when it happened; ties by when it was recorded, then id. */
export function currentConsent(entries: readonly ConsentEntry[]): ConsentState[] {
  const latest = new Map<string, ConsentEntry>();
  for (const e of entries) {
    const k = `${e.purpose}\u0000${e.channel}`;
    const cur = latest.get(k);
    if (!cur || e.occurredAt > cur.occurredAt || (e.occurredAt === cur.occurredAt && (e.recordedAt > cur.recordedAt || (e.recordedAt === cur.recordedAt && e.id > cur.id)))) latest.set(k, e);
  }
  return [...latest.values()]
    .sort((a, b) => a.purpose.localeCompare(b.purpose) || a.channel.localeCompare(b.channel))
    .map((e) => ({ purpose: e.purpose, channel: e.channel, status: e.status, source: e.source, occurredAt: new Date(e.occurredAt).toISOString(), wordingVersion: e.wordingVersion }));
}

/** Whether the customer may be contacted for a purpose on a channel (channel entry beats '*'). */
export function hasConsent(state: readonly ConsentState[], purpose: string, channel: string, defaultStatus: 'granted' | 'denied' = 'denied'): boolean {
  const exact = state.find((s) => s.purpose === purpose && s.channel === channel);
  const any = state.find((s) => s.purpose === purpose && s.channel === '*');
  const pick = exact && any ? (Date.parse(exact.occurredAt) >= Date.parse(any.occurredAt) ? exact : any) : exact ?? any;
  return pick ? pick.status === 'granted' : defaultStatus === 'granted';
}
