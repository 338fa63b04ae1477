import { sql } from 'kysely';
import { CairnError, collectIdsAt } from '../core/index.js';
import { customerZone, type EvalInput } from '../conditions/index.js';
import type { ChannelType, MessageClass, WorkspaceModel } from '../blueprint/index.js';
import { buildEvalInput, currentConsent, loadCustomerFacts, traitValues, type ConsentEntry, type ProfileRow } from '../profiles/index.js';
import type { Db, MessagesTable, Trx } from '../store/index.js';
import type { CustomerState, DispatchEntry, LedgerView, SentEntry } from './gate.js';
import type { DeliveryPolicy, ResolvedExcludeItem } from './policy.js';
import type { Address, DeliveryEvent, GateOutcome, MessageRequest, NotSentReason } from './types.js';

/**
 * The message ledger (table `messages`, migration 0007): reading what the gate needs about a
 * customer, and the profile's message log. The ledger is also the outbox: a row with status
 * `queued` and a due_at is what the dispatcher delivers.
 *
 * Statuses: queued (passed the gate, waiting for dispatch) → sending (claimed; due_at is the lease
 * expiry) → sent | failed; deferred (due_at: when to re-gate); not_sent (reason code, final).
 * Caps count queued, sending and sent rows by decided_at; failed and not_sent rows never count.
 */
export type MessageStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'deferred' | 'not_sent';
export const MESSAGE_STATUSES: readonly MessageStatus[] = ['queued', 'sending', 'sent', 'failed', 'deferred', 'not_sent'];
/** Statuses that count towards frequency caps: a dispatch counts, an aborted send does not. */
export const COUNTED_STATUSES: readonly MessageStatus[] = ['queued', 'sending', 'sent'];

type Executor = Db | Trx;

/** The outcome a ledger row stands for, as enqueueMessages returns it for a key seen before. */
export function storedOutcome(r: Pick<MessagesTable, 'id' | 'status' | 'reason' | 'rule' | 'detail' | 'channel' | 'channel_type' | 'due_at'>): GateOutcome {
  const base = { messageId: r.id };
  if (r.status === 'queued' || r.status === 'sending' || r.status === 'sent' || r.status === 'failed') {
    return { outcome: 'send', channel: r.channel as string, channelType: r.channel_type as ChannelType, ...base };
  }
  const reason = (r.reason ?? 'CHANNEL_UNAVAILABLE') as NotSentReason;
  const rule = r.rule !== null ? { rule: r.rule } : {};
  if (r.status === 'deferred') return { outcome: 'defer', until: Number(r.due_at), reason, ...rule, detail: r.detail, ...base };
  return { outcome: 'drop', reason, ...rule, detail: r.detail, ...base };
}


/**
 * What the gate knows about a customer: the profile (the caller's row), segments, stages and the
 * consent ledger in one query, opened() statistics from the ledger, and the items named by the
 * events of exclude_item rules that a request can hit.
 */
export async function loadCustomerState(db: Executor, workspaceId: string, model: WorkspaceModel, policy: DeliveryPolicy, row: ProfileRow, requests: readonly MessageRequest[], now: number): Promise<CustomerState> {
  const { segments, stage, ledger } = await loadCustomerFacts(db, workspaceId, model, row.id);
  // opened(n, m): the customer's last sent messages, newest first.
  const recent = await db.selectFrom('messages').select(['opened_at', 'clicked_at']).where('workspace_id', '=', workspaceId).where('customer_id', '=', row.id).where('status', '=', 'sent').orderBy('sent_at', 'desc').limit(50).execute();
  const input: EvalInput = buildEvalInput(model, row, { now, segments, stage, consent: currentConsent(ledger), messages: { opened: recent.map((m) => m.opened_at !== null || m.clicked_at !== null) } });
  const excludedItems = new Map<string, Set<string>>();
  const rules = policy.excludeItems.filter((rule) => requests.some((r) => r.items && r.items.length > 0 && (r.offer === undefined || policy.offerItemKeys.get(r.offer) === undefined || policy.offerItemKeys.get(r.offer) === rule.itemKey)));
  for (const rule of rules) excludedItems.set(rule.name, await itemsNamed(db, workspaceId, rule, input, row.id, now));
  // Web push subscriptions live in their own table (channels/push), also under profiles merged into this one.
  const storedAddresses = new Set<string>();
  if ([...policy.channels.values()].some((c) => c.type === 'push')) {
    const sub = await db
      .selectFrom('push_subscriptions')
      .select('endpoint')
      .where('workspace_id', '=', workspaceId)
      .where((eb) => eb.or([eb('customer_id', '=', row.id), eb('customer_id', 'in', eb.selectFrom('customers').select('id').where('workspace_id', '=', workspaceId).where('merged_into', '=', row.id))]))
      .limit(1)
      .executeTakeFirst();
    if (sub) storedAddresses.add('push');
  }
  return { customerId: row.id, input, row, zone: customerZone(input.traits.timezone, model.timezone), excludedItems, storedAddresses };
}

