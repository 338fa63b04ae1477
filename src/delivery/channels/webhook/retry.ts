/**
 * The retry policy of every outbound HTTP call Cairn makes (webhook channel, journey webhook
 * steps, SMS and push providers). The call site makes one attempt and answers a SendResult;
 * whoever owns the retry (the outbox, a journey step) waits `retryAfterMs` and tries again.
 *
 * - 408, 429 and 5xx are retryable; so are network failures (refused, reset, timeout, DNS);
 * - any other 4xx is final (the request itself is wrong; repeating it cannot help);
 * - 3xx is final too: redirects are never followed (a redirect could point inside the network);
 * - the wait is exponential with jitter, `Retry-After` (seconds or an HTTP date) wins when given.
 */

export interface BackoffOptions {
  /** First wait, ms. Default 1 s. */
  baseMs?: number;
  /** Longest wait, ms. Default 1 h. */
  maxMs?: number;
  /** A number in [0, 1); injected in tests. Default Math.random. */
  random?: () => number;
}

/** Longest Retry-After honoured (24 h): a provider asking for more is treated as asking for a day. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** Whether an HTTP status is worth retrying (408, 429, 5xx). 2xx is success and never asked about. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * The wait before attempt `attempt + 1` after attempt `attempt` (from 1) failed: base·2^(attempt−1)
 * capped at maxMs, with "equal jitter" (half fixed, half random) so a burst of failures spreads out
 * but never retries sooner than half the nominal wait.
 *
 * @example backoffDelay(1, { random: () => 0 }) // 500; backoffDelay(3, { random: () => 0.999 }) // ≈ 4000
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 1000;
  const max = opts.maxMs ?? 60 * 60 * 1000;
  const random = opts.random ?? Math.random;
  const n = Math.max(1, Math.floor(attempt));
  const nominal = Math.min(max, base * 2 ** Math.min(n - 1, 40));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}

/**
 * Reads a Retry-After header: delay-seconds or an HTTP date, as ms from `now` (0 for a date in the
 * past), capped at MAX_RETRY_AFTER_MS; undefined when absent or unreadable.
 *
 * @example parseRetryAfter('120', now) // 120000; parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', now)
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const text = v.trim();
  if (/^\d+$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Number(text) * 1000);
  if (text === '') return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

/** The wait after a failed attempt: Retry-After when the answer carried one, else the backoff. */
export function retryDelay(attempt: number, retryAfter: string | string[] | undefined, now: number, opts: BackoffOptions = {}): number {
  return parseRetryAfter(retryAfter, now) ?? backoffDelay(attempt, opts);
}
