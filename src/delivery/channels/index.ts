import type { Clock } from '../../core/index.js';
import type { Db } from '../../store/index.js';
import { LinkSigner } from '../links.js';
import type { ChannelRegistry } from './registry.js';
import { InAppAdapter, InboxHub } from './in_app/index.js';
import { WebPushAdapter } from './push/index.js';
import { ServiceDeskAdapter } from './service_desk/index.js';
import { TwilioSmsAdapter } from './sms/index.js';
import { SmtpAdapter } from './smtp/index.js';
import { CircuitBreaker, WebhookAdapter, type OutboundDeps } from './webhook/index.js';

/**
 * The built-in channel adapters and the services they share in one process: the link signer
 * (unsubscribe and tracked links), the in-app inbox hub (SSE), and the outbound policy (address
 * guard, circuit breaker per host, backoff) every provider call goes through.
 *
 * Built-ins register in the ChannelRegistry exactly as a third-party adapter would.
 */
export interface ChannelServices {
  links: LinkSigner;
  inbox: InboxHub;
  outbound: OutboundDeps;
}

export function createChannelServices(deps: { db: Db; clock: Clock; linkSecret: string | undefined; outboundAllowPrivate: boolean }): ChannelServices {
  return {
    links: new LinkSigner(deps.db, deps.clock, deps.linkSecret),
    inbox: new InboxHub(),
    outbound: { policy: Object.freeze({ allowPrivate: deps.outboundAllowPrivate }), breaker: new CircuitBreaker(deps.clock), clock: deps.clock },
  };
}

/**
 * Registers smtp, twilio, vapid, http, in_app and service_desk.
 *
 * @example
 *   const services = createChannelServices({ db, clock, linkSecret: config.linkSecret, outboundAllowPrivate: false });
 *   registerBuiltinAdapters(rt.delivery.registry, { db, services });
 */
export function registerBuiltinAdapters(registry: ChannelRegistry, deps: { db: Db; services: ChannelServices }): void {
  const { db, services } = deps;
  registry.register(new SmtpAdapter());
  registry.register(new TwilioSmsAdapter(services.outbound));
  registry.register(new WebPushAdapter({ db, outbound: services.outbound }));
  registry.register(new WebhookAdapter(services.outbound));
  registry.register(new InAppAdapter({ db, hub: services.inbox }));
  registry.register(new ServiceDeskAdapter({ db }));
}

export { resolveSettings, requireString, optionalString, optionalInt, optionalBool, requireUrl, type Settings } from './settings.js';
export { SmtpAdapter, composeEmail, classifySmtpError, htmlToText, escapeHtml } from './smtp/index.js';
export { TwilioSmsAdapter, twilioSignature, verifyTwilioSignature, keywordOf } from './sms/index.js';
export { WebPushAdapter, pushPayload, savePushSubscription, listPushSubscriptions, deletePushSubscription, subscriptionKeyProblem, type PushSubscriptionRecord } from './push/index.js';
export { InAppAdapter, InboxHub, listInbox, markInboxRead, mergedIds, userHash, verifyUserHash, type InboxItem, type InboxPage } from './in_app/index.js';
export { ServiceDeskAdapter, listSuggestions, resolveSuggestion, type Suggestion } from './service_desk/index.js';
export * from './webhook/index.js';
export { LinkSigner, encodeToken, verifyToken, peekToken, unsubscribeUrl, trackedUrl, hmacSign, type LinkPayload, type UnsubscribePayload, type RedirectPayload, type SignFn } from '../links.js';
export { recordChannelEvents, listChannelEvents, customerOfMessage, type StoredDeliveryEvent } from './events.js';
