import { isObject, isoTime, itemError, uuidv7, closest, type ItemError } from '../core/index.js';
import type { WorkspaceModel } from '../blueprint/index.js';
import { extractIdentities, type ConsentInput, type ProfileEvent } from '../profiles/index.js';

/**
 * The Segment tracking spec, as Cairn reads it: message types, required fields, the timestamp
 * rules, and the batch envelope. Every check returns an ItemError naming the field, so one bad
 * message in a batch is reported and the rest are kept.
 */
export const MESSAGE_TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** 32 KB per message and 500 KB per batch, as in the Segment HTTP API. */
export const MAX_EVENT_BYTES = 32 * 1024;
export const MAX_BATCH_BYTES = 500 * 1024;

/** Reserved trait key for consent set through identify: { purpose: { channel: status } } or a list. */
export const CONSENT_TRAIT = '$consent';

export interface BatchDefaults {
  context?: Record<string, unknown>;
  integrations?: Record<string, unknown>;
  sentAt?: unknown;
}

export interface NormalizeOptions {
  model: WorkspaceModel;
  source: string;
  receivedAt: number;
  /** Set by the per-type endpoints (/v1/track …); batch items carry their own type. */
  type?: MessageType;
  defaults?: BatchDefaults;
  /** Byte size of the item when already known (single-event bodies). */
  bytes?: number;
}

export type Normalized = { ok: true; event: ProfileEvent } | { ok: false; error: ItemError };

const MAX_ID = 256;
const MIN_TIME = Date.UTC(1990, 0, 1);
const MAX_SKEW_FUTURE = 366 * 24 * 3600 * 1000;

function fail(path: string, reason: string): Normalized {
  return { ok: false, error: itemError('CAIRN_ERR_INVALID_EVENT', { path, reason }) };
}

/**
 * Text that storage would refuse or silently alter: NUL (PostgreSQL text cannot hold it) and
 * unpaired UTF-16 surrogates (both become U+FFFD in UTF-8, so two different ids would collide).
 * Checked on every value that is stored or looked up as a column: ids, names, consent keys.
 */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
export function isStorableText(s: string): boolean {
  return !UNSTORABLE.test(s);
}
const UNSTORABLE_REASON = 'contains a NUL character or an unpaired surrogate';

function readId(v: unknown): string | undefined | null {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.length <= MAX_ID && isStorableText(v)) return v;
  return null;
}

/** Days per month in a leap year (February is corrected for common years). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/;

/**
 * ISO-8601 date-time → ms; undefined when absent; null when malformed. Parsed by hand rather than
 * with Date.parse, which rolls impossible dates over (Feb 30 → Mar 2, 24:00 → next day) and reads
 * a date-time without a zone in the server's local time; here a missing zone means UTC.
 */
function readTime(v: unknown): number | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > 64) return null;
  const m = ISO_TIME.exec(v);
  if (!m) return null;
  const n = (i: number): number => (m[i] === undefined ? 0 : Number(m[i]));
  const year = n(1);
  const month = n(2);
  const day = n(3);
  const hour = n(4);
  const minute = n(5);
  const second = n(6);
  if (month < 1 || month > 12) return null;
  const daysInMonth = (DAYS_IN_MONTH[month - 1] as number) + (month === 2 && (year % 4 !== 0 || (year % 100 === 0 && year % 400 !== 0)) ? -1 : 0);
  if (day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return null;
  const offHours = n(10);
  const offMinutes = n(11);
  if (offHours > 23 || offMinutes > 59) return null;
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  let t: number;
  if (year >= 100) t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  else {
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day); // not Date.UTC, which maps years 0–99 to 1900–1999
    d.setUTCHours(hour, minute, second, ms);
    t = d.getTime();
  }
  const offset = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (offHours * 60 + offMinutes) * 60_000;
  return t - offset;
}

function optObject(msg: Record<string, unknown>, key: string): Record<string, unknown> | undefined | null {
  const v = msg[key];
  if (v === undefined || v === null) return undefined;
  return isObject(v) ? v : null;
}

/** Every item of a request shares its receivedAt, so its text is formatted once per request. */
let lastReceivedAt = Number.NaN;
let lastReceivedAtText = '';
function receivedAtText(ms: number): string {
  if (ms !== lastReceivedAt) {
    lastReceivedAtText = isoTime(ms);
    lastReceivedAt = ms;
  }
  return lastReceivedAtText;
}

