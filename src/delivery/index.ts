/**
 * Delivery: one contact policy applied at send time to every message (consent, suppressions,
 * quiet hours, caps with arbitration before capping, channel degradation), the message ledger that
 * is also the outbox, and the dispatcher that hands messages to channel adapters with retries.
 * See docs/contact-policy.md.
 */
export type { MessageRequest, GateOutcome, NotSentReason, Address, OutboundMessage, SendResult, DeliveryEvent, AdapterContext, ChannelAdapter, CallbackRequest } from './types.js';
export { enqueueMessages, offerContent, type ContentRenderer, type EnqueueOptions, type DeliveryWorkspace } from './enqueue.js';
export { evaluateGate, inScope, quietPeriodEnd, outcomePauseUntil, type CustomerState, type DispatchEntry, type SentEntry, type LedgerView, type GateOptions, type GateResult, type Displaced } from './gate.js';
export { deliveryPolicy, currentPhase, type DeliveryPolicy, type ResolvedCap, type ResolvedChannel, type ResolvedQuietHours, type ResolvedPhase, type ClassPolicy } from './policy.js';
export { listMessages, getMessageByKey, recordDeliveryEvents, addressOf, MESSAGE_STATUSES, COUNTED_STATUSES, type MessageStatus, type MessageLogEntry } from './ledger.js';
export { Dispatcher, type DispatcherDeps, type DispatcherOptions, type DeliveryEventMap, type DispatcherLogger } from './dispatcher.js';
export { ChannelRegistry } from './channels/registry.js';
// The channel adapters, their shared services (links, inbox hub, outbound policy) and helpers.
export * from './channels/index.js';
export { createTestAdapter, type TestAdapter } from './channels/test/test-adapter.js';
export { DeliveryService, type DeliveryServiceDeps } from './service.js';
export { verifyChannels, type ChannelProblem, type VerifyContext } from './verify.js';
