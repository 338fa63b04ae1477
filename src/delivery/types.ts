import type { ChannelType, MessageClass } from '../blueprint/index.js';

/**
 * The contracts of delivery: what a journey step or a decision hands to the policy gate, what the
 * gate answers, and what a channel adapter must do. Journeys, decisioning and every adapter code
 * against these types only; the implementations live in delivery/ (gate, outbox, dispatcher) and
 * delivery/channels/<adapter>/.
 */

/** Why a message was not sent (or not yet). Shown in the profile's message log and in explanations. */
export type NotSentReason =
  | 'NO_CONSENT'
  | 'CAP_REACHED'
  | 'LOWER_PRIORITY'
  | 'QUIET_HOURS'
  | 'SUPPRESSED'
  | 'CHANNEL_UNAVAILABLE'
  | 'UNREACHABLE'
  | 'HOLDOUT'
  | 'DEFERRAL_EXPIRED'
  | 'PROVIDER_REJECTED'
  | 'RENDER_FAILED';

/** A message that wants to reach a customer: the input of the policy gate. */
export interface MessageRequest {
  /**
   * Idempotency key: `j:<instanceId>:<stepId>` for a journey send, `d:<decisionId>:<offer>` for a
   * decision. A unique constraint on (workspace, key) makes a second send with the same key a no-op.
   */
  key: string;
  workspaceId: string;
  customerId: string;
  /** Blueprint channel names in fallback order (an offer's `channels`, or the step's one channel). */
  channels: readonly string[];
  messageClass: MessageClass;
  category?: string;
  /** Higher wins when messages compete for the last slot under a cap (offer priority; default 0). */
  priority: number;
  offer?: string;
  journey?: { name: string; instanceId: string; step: string };
  /** Item ids the message promotes (for exclude_item suppressions), from the offer's item_key. */
  items?: readonly string[];
  /** When the request was made (epoch ms); deferral ages are measured from it. */
  requestedAt: number;
}

/**
 * What the gate decided for one request. `messageId` is the ledger row (also the outbox id) when the
 * outcome was recorded; `detail` on a send says which channels were passed over and why.
 * A `send` means "queued for dispatch": within the arbitration window a higher-priority request for
 * the same customer may still take its slot (the row then becomes not_sent LOWER_PRIORITY; see
 * docs/contact-policy.md).
 */
export type GateOutcome =
  | { outcome: 'send'; channel: string; channelType: ChannelType; detail?: string; messageId?: string }
  | { outcome: 'defer'; until: number; reason: NotSentReason; rule?: string; detail: string; messageId?: string }
  | { outcome: 'drop'; reason: NotSentReason; rule?: string; detail: string; messageId?: string };

/** Where a channel reaches the customer; only the fields the channel type needs are set. */
export interface Address {
  email?: string;
  phone?: string;
  /** Web push subscriptions (endpoint + keys) stored for the customer. */
  push?: readonly { endpoint: string; keys: { p256dh: string; auth: string } }[];
  /** For webhook sends: the target URL. */
  url?: string;
}

/** A message ready for a provider: passed the gate, rendered, written to the outbox. */
export interface OutboundMessage {
  /** The outbox id (uuidv7); also the provider-facing message id where the provider takes one. */
  id: string;
  key: string;
  workspaceId: string;
  customerId: string;
  channel: string;
  channelType: ChannelType;
  messageClass: MessageClass;
  category?: string;
  to: Address;
  /** Rendered content: subject, preheader, headline, body, image, cta {label,url} … (see templates). */
  content: Record<string, unknown>;
  /** Delivery attempt, from 1. */
  attempt: number;
}

export type SendResult =
  | { ok: true; providerMessageId?: string }
  | { ok: false; retryable: boolean; retryAfterMs?: number; code: string; error: string };

/** A provider callback or inbound message, normalized. */
export interface DeliveryEvent {
  type: 'delivered' | 'bounced' | 'opened' | 'clicked' | 'complained' | 'failed' | 'unsubscribed' | 'resubscribed' | 'inbound';
  /** The outbox id or the provider's id, whichever the provider echoes. */
  messageId?: string;
  providerMessageId?: string;
  /** For inbound STOP/START and unsubscribes: who. */
  address?: Address;
  at: number;
  detail?: Record<string, unknown>;
}

/** What an adapter gets besides the message: its settings (secrets resolved) and shared services. */
export interface AdapterContext {
  settings: Readonly<Record<string, string | number | boolean>>;
  /** The public base URL of this Cairn (for unsubscribe links and tracked redirects). */
  publicUrl: string;
  /** Signs and verifies short tokens (HMAC) for unsubscribe links and tracked links. */
  sign(payload: string): string;
  now(): number;
}

/**
 * A channel adapter. One contract for every provider; a test adapter is registered like the rest.
 * `send` must not throw for provider errors: it answers `{ ok: false, retryable, … }`.
 */
export interface ChannelAdapter {
  /** The provider name used in the blueprint (`provider.name`): smtp, twilio, vapid, http, in_app, service_desk, test … */
  readonly name: string;
  readonly channelTypes: readonly ChannelType[];
  /** Checks settings at start (missing host, bad key …); throws a CairnError that names the setting. */
  verify(ctx: AdapterContext): Promise<void>;
  send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult>;
  /**
   * Normalizes a provider callback (delivery status, inbound SMS …) posted to
   * /v1/channels/:channel/callback. It must authenticate the request (the provider's signature
   * scheme) and throw CAIRN_ERR_CALLBACK_SIGNATURE when it does not verify: the route is public.
   */
  parseCallback?(request: CallbackRequest, ctx: AdapterContext): DeliveryEvent[];
  /** What the callback route answers the provider (Twilio expects TwiML); default `{"success":true}`. */
  readonly callbackReply?: { contentType: string; body: string };
  /** Releases what the adapter holds (pooled connections); called when the runtime closes. */
  close?(): Promise<void>;
}

/** A provider's request to /v1/channels/:channel/callback, as adapters see it. */
export interface CallbackRequest {
  headers: Record<string, string | string[] | undefined>;
  /** Parsed body: JSON as parsed, form-encoded as a string map. */
  body: unknown;
  query: Record<string, string>;
  /** The body exactly as received (signatures are computed over it). */
  rawBody?: string;
  /** The public URL the provider called, query included (Twilio signs it): CAIRN_PUBLIC_URL + path. */
  url?: string;
}