export function normalizeMessage(raw: unknown, opts: NormalizeOptions): Normalized {
  if (!isObject(raw)) return fail('message', 'expected a JSON object');
  const type = opts.type ?? raw.type;
  if (typeof type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    const guess = typeof type === 'string' ? closest(type, MESSAGE_TYPES) : undefined;
    return fail('type', `expected one of ${MESSAGE_TYPES.join(', ')}${type === undefined ? '' : `, got ${JSON.stringify(type).slice(0, 40)}`}${guess ? ` (did you mean "${guess}"?)` : ''}`);
  }
  const t = type as MessageType;
  if (opts.bytes !== undefined && opts.bytes > MAX_EVENT_BYTES) return { ok: false, error: itemError('CAIRN_ERR_EVENT_TOO_LARGE', { size: opts.bytes, limit: MAX_EVENT_BYTES }) };

  const userId = readId(raw.userId);
  if (userId === null) return fail('userId', `expected a string of at most ${MAX_ID} characters or a number (no NUL or unpaired surrogates)`);
  const anonymousId = readId(raw.anonymousId);
  if (anonymousId === null) return fail('anonymousId', `expected a string of at most ${MAX_ID} characters or a number (no NUL or unpaired surrogates)`);
  const messageIdIn = readId(raw.messageId);
  if (messageIdIn === null) return fail('messageId', `expected a string of at most ${MAX_ID} characters (no NUL or unpaired surrogates)`);

  const context = optObject(raw, 'context');
  if (context === null) return fail('context', 'expected an object');
  const integrations = optObject(raw, 'integrations');
  if (integrations === null) return fail('integrations', 'expected an object');
  const properties = optObject(raw, 'properties');
  if (properties === null) return fail('properties', 'expected an object');
  const traits = optObject(raw, 'traits');
  if (traits === null) return fail('traits', 'expected an object');

  let name: string | null = null;
  let previousId: string | undefined;
  switch (t) {
    case 'track': {
      if (typeof raw.event !== 'string' || raw.event.trim() === '') return fail('event', 'a track call needs the event name as a non-empty string');
      if (raw.event.length > 200) return fail('event', 'the event name is longer than 200 characters');
      if (!isStorableText(raw.event)) return fail('event', `the event name ${UNSTORABLE_REASON}`);
      name = raw.event;
      break;
    }
    case 'page':
    case 'screen': {
      if (raw.name !== undefined && raw.name !== null && typeof raw.name !== 'string') return fail('name', 'expected a string');
      if (typeof raw.name === 'string' && !isStorableText(raw.name)) return fail('name', UNSTORABLE_REASON);
      name = typeof raw.name === 'string' ? raw.name : null;
      break;
    }
    case 'group': {
      const g = readId(raw.groupId);
      if (g === undefined || g === null) return fail('groupId', 'a group call needs groupId');
      break;
    }
    case 'alias': {
      const p = readId(raw.previousId);
      if (p === undefined || p === null) return fail('previousId', 'an alias call needs previousId');
      if (userId === undefined) return fail('userId', 'an alias call needs userId');
      previousId = p;
      break;
    }
    case 'identify':
      break;
  }
  if (userId === undefined && anonymousId === undefined) return fail('userId', 'every message needs userId or anonymousId');

  // Timestamps (Segment spec): receivedAt is the server's; timestamp is the client's if given,
  // else corrected for device clock skew as receivedAt - (sentAt - originalTimestamp).
  const timestampIn = readTime(raw.timestamp);
  if (timestampIn === null) return { ok: false, error: itemError('CAIRN_ERR_INVALID_TIMESTAMP', { path: 'timestamp', value: JSON.stringify(raw.timestamp).slice(0, 60) }) };
  const original = readTime(raw.originalTimestamp);
  if (original === null) return { ok: false, error: itemError('CAIRN_ERR_INVALID_TIMESTAMP', { path: 'originalTimestamp', value: JSON.stringify(raw.originalTimestamp).slice(0, 60) }) };
  const sentRaw = raw.sentAt ?? opts.defaults?.sentAt;
  const sentAt = readTime(sentRaw);
  if (sentAt === null) return { ok: false, error: itemError('CAIRN_ERR_INVALID_TIMESTAMP', { path: 'sentAt', value: JSON.stringify(sentRaw).slice(0, 60) }) };
  const receivedAt = opts.receivedAt;
  let ts: number;
  if (timestampIn !== undefined) ts = timestampIn;
  else if (original !== undefined && sentAt !== undefined) ts = receivedAt - (sentAt - original);
  else ts = original ?? receivedAt;
  if (ts < MIN_TIME || ts > receivedAt + MAX_SKEW_FUTURE) return { ok: false, error: itemError('CAIRN_ERR_INVALID_TIMESTAMP', { path: 'timestamp', value: `${new Date(ts).toISOString()} (out of range: 1990 to one year ahead)` }) };

  // Without batch defaults the message's own objects are stored as they are: nothing below mutates
  // them, and a copy would serialize to the same text.
  const mergedContext = opts.defaults?.context ? { ...opts.defaults.context, ...(context ?? {}) } : context;
  const mergedIntegrations = opts.defaults?.integrations ? { ...opts.defaults.integrations, ...(integrations ?? {}) } : integrations;
  const messageId = messageIdIn ?? `cairn-${uuidv7(receivedAt)}`;

  // Consent from identify traits ($consent) and Segment's context.consent.categoryPreferences.
  let consent: ConsentInput[] | undefined;
  let cleanTraits = traits;
  if (traits && CONSENT_TRAIT in traits) {
    const parsed = readConsent(traits[CONSENT_TRAIT], opts.model, `traits.${CONSENT_TRAIT}`);
    if ('error' in parsed) return { ok: false, error: parsed.error };
    consent = parsed.entries;
    cleanTraits = { ...traits };
    delete cleanTraits[CONSENT_TRAIT];
  }
  const prefs = mergedContext && isObject(mergedContext.consent) ? mergedContext.consent.categoryPreferences : undefined;
  if (isObject(prefs)) {
    const fromPrefs = readCategoryPreferences(prefs, opts.model);
    if ('error' in fromPrefs) return { ok: false, error: fromPrefs.error };
    consent = [...(consent ?? []), ...fromPrefs.entries];
  }

  const message: Record<string, unknown> = { type: t, messageId };
  if (userId !== undefined) message.userId = userId;
  if (anonymousId !== undefined) message.anonymousId = anonymousId;
  if (t === 'track') message.event = name;
  if ((t === 'page' || t === 'screen') && name !== null) message.name = name;
  if (t === 'page' && typeof raw.category === 'string') message.category = raw.category;
  if (t === 'group') message.groupId = readId(raw.groupId);
  if (t === 'alias') message.previousId = previousId;
  if (properties) message.properties = properties;
  if (cleanTraits) message.traits = cleanTraits;
  if (mergedContext) message.context = mergedContext;
  if (mergedIntegrations) message.integrations = mergedIntegrations;
  message.timestamp = isoTime(ts);
  if (original !== undefined) message.originalTimestamp = isoTime(original);
  if (sentAt !== undefined) message.sentAt = isoTime(sentAt);
  message.receivedAt = receivedAtText(receivedAt);

  const identities = extractIdentities(opts.model, message);
  const unstorable = identities.find((i) => !isStorableText(i.value));
  if (unstorable) return fail(unstorable.kind, `the ${unstorable.kind} ${UNSTORABLE_REASON}`);
  if (identities.length === 0 && previousId === undefined) {
    return fail('userId', `no identity key of this workspace is present (keys: ${opts.model.identity.keys.map((k) => k.name).join(', ')})`);
  }
  // The 32 KB limit is on the event as the client sent it. Serializing every raw item only to
  // measure it doubled the cost of normalization, so the raw item is measured only when the
  // stored form is near the limit (normalization adds a few hundred bytes at most, apart from
  // batch-level context, which does not count against the item).
  const payload = JSON.stringify(message);
  if (payload.length * 3 > MAX_EVENT_BYTES - 4096 && Buffer.byteLength(payload) > MAX_EVENT_BYTES - 4096) {
    const size = opts.bytes ?? Buffer.byteLength(JSON.stringify(raw));
    if (size > MAX_EVENT_BYTES) return { ok: false, error: itemError('CAIRN_ERR_EVENT_TOO_LARGE', { size, limit: MAX_EVENT_BYTES }) };
  }
  const event: ProfileEvent = {
    source: opts.source,
    messageId,
    type: t,
    name,
    ts,
    receivedAt,
    identities,
    payload,
  };
  if (previousId !== undefined) event.previousId = previousId;
  if (t === 'identify' && cleanTraits) event.traits = cleanTraits;
  if (properties) event.properties = properties;
  if (consent && consent.length > 0) event.consent = consent;
  return { ok: true, event };
}

