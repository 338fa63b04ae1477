import { CairnError } from '../../core/index.js';
import type { AdapterContext } from '../types.js';

/**
 * Reading adapter settings (channels[].provider.settings). Every adapter validates its settings in
 * `verify` with these helpers so a missing or malformed one is reported the same way: a
 * CAIRN_ERR_CHANNEL_SETTING naming the provider and the setting.
 */
export type Settings = AdapterContext['settings'];

/**
 * Replaces `${env:NAME}` references with the environment's value. Secrets are given by reference
 * only in a blueprint; an unset variable leaves the setting out, so `verify` reports it missing.
 *
 * @example resolveSettings({ pass: '${env:SMTP_PASSWORD}', port: 587 }, process.env)
 */
/** Settings whose `${env:NAME}` reference was unset, by key → the variable names (for the error). */
const unresolved = new WeakMap<object, Map<string, string[]>>();

export function resolveSettings(settings: Readonly<Record<string, string | number | boolean>> | undefined, env: NodeJS.ProcessEnv = process.env): Settings {
  const out: Record<string, string | number | boolean> = {};
  const missingVars = new Map<string, string[]>();
  for (const [k, v] of Object.entries(settings ?? {})) {
    if (typeof v !== 'string') {
      out[k] = v;
      continue;
    }
    const unset: string[] = [];
    const resolved = v.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const value = env[name];
      if (value === undefined || value === '') unset.push(name);
      return value ?? '';
    });
    if (unset.length === 0) out[k] = resolved;
    else missingVars.set(k, unset);
  }
  const frozen = Object.freeze(out);
  if (missingVars.size > 0) unresolved.set(frozen, missingVars);
  return frozen;
}

/** Why a setting is absent: "is missing", naming the unset `${env:…}` variable when that is the cause. */
export function missingReason(settings: Settings, key: string): string {
  const vars = unresolved.get(settings)?.get(key);
  return vars ? `is missing: it refers to ${vars.map((n) => `\${env:${n}}`).join(', ')}, which is not set in this environment` : 'is missing';
}

function fail(provider: string, setting: string, reason: string): never {
  throw new CairnError('CAIRN_ERR_CHANNEL_SETTING', { provider, setting, reason });
}

/** A required non-empty string setting. */
export function requireString(settings: Settings, provider: string, key: string): string {
  const v = settings[key];
  if (v === undefined || v === '') fail(provider, key, missingReason(settings, key));
  if (typeof v !== 'string') fail(provider, key, `must be a string, got ${typeof v}`);
  return v;
}

export function optionalString(settings: Settings, provider: string, key: string): string | undefined {
  const v = settings[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') fail(provider, key, `must be a string, got ${typeof v}`);
  return v;
}

/** An integer setting in [min, max]; numeric strings are accepted (they come from env references). */
export function optionalInt(settings: Settings, provider: string, key: string, min: number, max: number): number | undefined {
  const v = settings[key];
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) fail(provider, key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function optionalBool(settings: Settings, provider: string, key: string): boolean | undefined {
  const v = settings[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  fail(provider, key, `must be true or false, got ${JSON.stringify(v)}`);
}

/** A required absolute http(s) URL setting (the outbound policy still applies when it is called). */
export function requireUrl(settings: Settings, provider: string, key: string): string {
  const v = requireString(settings, provider, key);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    fail(provider, key, `must be an absolute URL, got ${JSON.stringify(v)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(provider, key, `must be an http(s) URL, got ${u.protocol}`);
  return v.replace(/\/+$/, '');
}

/** Reads a text field of rendered content (subject, body …); non-strings are ignored. */
export function text(content: Record<string, unknown>, key: string): string | undefined {
  const v = content[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The rendered call to action, when it has a URL. */
export function cta(content: Record<string, unknown>): { label: string; url: string } | undefined {
  const c = content.cta;
  if (!c || typeof c !== 'object') return undefined;
  const { label, url } = c as { label?: unknown; url?: unknown };
  if (typeof url !== 'string' || url === '') return undefined;
  return { label: typeof label === 'string' ? label : url, url };
}
