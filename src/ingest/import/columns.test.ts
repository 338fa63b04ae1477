import { describe, expect, it } from 'vitest';
import { parseBlueprint, resolveModel } from '../../blueprint/index.js';
import { extractIdentities } from '../../profiles/index.js';
import { CairnError } from '../../core/index.js';
import { coerceCell, planColumns, rowToMessage } from './columns.js';

const model = resolveModel(
  parseBlueprint(`version: 1
workspace:
  name: Shop
identity:
  keys:
    - name: user_id
    - name: email
    - name: phone
    - name: shop_customer_id
    - name: anonymous_id
`).blueprint,
);

function message(header: string[], row: string[], coerce = true): Record<string, unknown> {
  const r = rowToMessage(planColumns(header, model), row, coerce);
  if (!r.ok) throw new Error(r.reason);
  return r.message;
}

describe('profile CSV columns', () => {
  it('maps identity columns loosely and the rest to traits', () => {
    const m = message(['User ID', 'E-Mail', 'phone_number', 'Shop Customer ID', 'first_name', 'plan'], ['42', 'Ana@Example.com', '+49 151 1', 'S-9', 'Ana', 'gold']);
    expect(m).toEqual({
      type: 'identify',
      userId: '42',
      traits: { email: 'Ana@Example.com', phone: '+49 151 1', shop_customer_id: 'S-9', first_name: 'Ana', plan: 'gold' },
    });
    expect(extractIdentities(model, m)).toEqual([
      { kind: 'user_id', value: '42' },
      { kind: 'email', value: 'ana@example.com' },
      { kind: 'phone', value: '+491511' },
      { kind: 'shop_customer_id', value: 'S-9' },
    ]);
  });

  it('sets messageId and timestamp from their columns and leaves empty cells out', () => {
    expect(message(['userId', 'message_id', 'timestamp', 'city', 'plan'], ['7', 'm-1', '2026-10-01T00:00:00Z', '', 'basic'])).toEqual({
      type: 'identify',
      userId: '7',
      messageId: 'm-1',
      timestamp: '2026-10-01T00:00:00Z',
      traits: { plan: 'basic' },
    });
  });

  it('gives a row known only by email a stable anonymous id from it', () => {
    const a = message(['user_id', 'email'], ['', ' Dev@Example.com ']);
    expect(a.anonymousId).toBe('email:dev@example.com');
    expect(a.userId).toBeUndefined();
  });

  it('rejects a row with the wrong column count or no identity value', () => {
    const plan = planColumns(['user_id', 'email', 'name'], model);
    expect(rowToMessage(plan, ['1', 'a@b.c'], true)).toEqual({ ok: false, reason: 'expected 3 columns as in the header, found 2' });
    expect(rowToMessage(plan, ['', '', 'Nobody'], true)).toMatchObject({ ok: false, reason: expect.stringMatching(/no identity value/) });
  });

  it('refuses headers without an identity column, with duplicates, blanks or forbidden names', () => {
    const code = (h: string[]) => {
      try {
        planColumns(h, model);
        return 'ok';
      } catch (e) {
        return e instanceof CairnError ? `${e.code} ${e.message}` : String(e);
      }
    };
    expect(code(['name', 'city'])).toMatch(/^CAIRN_ERR_IMPORT_ROW Row 1: header: no identity column/);
    expect(code(['email', 'E-mail'])).toMatch(/^CAIRN_ERR_IMPORT_ROW .*name the same field/);
    expect(code(['email', ''])).toMatch(/^CAIRN_ERR_IMPORT_ROW .*column 2 has no name/);
    expect(code(['email', '__proto__'])).toMatch(/^CAIRN_ERR_IMPORT_ROW .*not allowed/);
  });

  it('coerces booleans and plain decimals, and nothing a number would change', () => {
    expect([coerceCell('true'), coerceCell('false'), coerceCell('42'), coerceCell('-3'), coerceCell('1240.50'), coerceCell('0')]).toEqual([true, false, 42, -3, 1240.5, 0]);
    for (const keep of ['007', '+49 151', '1e5', '12345678901234567890', '1,5', 'TRUE', ' 4', '4.', '.5']) expect(coerceCell(keep)).toBe(keep);
    expect(message(['user_id', 'zip', 'ltv'], ['1', '01234', '99.90'], false).traits).toEqual({ zip: '01234', ltv: '99.90' });
  });
});
