/**
 * The webhook channel and the outbound HTTP policy every provider call shares: the address guard
 * (SSRF), the retry classification and backoff, the circuit breaker per host, HMAC signatures.
 * Journey webhook steps reuse `callOutbound` with the same deps.
 */
export { WebhookAdapter } from './adapter.js';
export { callOutbound, type OutboundDeps, type CallOutcome } from './call.js';
export { httpRequest, InvalidRequestError, NetworkError, type HttpResponse, type HttpRequestOptions } from './http.js';
export { checkUrl, guardedLookup, isBlockedAddress, embeddedIPv4, OutboundRefusedError, DEFAULT_OUTBOUND_POLICY, type OutboundPolicy } from './guard.js';
export { backoffDelay, parseRetryAfter, retryDelay, isRetryableStatus, MAX_RETRY_AFTER_MS, type BackoffOptions } from './retry.js';
export { CircuitBreaker, type BreakerOptions, type BreakerState, type BreakerPermit } from './breaker.js';
export { signWebhook, verifyWebhookSignature, SIGNATURE_HEADER, type SignatureCheck } from './signature.js';
