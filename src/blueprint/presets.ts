import type { MappingRule } from './schema.js';

/**
 * Mappings shipped with Cairn for common tools, used by `sources[].preset`. Each is written in the
 * same rule language a blueprint author uses, so they double as examples.
 *
 * - crm-contact: a CRM contact created/updated webhook (HubSpot/Salesforce style flattened JSON).
 * - support-ticket: a support-desk ticket webhook (Zendesk/Freshdesk style) → Ticket Opened/Solved.
 * - shop-order: a shop order webhook (Shopify/WooCommerce style) → Order Completed/Refunded.
 */
export const PRESET_RULES: Record<string, MappingRule[]> = {
  'crm-contact': [
    {
      type: 'identify',
      userId: '${contact.external_id}',
      messageId: 'crm-contact-${contact.id}-${contact.updated_at}',
      timestamp: '${contact.updated_at}',
      traits: {
        email: '${contact.email?}',
        phone: '${contact.phone?}',
        first_name: '${contact.first_name?}',
        last_name: '${contact.last_name?}',
        lifecycle_stage: '${contact.lifecycle_stage?}',
        crm_owner: '${contact.owner?}',
      },
    },
  ],
  'support-ticket': [
    {
      when: { 'ticket.status': ['new', 'open'] },
      type: 'track',
      event: 'Ticket Opened',
      userId: '${ticket.requester.external_id}',
      messageId: 'ticket-${ticket.id}-opened-${ticket.updated_at?}',
      timestamp: '${ticket.created_at}',
      properties: { ticket_id: '${ticket.id}', subject: '${ticket.subject?}', priority: '${ticket.priority?}', channel: '${ticket.via?}', email: '${ticket.requester.email?}' },
    },
    {
      when: { 'ticket.status': ['solved', 'closed'] },
      type: 'track',
      event: 'Ticket Solved',
      userId: '${ticket.requester.external_id}',
      messageId: 'ticket-${ticket.id}-solved-${ticket.updated_at}',
      timestamp: '${ticket.updated_at}',
      properties: { ticket_id: '${ticket.id}', subject: '${ticket.subject?}', satisfaction: '${ticket.satisfaction_rating?}', email: '${ticket.requester.email?}' },
    },
  ],
  'shop-order': [
    {
      when: { topic: 'orders/create' },
      type: 'track',
      event: 'Order Completed',
      userId: '${order.customer.id}',
      messageId: 'order-${order.id}-created',
      timestamp: '${order.created_at}',
      properties: {
        order_id: '${order.id}',
        revenue: '${order.total_price|number}',
        currency: '${order.currency?}',
        products: '${order.line_items?}',
        email: '${order.customer.email?}',
      },
    },
    {
      when: { topic: ['refunds/create', 'orders/returned'] },
      type: 'track',
      event: 'Order Refunded',
      userId: '${order.customer.id}',
      messageId: 'order-${order.id}-refund-${refund.id}',
      timestamp: '${refund.created_at}',
      properties: { order_id: '${order.id}', refund_id: '${refund.id}', revenue: '${refund.amount?|number}', products: '${refund.line_items?}' },
    },
  ],
};

export const PRESET_NAMES = Object.keys(PRESET_RULES);
