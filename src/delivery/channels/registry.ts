import type { ChannelAdapter } from '../types.js';

/**
 * Channel adapters by provider name (`channels[].provider.name` in the blueprint; a channel
 * without a provider uses its type, e.g. in_app). Built-in adapters and the test adapter are
 * registered the same way a third-party one would be; the dispatcher looks adapters up here.
 *
 * @example
 *   const registry = new ChannelRegistry();
 *   registry.register(createTestAdapter());
 *   registry.get('test')?.channelTypes; // ['email', 'sms', …]
 */
export class ChannelRegistry {
  readonly #adapters = new Map<string, ChannelAdapter>();

  /** Adds an adapter; a second adapter under the same name replaces the first (tests swap fakes). */
  register(adapter: ChannelAdapter): void {
    this.#adapters.set(adapter.name, adapter);
  }

  get(name: string): ChannelAdapter | undefined {
    return this.#adapters.get(name);
  }

  /** Registered provider names, sorted. */
  names(): string[] {
    return [...this.#adapters.keys()].sort();
  }

  /** Releases what adapters hold (pooled connections); called when the runtime closes. */
  async close(): Promise<void> {
    for (const a of this.#adapters.values()) await a.close?.();
  }
}
