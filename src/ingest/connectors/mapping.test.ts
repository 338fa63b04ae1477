import { describe, expect, it } from 'vitest';
import { mapPayload } from './mapping.js';
import { PRESET_RULES } from '../../blueprint/index.js';
import type { MappingRule } from '../../blueprint/index.js';

const rule = (over: Partial<MappingRule>): MappingRule[] => [{ type: 'track', event: 'Paid', userId: '${u}', ...over }];

describe('mapping filters', () => {
  it('|number turns a shop amount sent as text into a number', () => {
    const r = mapPayload('shop', rule({ properties: { revenue: '${amount|number}' } }), { u: 'a', amount: '149.90' });
    expect(r.ok && r.message.properties).toEqual({ revenue: 149.9 });
  });

  it('|number on a value that is not a number names the field', () => {
    const r = mapPayload('shop', rule({ properties: { revenue: '${amount|number}' } }), { u: 'a', amount: 'n/a' });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('CAIRN_ERR_MAPPING');
      expect(r.error.message).toContain('"amount"');
    }
  });

  it('an unknown filter is a mapping error, not a crash', () => {
    const r = mapPayload('shop', rule({ properties: { x: '${amount|cube}' } }), { u: 'a', amount: 1 });
    expect(!r.ok && r.error.code).toBe('CAIRN_ERR_MAPPING');
  });

  it('|lower and |string work inside a longer template', () => {
    const r = mapPayload('crm', rule({ messageId: 'c-${id|string}-${tag|lower}' }), { u: 'a', id: 7, tag: 'VIP' });
    expect(r.ok && r.message.messageId).toBe('c-7-vip');
  });

  it('a reopened ticket is a new event while a retried webhook is the same one', () => {
    const opened = { ticket: { id: 9, status: 'open', requester: { external_id: 'u1' }, created_at: '2026-11-01T10:00:00Z', updated_at: '2026-11-01T10:00:00Z' } };
    const reopened = { ticket: { ...opened.ticket, updated_at: '2026-11-05T08:00:00Z' } };
    const rules = PRESET_RULES['support-ticket'] ?? [];
    const a = mapPayload('helpdesk', rules, opened);
    const b = mapPayload('helpdesk', rules, opened);
    const c = mapPayload('helpdesk', rules, reopened);
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (a.ok && b.ok && c.ok) {
      expect(a.message.messageId).toBe(b.message.messageId);
      expect(c.message.messageId).not.toBe(a.message.messageId);
    }
  });
});
