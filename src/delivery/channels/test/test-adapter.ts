import type { ChannelAdapter, OutboundMessage, SendResult } from '../../types.js';

/** The test adapter: records what it is asked to send, and fails on demand. */
export interface TestAdapter extends ChannelAdapter {
  /** Every message accepted, in order (a failed attempt is not recorded here). */
  readonly sent: OutboundMessage[];
  /** Every attempt, successful or not, with the result given. */
  readonly attempts: { message: OutboundMessage; result: SendResult }[];
  /** The next `n` sends answer `result` instead of succeeding. */
  failNext(n: number, result: SendResult): void;
}

/**
 * A channel adapter that keeps sends in memory, for tests, simulation and local demos. It is a
 * regular adapter under the provider name `test` (any channel type), registered like the others —
 * no NODE_ENV branch anywhere.
 *
 * @example
 *   const test = createTestAdapter();
 *   rt.delivery.registry.register(test);
 *   test.failNext(1, { ok: false, retryable: true, retryAfterMs: 60_000, code: 'RATE', error: '429' });
 */
export function createTestAdapter(name = 'test'): TestAdapter {
  const sent: OutboundMessage[] = [];
  const attempts: { message: OutboundMessage; result: SendResult }[] = [];
  const failures: SendResult[] = [];
  return {
    name,
    channelTypes: ['email', 'sms', 'push', 'in_app', 'webhook', 'service_desk'],
    sent,
    attempts,
    async verify() {},
    async send(message) {
      const copy: OutboundMessage = structuredClone(message);
      const result: SendResult = failures.shift() ?? { ok: true, providerMessageId: `test-${message.id}` };
      attempts.push({ message: copy, result });
      if (result.ok) sent.push(copy);
      return result;
    },
    failNext(n, result) {
      for (let i = 0; i < n; i++) failures.push(result);
    },
  };
}