/**
 * Item ids named by the customer's `rule.event` events within the rule's window (and where its
 * `when` holds for the event). Reads the timeline through its primary key (workspace, customer,
 * ts), filtered by name: only customers with a request that promotes items pay for it.
 */
async function itemsNamed(db: Executor, workspaceId: string, rule: ResolvedExcludeItem, input: EvalInput, customerId: string, now: number): Promise<Set<string>> {
  const since = rule.windowMs === undefined ? 0 : now - rule.windowMs;
  const rows = await db.selectFrom('events').select(['ts', 'payload']).where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId).where('ts', '>=', since).where('type', '=', 'track').where('name', '=', rule.event).execute();
  const ids = new Set<string>();
  for (const r of rows) {
    const msg = JSON.parse(r.payload) as { properties?: Record<string, unknown> };
    const properties = msg.properties ?? {};
    if (rule.when && !rule.when.evaluate({ ...input, event: { type: 'track', name: rule.event, properties, timestamp: Number(r.ts) } })) continue;
    collectIdsAt(properties, rule.path, ids);
  }
  return ids;
}


/** The longest look-back any cap needs at `now` (calendar months reach back at most 31 days). */
function capLookback(policy: DeliveryPolicy): number {
  let ms = 0;
  for (const c of policy.caps) ms = Math.max(ms, c.window.type === 'rolling' ? c.window.ms : (c.window.period === 'day' ? 2 : c.window.period === 'week' ? 8 : 32) * 86_400_000);
  return ms;
}

/**
 * The customer's dispatches inside the longest cap window, and sent messages with engagement for
 * outcome pauses. A queued row is displaceable while its due_at is still ahead of now (it is held
 * for the arbitration window and no dispatcher can have claimed it).
 */
export async function loadLedgerView(db: Executor, workspaceId: string, customerId: string, policy: DeliveryPolicy, now: number): Promise<LedgerView> {
  let dispatched: DispatchEntry[] = [];
  if (policy.caps.length > 0) {
    const rows = await db
      .selectFrom('messages')
      .select(['key', 'status', 'channel', 'category', 'message_class', 'priority', 'requested_at', 'decided_at', 'due_at'])
      .where('workspace_id', '=', workspaceId)
      .where('customer_id', '=', customerId)
      .where('decided_at', '>=', now - capLookback(policy))
      .where('status', 'in', COUNTED_STATUSES as MessageStatus[])
      .execute();
    dispatched = rows.map((r) => ({
      key: r.key,
      channel: r.channel as string,
      category: r.category ?? undefined,
      messageClass: r.message_class as MessageClass,
      priority: Number(r.priority),
      requestedAt: Number(r.requested_at),
      decidedAt: Number(r.decided_at),
      displaceable: r.status === 'queued' && r.due_at !== null && Number(r.due_at) > now,
    }));
  }
  let sent: SentEntry[] = [];
  if (policy.outcomePauses.length > 0) {
    const rows = await db
      .selectFrom('messages')
      .select(['channel', 'category', 'message_class', 'sent_at', 'opened_at', 'clicked_at'])
      .where('workspace_id', '=', workspaceId)
      .where('customer_id', '=', customerId)
      .where('status', '=', 'sent')
      .orderBy('sent_at', 'desc')
      .limit(500)
      .execute();
    sent = rows.reverse().map((r) => {
      const engaged = [r.opened_at, r.clicked_at].filter((t): t is number => t !== null).map(Number);
      return { channel: r.channel as string, category: r.category ?? undefined, messageClass: r.message_class as MessageClass, sentAt: Number(r.sent_at), engagedAt: engaged.length > 0 ? Math.min(...engaged) : null };
    });
  }
  return { dispatched, sent };
}