const STATUSES = ['granted', 'denied', 'withdrawn'] as const;

function checkPurpose(model: WorkspaceModel, purpose: string, path: string): ItemError | undefined {
  if (model.consent.purposes.size === 0 || model.consent.purposes.has(purpose)) return undefined;
  const guess = closest(purpose, model.consent.purposes.keys());
  return itemError('CAIRN_ERR_UNKNOWN_PURPOSE', { purpose, suggestion: `${guess ? ` — did you mean "${guess}"?` : ''} (at ${path})` });
}

/** Reads consent given as { purpose: { channel: status } }, { purpose: status } or a list of entries. */
export function readConsent(v: unknown, model: WorkspaceModel, path: string): { entries: ConsentInput[] } | { error: ItemError } {
  const bad = (where: string, reason: string) => ({ error: itemError('CAIRN_ERR_INVALID_CONSENT', { path: where, reason }) });
  const entries: ConsentInput[] = [];
  const push = (purpose: string, channel: string, status: unknown, wording: unknown, where: string) => {
    if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) return bad(where, `status must be granted, denied or withdrawn`);
    if (wording !== undefined && wording !== null && typeof wording !== 'string') return bad(where, 'wording_version must be a string');
    if (![purpose, channel, typeof wording === 'string' ? wording : ''].every(isStorableText)) return bad(where, `the purpose, channel or wording_version ${UNSTORABLE_REASON}`);
    const err = checkPurpose(model, purpose, where);
    if (err) return { error: err };
    entries.push({ purpose, channel, status: status as ConsentInput['status'], wordingVersion: typeof wording === 'string' ? wording : null });
    return undefined;
  };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      const where = `${path}.${i}`;
      if (!isObject(e) || typeof e.purpose !== 'string') return bad(where, 'expected { purpose, channel, status }');
      const channel = e.channel === undefined ? '*' : e.channel;
      if (typeof channel !== 'string') return bad(where, 'channel must be a string');
      const r = push(e.purpose, channel, e.status, e.wording_version ?? e.wordingVersion, where);
      if (r) return r;
    }
    return { entries };
  }
  if (!isObject(v)) return bad(path, 'expected an object or a list');
  for (const [purpose, val] of Object.entries(v)) {
    const where = `${path}.${purpose}`;
    if (typeof val === 'string') {
      const r = push(purpose, '*', val, undefined, where);
      if (r) return r;
    } else if (isObject(val)) {
      for (const [channel, status] of Object.entries(val)) {
        if (channel === 'wording_version') continue;
        const r = push(purpose, channel, status, val.wording_version, `${where}.${channel}`);
        if (r) return r;
      }
    } else return bad(where, 'expected a status or { channel: status }');
  }
  return { entries };
}

function readCategoryPreferences(prefs: Record<string, unknown>, model: WorkspaceModel): { entries: ConsentInput[] } | { error: ItemError } {
  const entries: ConsentInput[] = [];
  for (const [category, granted] of Object.entries(prefs)) {
    if (typeof granted !== 'boolean') return { error: itemError('CAIRN_ERR_INVALID_CONSENT', { path: `context.consent.categoryPreferences.${category}`, reason: 'expected true or false' }) };
    const purpose = model.consent.categoryMap[category] ?? [...model.consent.purposes.keys()].find((p) => p.toLowerCase() === category.toLowerCase());
    if (purpose === undefined) continue; // categories the workspace does not map are not purposes it records
    entries.push({ purpose, channel: '*', status: granted ? 'granted' : 'denied', wordingVersion: null });
  }
  return { entries };
}
