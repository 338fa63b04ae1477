import type { Db } from '../../../store/index.js';
import type { AdapterContext, ChannelAdapter, OutboundMessage, SendResult } from '../../types.js';
import { cta as ctaOf, text } from '../settings.js';
import { htmlToText } from '../smtp/index.js';
import { insertSuggestion } from './suggestions.js';

/**
 * The service-desk channel (provider `service_desk`): `send` puts a suggestion — title (the
 * headline or subject), body and call to action — into the agent's view of the customer, where an
 * agent accepts or dismisses it. No provider is called; resending the same message stores nothing
 * new. Settings: none.
 */
export class ServiceDeskAdapter implements ChannelAdapter {
  readonly name = 'service_desk';
  readonly channelTypes = ['service_desk'] as const;

  constructor(private readonly deps: { db: Db }) {}

  async verify(_ctx: AdapterContext): Promise<void> {}

  async send(message: OutboundMessage, ctx: AdapterContext): Promise<SendResult> {
    const c = message.content;
    const title = text(c, 'headline') ?? text(c, 'subject') ?? '';
    const body = text(c, 'text') ?? htmlToText(text(c, 'body') ?? '');
    if (title === '' && body === '') return { ok: false, retryable: false, code: 'EMPTY', error: 'the rendered content has neither a headline nor a body' };
    await insertSuggestion(this.deps.db, {
      workspaceId: message.workspaceId,
      id: message.id,
      customerId: message.customerId,
      channel: message.channel,
      messageClass: message.messageClass,
      title,
      body,
      cta: ctaOf(c),
      createdAt: ctx.now(),
    });
    return { ok: true, providerMessageId: message.id };
  }
}