function firstString(v: unknown): string | undefined {
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  if (Array.isArray(v)) return v.map(firstString).find((x) => x !== undefined);
  return undefined;
}

/**
 * Where a channel type reaches the customer, from the profile: email — the `email` trait, else an
 * email identity; sms — the `phone` trait, else a phone identity; push — the `push_subscriptions`
 * trait (a list of {endpoint, keys: {p256dh, auth}}). Other types need no address.
 */
export function addressOf(row: Pick<ProfileRow, 'identities' | 'traits'>, type: ChannelType): Address {
  const traits = traitValues(row.traits);
  const identity = (kind: string): string | undefined => {
    for (const key of row.identities) if (key.startsWith(`${kind}\u0000`)) return key.slice(kind.length + 1);
    return undefined;
  };
  switch (type) {
    case 'email': {
      const email = firstString(traits.email) ?? identity('email');
      return email ? { email } : {};
    }
    case 'sms': {
      const phone = firstString(traits.phone) ?? identity('phone');
      return phone ? { phone } : {};
    }
    case 'push': {
      const subs = traits.push_subscriptions;
      if (!Array.isArray(subs)) return {};
      const push = subs.filter((s): s is { endpoint: string; keys: { p256dh: string; auth: string } } => {
        const o = s as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } } | null;
        return !!o && typeof o.endpoint === 'string' && typeof o.keys?.p256dh === 'string' && typeof o.keys?.auth === 'string';
      });
      return push.length > 0 ? { push } : {};
    }
    default:
      return {};
  }
}

/** One entry of the profile's message log. */
export interface MessageLogEntry {
  id: string;
  key: string;
  status: MessageStatus;
  reason: NotSentReason | null;
  rule: string | null;
  detail: string;
  channel: string | null;
  channels: string[];
  messageClass: MessageClass;
  category: string | null;
  priority: number;
  offer: string | null;
  journey: { name: string; instanceId: string | null; step: string | null } | null;
  requestedAt: string;
  decidedAt: string;
  /** When the dispatcher next acts on it (queued, deferred); null when final. */
  dueAt: string | null;
  sentAt: string | null;
  attempts: number;
  lastError: string | null;
  deliveredAt: string | null;
  openedAt: string | null;
  clickedAt: string | null;
  feedback: string | null;
}

const isoOrNull = (t: number | string | null): string | null => (t === null ? null : new Date(Number(t)).toISOString());

function logEntry(r: MessagesTable): MessageLogEntry {
  return {
    id: r.id,
    key: r.key,
    status: r.status as MessageStatus,
    reason: r.reason as NotSentReason | null,
    rule: r.rule,
    detail: r.detail,
    channel: r.channel,
    channels: JSON.parse(r.channels) as string[],
    messageClass: r.message_class as MessageClass,
    category: r.category,
    priority: Number(r.priority),
    offer: r.offer,
    journey: r.journey === null ? null : { name: r.journey, instanceId: r.journey_instance, step: r.journey_step },
    requestedAt: new Date(Number(r.requested_at)).toISOString(),
    decidedAt: new Date(Number(r.decided_at)).toISOString(),
    dueAt: r.status === 'sending' ? null : isoOrNull(r.due_at),
    sentAt: isoOrNull(r.sent_at),
    attempts: Number(r.attempts),
    lastError: r.last_error,
    deliveredAt: isoOrNull(r.delivered_at),
    openedAt: isoOrNull(r.opened_at),
    clickedAt: isoOrNull(r.clicked_at),
    feedback: r.feedback,
  };
}

