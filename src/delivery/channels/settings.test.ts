import { describe, expect, it } from 'vitest';
import { isCairnError } from '../../core/index.js';
import { requireString, resolveSettings } from './settings.js';

describe('adapter settings', () => {
  it('resolves ${env:NAME} references and leaves a setting out when its variable is unset', () => {
    const s = resolveSettings({ host: 'smtp.example', pass: '${env:CAIRN_T_PASS}', url: 'https://${env:CAIRN_T_HOST}/x', port: 587 }, { CAIRN_T_HOST: 'crm.example' });
    expect(s).toEqual({ host: 'smtp.example', url: 'https://crm.example/x', port: 587 });
  });

  it('names the unset variable when a required setting is missing because of it', () => {
    const s = resolveSettings({ secret: '${env:CAIRN_T_SECRET}' }, {});
    let err: unknown;
    try {
      requireString(s, 'http', 'secret');
    } catch (e) {
      err = e;
    }
    expect(isCairnError(err) && err.code).toBe('CAIRN_ERR_CHANNEL_SETTING');
    expect(String((err as Error).message)).toContain('${env:CAIRN_T_SECRET}');
    // A setting simply not given says only that it is missing.
    expect(() => requireString(resolveSettings({}, {}), 'http', 'secret')).toThrow(/secret.*is missing/);
  });
});
