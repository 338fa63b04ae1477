import { CairnError } from '../../core/index.js';
import type { ResolvedIdentityKey, WorkspaceModel } from '../../blueprint/index.js';
import { normalizeIdentity } from '../../profiles/index.js';

/**
 * How the columns of a profile CSV become a Segment `identify`: identity columns go where the
 * workspace's identity keys read them from, `message_id` and `timestamp` set those fields, and
 * every other column becomes a trait named after its header.
 *
 * Header names match loosely (case, spaces, `_` and `-` are ignored), so `user_id`, `userId` and
 * `User ID` are the same column.
 */
export type ColumnRole =
  | { kind: 'userId' }
  | { kind: 'anonymousId' }
  | { kind: 'messageId' }
  | { kind: 'timestamp' }
  | { kind: 'identity'; key: ResolvedIdentityKey; target: Target }
  | { kind: 'trait'; name: string };

/** Where an identity value is written in the message. */
type Target = { at: 'userId' } | { at: 'anonymousId' } | { at: 'trait'; name: string } | { at: 'externalId'; type: string } | { at: 'path'; path: string[] };

export interface ColumnPlan {
  headers: string[];
  roles: ColumnRole[];
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

const ALIASES: Record<string, string> = {
  userid: 'user_id',
  anonymousid: 'anonymous_id',
  emailaddress: 'email',
  phonenumber: 'phone',
  mobile: 'phone',
};

export function squash(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function headerError(reason: string): CairnError {
  return new CairnError('CAIRN_ERR_IMPORT_ROW', { row: 1, reason: `header: ${reason}` });
}

/** Chooses where a key's value goes: the top-level id fields or a trait when the key reads one. */
function targetFor(key: ResolvedIdentityKey): Target {
  for (const p of key.from) {
    if (p === 'userId') return { at: 'userId' };
    if (p === 'anonymousId') return { at: 'anonymousId' };
    const m = /^traits\.([^.]+)$/.exec(p);
    if (m) return { at: 'trait', name: m[1] as string };
  }
  const first = key.from[0] ?? `traits.${key.name}`;
  if (first.startsWith('externalIds.')) return { at: 'externalId', type: first.slice('externalIds.'.length) };
  return { at: 'path', path: first.split('.') };
}

/** Reads the header row; throws CAIRN_ERR_IMPORT_ROW (row 1) when it cannot describe profiles. */
export function planColumns(header: readonly string[], model: WorkspaceModel): ColumnPlan {
  const keys = new Map<string, ResolvedIdentityKey>();
  for (const k of model.identity.keys) keys.set(squash(k.name), k);
  const seen = new Map<string, number>();
  const roles: ColumnRole[] = header.map((raw, i) => {
    const name = raw.trim();
    if (name === '') throw headerError(`column ${i + 1} has no name`);
    if (FORBIDDEN.has(name)) throw headerError(`the column name "${name}" is not allowed`);
    const s = squash(name);
    const prev = seen.get(s);
    if (prev !== undefined) throw headerError(`columns ${prev + 1} and ${i + 1} ("${header[prev]}", "${name}") name the same field`);
    seen.set(s, i);
    if (s === 'messageid') return { kind: 'messageId' };
    if (s === 'timestamp') return { kind: 'timestamp' };
    const keyName = ALIASES[s] ?? s;
    const key = keys.get(squash(keyName));
    if (key) return { kind: 'identity', key, target: targetFor(key) };
    if (s === 'userid') return { kind: 'userId' };
    if (s === 'anonymousid') return { kind: 'anonymousId' };
    return { kind: 'trait', name };
  });
  if (!roles.some((r) => r.kind === 'identity' || r.kind === 'userId' || r.kind === 'anonymousId')) {
    const names = ['user_id', ...model.identity.keys.map((k) => k.name)].filter((n, i, a) => a.indexOf(n) === i);
    throw headerError(`no identity column; name one of ${names.join(', ')}`);
  }
  return { headers: header.map((h) => h.trim()), roles };
}

/**
 * "true"/"false" become booleans, and plain decimals (`42`, `-3`, `1240.50`) become numbers.
 * Text that a number would change stays text: leading zeros (`007`, zip codes), signs and
 * spaces (`+49 151…`), exponents, and integers beyond 15 digits (long ids).
 */
export function coerceCell(v: string): string | number | boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?(0|[1-9]\d{0,14})(\.\d{1,15})?$/.test(v)) return Number(v);
  return v;
}

export type RowMessage = { ok: true; message: Record<string, unknown> } | { ok: false; reason: string };

/**
 * One CSV record → an identify message (messageId assigned by the caller when absent). Empty
 * cells are left out, so an empty cell never erases a trait the profile already has.
 */
export function rowToMessage(plan: ColumnPlan, fields: readonly string[], coerce: boolean): RowMessage {
  if (fields.length !== plan.roles.length) {
    return { ok: false, reason: `expected ${plan.roles.length} columns as in the header, found ${fields.length}` };
  }
  const message: Record<string, unknown> = { type: 'identify' };
  const traits: Record<string, unknown> = {};
  let externalIds: { id: string; type: string; collection: string; encoding: string }[] | undefined;
  let strongest: { key: ResolvedIdentityKey; value: string } | undefined;
  let hasId = false;
  for (let i = 0; i < fields.length; i++) {
    const v = fields[i] as string;
    if (v === '') continue;
    const role = plan.roles[i] as ColumnRole;
    switch (role.kind) {
      case 'userId':
        message.userId = v;
        hasId = true;
        break;
      case 'anonymousId':
        message.anonymousId = v;
        hasId = true;
        break;
      case 'messageId':
        message.messageId = v;
        break;
      case 'timestamp':
        message.timestamp = v;
        break;
      case 'trait':
        traits[role.name] = coerce ? coerceCell(v) : v;
        break;
      case 'identity': {
        const t = role.target;
        if (t.at === 'userId' || t.at === 'anonymousId') {
          message[t.at] = v;
          hasId = true;
        } else if (t.at === 'trait') traits[t.name] = v;
        else if (t.at === 'externalId') (externalIds ??= []).push({ id: v, type: t.type, collection: 'users', encoding: 'none' });
        else setPath(message, t.path, v);
        if (strongest === undefined || role.key.precedence < strongest.key.precedence) strongest = { key: role.key, value: v };
        break;
      }
    }
  }
  if (!hasId) {
    if (strongest === undefined) return { ok: false, reason: 'no identity value: every identity column of this row is empty' };
    // Segment messages need userId or anonymousId. A row known only by, say, its email gets a
    // stable anonymous id derived from that identity, so every import of it names the same one.
    const normalized = normalizeIdentity(strongest.key, strongest.value);
    if (normalized === undefined) return { ok: false, reason: `the ${strongest.key.name} value is not usable as an identity` };
    message.anonymousId = `${strongest.key.name}:${normalized}`;
  }
  if (Object.keys(traits).length > 0) message.traits = traits;
  if (externalIds) message.context = { externalIds };
  return { ok: true, message };
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = target;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i] as string;
    if (FORBIDDEN.has(k)) return;
    const next = cur[k];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) cur = next as Record<string, unknown>;
    else {
      const fresh: Record<string, unknown> = {};
      cur[k] = fresh;
      cur = fresh;
    }
  }
  const last = path[path.length - 1];
  if (last !== undefined && !FORBIDDEN.has(last)) cur[last] = value;
}