/**
 * The profile's message log: every message requested for the customer — sent, queued, deferred,
 * failed and not sent, with reason codes — newest request first, keyset-paged by id (uuidv7, so
 * creation order).
 */
export async function listMessages(db: Db, workspaceId: string, customerId: string, opts: { limit: number; cursor?: string; status?: MessageStatus }): Promise<{ items: MessageLogEntry[]; nextCursor: string | null }> {
  let q = db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('customer_id', '=', customerId);
  if (opts.cursor !== undefined) {
    let after: string;
    try {
      after = Buffer.from(opts.cursor, 'base64url').toString('utf8');
    } catch {
      after = '';
    }
    if (!/^[0-9a-f-]{36}$/.test(after)) throw new CairnError('CAIRN_ERR_BAD_CURSOR', { cursor: opts.cursor });
    q = q.where('id', '<', after);
  }
  if (opts.status !== undefined) q = q.where('status', '=', opts.status);
  const rows = (await q.orderBy('id', 'desc').limit(opts.limit + 1).execute()) as MessagesTable[];
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return { items: page.map(logEntry), nextCursor: rows.length > opts.limit && last ? Buffer.from(last.id).toString('base64url') : null };
}

/** One ledger row by its idempotency key (tests, journeys looking up what a step sent). */
export async function getMessageByKey(db: Executor, workspaceId: string, key: string): Promise<MessageLogEntry | undefined> {
  const r = (await db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst()) as MessagesTable | undefined;
  return r ? logEntry(r) : undefined;
}

/**
 * Applies normalized provider feedback to ledger rows, matched by outbox id or provider id:
 * delivered → delivered_at; opened / clicked → opened_at / clicked_at (first time only; a click
 * implies an open); bounced / complained / failed → feedback. Consent changes (unsubscribed,
 * resubscribed) and inbound messages are not ledger matters and are ignored here. With `channel`,
 * only messages sent on that channel match (a provider callback). Returns how many events matched.
 */
export async function recordDeliveryEvents(db: Db, workspaceId: string, events: readonly DeliveryEvent[], opts: { channel?: string } = {}): Promise<number> {
  let matched = 0;
  for (const e of events) {
    const set: Partial<Record<'delivered_at' | 'opened_at' | 'clicked_at', number>> & { feedback?: string } = {};
    switch (e.type) {
      case 'delivered':
        set.delivered_at = e.at;
        break;
      case 'opened':
        set.opened_at = e.at;
        break;
      case 'clicked':
        set.clicked_at = e.at;
        break;
      case 'bounced':
      case 'complained':
      case 'failed':
        set.feedback = e.type;
        break;
      default:
        continue;
    }
    if (e.messageId === undefined && e.providerMessageId === undefined) continue;
    let q = db.updateTable('messages').where('workspace_id', '=', workspaceId);
    q = e.messageId !== undefined ? q.where('id', '=', e.messageId) : q.where('provider_message_id', '=', e.providerMessageId as string);
    // A provider's callback speaks for its own channel's messages only.
    if (opts.channel !== undefined) q = q.where('channel', '=', opts.channel);
    // First time only: a later duplicate callback does not move the time.
    const col = Object.keys(set).find((k) => k !== 'feedback') as 'delivered_at' | 'opened_at' | 'clicked_at' | undefined;
    const values: Record<string, unknown> = { ...set };
    if (col !== undefined) q = q.where(col, 'is', null);
    if (e.type === 'clicked') {
      let open = db.updateTable('messages').set({ opened_at: e.at }).where('workspace_id', '=', workspaceId);
      open = e.messageId !== undefined ? open.where('id', '=', e.messageId) : open.where('provider_message_id', '=', e.providerMessageId as string);
      if (opts.channel !== undefined) open = open.where('channel', '=', opts.channel);
      await open.where('opened_at', 'is', null).executeTakeFirst();
    }
    const res = await q.set(values).executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) matched++;
  }
  return matched;
}
