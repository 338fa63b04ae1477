import { CairnError, isCairnError } from '../core/index.js';
import type { Blueprint } from '../blueprint/index.js';
import type { ChannelRegistry } from './channels/registry.js';
import { resolveSettings } from './channels/settings.js';
import type { AdapterContext } from './types.js';

/**
 * Checking a blueprint's channels against the adapters of this process: for every channel with a
 * `provider` (except `availability: planned` ones, which are not configured yet), the adapter
 * registered under `provider.name` must exist and its `verify(ctx)` must pass with the channel's
 * settings (`${env:NAME}` resolved in this process's environment). `cairn workspace apply` refuses
 * a blueprint with a problem; a serving process logs each one and marks the channel down.
 */

/** One channel that cannot deliver as configured. */
export interface ChannelProblem {
  /** Index in the blueprint's `channels` list. */
  index: number;
  channel: string;
  provider: string;
  /** The setting at fault when the adapter named one (CAIRN_ERR_CHANNEL_SETTING). */
  setting?: string;
  /** Where in the blueprint: `channels[2].provider` or `channels[2].provider.settings.from`. */
  path: string;
  reason: string;
  /** The same, as a coded error (CAIRN_ERR_CHANNEL_VERIFY) to throw or print. */
  error: CairnError;
}

export interface VerifyContext {
  publicUrl: string;
  sign: AdapterContext['sign'];
  now(): number;
  /** Where `${env:NAME}` settings are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Every channel problem of a blueprint, in blueprint order; empty when all verify.
 *
 * @example
 *   const problems = await verifyChannels(rt.delivery.registry, ws.blueprint, { publicUrl, sign, now: () => Date.now() });
 *   if (problems[0]) throw problems[0].error; // CAIRN_ERR_CHANNEL_VERIFY naming channels[i].provider
 */
export async function verifyChannels(registry: ChannelRegistry, blueprint: Blueprint, ctx: VerifyContext): Promise<ChannelProblem[]> {
  const problems: ChannelProblem[] = [];
  const channels = blueprint.channels ?? [];
  for (let index = 0; index < channels.length; index++) {
    const ch = channels[index];
    if (!ch?.provider || ch.availability === 'planned') continue;
    const provider = ch.provider.name;
    const problem = (reason: string, setting?: string): ChannelProblem => {
      const path = setting === undefined ? `channels[${index}].provider` : `channels[${index}].provider.settings.${setting}`;
      return { index, channel: ch.name, provider, ...(setting !== undefined ? { setting } : {}), path, reason, error: new CairnError('CAIRN_ERR_CHANNEL_VERIFY', { path, channel: ch.name, provider, reason }) };
    };
    const adapter = registry.get(provider);
    if (!adapter) {
      problems.push(problem(`no adapter is registered under the name "${provider}" (registered: ${registry.names().join(', ') || 'none'})`));
      continue;
    }
    if (!adapter.channelTypes.includes(ch.type)) {
      problems.push(problem(`adapter "${provider}" delivers ${adapter.channelTypes.join(', ')}, not ${ch.type}`));
      continue;
    }
    try {
      await adapter.verify({ settings: resolveSettings(ch.provider.settings, ctx.env ?? process.env), publicUrl: ctx.publicUrl, sign: ctx.sign, now: ctx.now });
    } catch (err) {
      if (isCairnError(err) && err.code === 'CAIRN_ERR_CHANNEL_SETTING') {
        const setting = typeof err.params.setting === 'string' ? err.params.setting : undefined;
        problems.push(problem(`setting "${setting ?? '?'}" ${String(err.params.reason ?? err.message)}`, setting));
      } else problems.push(problem(err instanceof Error ? err.message : String(err)));
    }
  }
  return problems;
}
