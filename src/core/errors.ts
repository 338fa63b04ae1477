/**
 * The catalogue of Cairn's coded errors. Every error a user can see has a stable code, an HTTP
 * status and a message template; `docs/errors.md` documents each one and a test keeps the two in
 * sync. Tests assert on codes, never on message text.
 *
 * Templates use `{name}` placeholders filled from the error's params.
 */
export const ERRORS = {
  // Configuration and startup
  CAIRN_ERR_CONFIG: { status: 500, message: 'Invalid configuration:\n{violations}', hint: 'Fix the listed environment variables and start again.' },
  CAIRN_ERR_DATABASE_URL: { status: 500, message: 'Unsupported database URL "{url}"', hint: 'Use a file path, sqlite:PATH, or postgres://user@host:port/db.' },

  // Authentication
  CAIRN_ERR_AUTH_MISSING: { status: 401, message: 'No API key given', hint: 'Send the write key as the HTTP Basic user (password empty) or as "writeKey" in the body; secret keys as "Authorization: Bearer KEY".' },
  CAIRN_ERR_AUTH_INVALID: { status: 401, message: 'The API key is unknown or revoked', hint: 'Create a key with `cairn keys create`.' },
  CAIRN_ERR_AUTH_SCOPE: { status: 403, message: 'This key may not {action}', hint: 'Write keys can only send events and ask for decisions (without explain); use a secret key for reads and administration.' },

  // Request bodies
  CAIRN_ERR_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than {limit} bytes{after}', hint: 'Split the batch; events are limited to 32 KB each and batches to 500 KB.' },
  CAIRN_ERR_EVENT_TOO_LARGE: { status: 413, message: 'The event is {size} bytes; the limit is {limit} bytes', hint: 'Move large data out of the event; 32 KB is the limit per event.' },
  CAIRN_ERR_INVALID_JSON: { status: 400, message: 'The body is not valid JSON: {reason}', hint: 'Send a JSON object encoded in UTF-8.' },
  CAIRN_ERR_INVALID_UTF8: { status: 400, message: 'The body is not valid UTF-8 (first bad byte at offset {offset})', hint: 'Encode the JSON body as UTF-8.' },
  CAIRN_ERR_TOO_DEEP: { status: 400, message: 'The JSON nests deeper than {limit} levels', hint: 'Flatten the properties; Cairn accepts at most 32 levels of nesting.' },
  CAIRN_ERR_FORBIDDEN_KEY: { status: 400, message: 'The key "{key}" is not allowed in a body', hint: 'Rename the property; __proto__ and constructor.prototype are refused to protect the server.' },
  CAIRN_ERR_BAD_ENCODING: { status: 415, message: 'Content-Encoding "{encoding}" is not supported', hint: 'Send the body uncompressed or gzip/deflate compressed.' },
  CAIRN_ERR_BAD_COMPRESSION: { status: 400, message: 'The {encoding} body could not be decompressed: {reason}', hint: 'Check the Content-Encoding header matches the body.' },
  CAIRN_ERR_MEDIA_TYPE: { status: 415, message: 'Content-Type "{type}" is not supported', hint: 'Send application/json (text/plain is accepted for browser beacons).' },
  CAIRN_ERR_VALIDATION: { status: 400, message: '{path}: {reason}', hint: 'See /openapi.json for the expected shape.' },
  CAIRN_ERR_NOT_FOUND: { status: 404, message: '{what} not found', hint: '' },

  // Events (per item in a batch)
  CAIRN_ERR_INVALID_EVENT: { status: 400, message: '{path}: {reason}', hint: 'Each event needs "type" and userId or anonymousId; see the Segment tracking spec.' },
  CAIRN_ERR_INVALID_TIMESTAMP: { status: 400, message: '{path} is not a usable ISO-8601 date-time: {value}', hint: 'Send timestamps like 2026-11-23T10:00:00.000Z.' },
  CAIRN_ERR_BATCH_EMPTY: { status: 400, message: 'The batch holds no events', hint: 'Send {"batch": [ ...events ]}.' },
  CAIRN_ERR_BATCH_REJECTED: { status: 400, message: 'None of the {count} events in the batch was valid', hint: 'See "errors" for the reason of each item.' },
  CAIRN_ERR_UNKNOWN_PURPOSE: { status: 400, message: 'Consent purpose "{purpose}" is not declared in the blueprint{suggestion}', hint: 'Declare it under consent.purposes.' },
  CAIRN_ERR_INVALID_CONSENT: { status: 400, message: '{path}: {reason}', hint: 'Consent needs a purpose, a channel ("*" for all) and a status: granted, denied or withdrawn.' },

  // Connectors
  CAIRN_ERR_UNKNOWN_SOURCE: { status: 404, message: 'No webhook source "{source}" in this workspace{suggestion}', hint: 'Declare it under sources in the blueprint.' },
  CAIRN_ERR_MAPPING: { status: 400, message: 'Source "{source}": {reason}', hint: 'Check the payload against the source mapping in the blueprint.' },
  CAIRN_ERR_NO_MAPPING_MATCH: { status: 422, message: 'Source "{source}": no mapping rule matches this payload{detail}', hint: 'Add a rule whose "when" matches, or stop sending this kind of payload.' },

  // Import
  CAIRN_ERR_IMPORT_FORMAT: { status: 400, message: 'Cannot tell the format of "{file}"', hint: 'Use a .ndjson/.jsonl file of events or a .csv file of profiles, or pass --format.' },
  CAIRN_ERR_IMPORT_ROW: { status: 400, message: 'Row {row}: {reason}', hint: '' },

  // Blueprint
  CAIRN_ERR_BLUEPRINT_YAML: { status: 400, message: '{file}:{line}:{column}: {reason}', hint: 'Fix the YAML syntax.' },
  CAIRN_ERR_BLUEPRINT_SCHEMA: { status: 400, message: '{file}:{line}:{column}: {reason}', hint: 'See docs/blueprint.md for every allowed key.' },
  CAIRN_ERR_BLUEPRINT_REFERENCE: { status: 400, message: '{file}:{line}:{column}: {reason}', hint: 'Declare what is referenced, or fix the name.' },
  CAIRN_ERR_BLUEPRINT_SEGMENT_CYCLE: { status: 400, message: '{file}:{line}:{column}: {reason}', hint: 'A segment cannot depend on itself through in_segment(), directly or through other segments: membership would then depend on the order of evaluation. Move the shared part into a segment that the others read.' },
  CAIRN_ERR_LINT_RULE: { status: 400, message: 'Unknown lint rule "{rule}"{suggestion}', hint: 'See docs/lint.md for the rules; `cairn lint --rule ID` takes their ids.' },

  // Conditions (CEL). The condition domain raises these with the offset in the expression; a
  // blueprint reports them at file:line:column. Kept identical to src/conditions/errors.ts (tested).
  CAIRN_ERR_CONDITION_SYNTAX: { status: 400, message: 'Condition syntax error at offset {offset}: {reason}', hint: 'Conditions are CEL expressions, e.g. count("Order Completed", "60d") >= 3 && traits.plan == "plus".' },
  CAIRN_ERR_CONDITION_TYPE: { status: 400, message: 'Condition type error at offset {offset}: {reason}', hint: 'Compare like with like (int with int or double, string with string); a condition must give a bool; event names, windows and filters must be literals.' },
  CAIRN_ERR_CONDITION_UNKNOWN: { status: 400, message: 'Condition refers to an undeclared {kind} "{name}" at offset {offset}{suggestion}', hint: 'Declare it in the blueprint (traits, events, segments, stages, consent purposes, channels) or fix the name.' },
  CAIRN_ERR_CONDITION_LIMIT: { status: 400, message: 'Condition exceeds a limit at offset {offset}: {reason}', hint: 'Split the condition into segments, or shorten lists; limits protect evaluation time.' },

  // Templates (Liquid). Raised with the line and column inside the template; a blueprint reports
  // syntax errors at file:line:column instead.
  CAIRN_ERR_TEMPLATE_SYNTAX: { status: 400, message: 'Template syntax error in {where} line {line}, column {column}: {reason}', hint: 'Templates are Liquid: {{ profile.traits.first_name | default: "there" }}; see docs/templates.md for the filters available (include, render and layout are not).' },
  CAIRN_ERR_TEMPLATE_RENDER: { status: 500, message: 'Template render error in {where} line {line}, column {column}: {reason}', hint: 'Check the filter arguments (a currency code for money, a date for date) and the values the template reads.' },
  CAIRN_ERR_TEMPLATE_UNKNOWN: { status: 400, message: 'Template in {where} refers to an unknown {kind} "{name}"{suggestion}', hint: 'A warning: the value renders empty. Templates read profile, offer, item, context, event, timezone and locale; declare traits in a source contract.' },
  CAIRN_ERR_TEMPLATE_LIMIT: { status: 500, message: 'Template exceeds a limit in {where} line {line}, column {column}: {reason}', hint: 'Shorten loops and output; templates get limited time, memory and output size (docs/templates.md).' },

  // Workspaces and profiles
  CAIRN_ERR_WORKSPACE_NOT_FOUND: { status: 404, message: 'Workspace "{workspace}" does not exist', hint: 'List workspaces with `cairn keys list` or create one.' },
  CAIRN_ERR_PROFILE_NOT_FOUND: { status: 404, message: 'No customer profile for {identity}', hint: 'Look up by id, or by identity as kind:value (email:ana@example.com).' },
  CAIRN_ERR_BAD_IDENTITY: { status: 400, message: 'Cannot read identity "{identity}"', hint: 'Use kind:value, e.g. email:ana@example.com, user_id:42, phone:+4915112345678.' },
  CAIRN_ERR_BAD_CURSOR: { status: 400, message: 'The cursor "{cursor}" is not valid', hint: 'Pass the nextCursor of the previous page unchanged.' },

  // Decisioning
  CAIRN_ERR_UNKNOWN_PLACEMENT: { status: 400, message: 'Placement "{placement}" is not declared in the blueprint{suggestion}', hint: 'Use a name from the placements section of the blueprint.' },
  CAIRN_ERR_UNKNOWN_CHANNEL: { status: 400, message: 'Channel "{channel}" is not declared in the blueprint{suggestion}', hint: 'Use a name from the channels section of the blueprint.' },
  CAIRN_ERR_DECIDE_TARGET: { status: 400, message: 'A decision needs a placement or a channel', hint: 'Send {"placement": "home_hero"} or {"channel": "email"} with the identity and context.' },
  CAIRN_ERR_UNKNOWN_OFFER: { status: 404, message: 'Offer "{offer}" is not declared in the blueprint{suggestion}', hint: 'Use a name from the offers section of the blueprint.' },
  CAIRN_ERR_NO_CONTENT: { status: 400, message: 'Offer "{offer}" has no content for {target}{available}', hint: 'Preview a key of the offer\'s content section, or leave out --placement and --channel to preview every block.' },
  CAIRN_ERR_DECIDE_IDENTITY: { status: 400, message: 'A decision needs an identity: userId, anonymousId or identity (kind:value)', hint: 'Send the same userId or anonymousId the tracking calls use; an unknown one is fine (an empty profile is used).' },

  // Delivery (contact policy gate, ledger, dispatcher)
  CAIRN_ERR_DELIVERY_REQUEST: { status: 500, message: 'Message request {where}: {reason}', hint: 'A programming error in the caller of enqueueMessages: one call gates the requests of one customer of one workspace, each with a non-empty idempotency key.' },
  CAIRN_ERR_UNKNOWN_MESSAGE_STATUS: { status: 400, message: 'Unknown message status "{status}"', hint: 'Use one of queued, sending, sent, failed, deferred, not_sent.' },

  // Channels (adapters, callbacks, links, inbox)
  CAIRN_ERR_CHANNEL_SETTING: { status: 400, message: 'Channel provider "{provider}": setting "{setting}" {reason}', hint: 'Set it under channels[].provider.settings in the blueprint (secrets as "${env:NAME}"); see docs/channels.md for each provider\'s settings.' },
  CAIRN_ERR_CHANNEL_VERIFY: { status: 400, message: '{path} (channel "{channel}", provider "{provider}"): {reason}', hint: 'Fix the provider name or its settings in the blueprint; `${env:NAME}` settings are read from the environment of the process that checks them (`cairn workspace apply`, the server). See docs/channels.md.' },
  CAIRN_ERR_CHANNEL_NO_CALLBACKS: { status: 404, message: 'Channel "{channel}" (provider {provider}) takes no callbacks', hint: 'Only providers that report delivery status or inbound messages have a callback URL; see docs/channels.md.' },
  CAIRN_ERR_CALLBACK_SIGNATURE: { status: 401, message: 'The callback for channel "{channel}" is not signed correctly: {reason}', hint: 'The provider signs callbacks with the secret in the channel settings (auth_token for twilio, secret for http); check it and the public URL (CAIRN_PUBLIC_URL) the provider calls.' },
  CAIRN_ERR_LINK_INVALID: { status: 400, message: 'The link is not valid: {reason}', hint: 'Links in messages are signed; a link that was cut, edited or signed with another secret (CAIRN_LINK_SECRET) is refused.' },
  CAIRN_ERR_UNSUBSCRIBE_NO_PURPOSE: { status: 409, message: 'Nothing to unsubscribe from: message class "{class}" needs no consent purpose in workspace "{workspace}"', hint: 'Declare a consent purpose for the class under policies.classes, or do not add unsubscribe links to its messages.' },
  CAIRN_ERR_OUTBOUND_REFUSED: { status: 400, message: 'The address {url} is refused: {reason}', hint: 'Cairn calls only public http(s) addresses; private and loopback ranges are refused unless CAIRN_OUTBOUND_ALLOW_PRIVATE=true (development only).' },
  CAIRN_ERR_IDENTITY_VERIFICATION: { status: 401, message: 'The identity {identity} is not verified: {reason}', hint: 'This in-app channel sets identity_secret: send user_hash = hex HMAC-SHA256(identity_secret, userId), computed on your server.' },

  // Journeys
  CAIRN_ERR_JOURNEY_NOT_FOUND: { status: 404, message: 'Journey "{journey}" is not declared in the blueprint{suggestion}', hint: 'Use a name from the journeys section of the blueprint (GET /v1/profiles/REF/journeys lists what a customer is in).' },
  CAIRN_ERR_JOURNEY_ENTRY_TYPE: { status: 409, message: 'Journey "{journey}" is entered on {entry}, not by API', hint: 'Only journeys with entry type api can be entered with POST /v1/journeys/NAME/enter; change the entry in the blueprint or send the triggering event.' },
  CAIRN_ERR_JOURNEY_CRON: { status: 400, message: 'The schedule "{cron}" is not a valid cron expression: {reason}', hint: 'Use five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * mon-fri" (names jan–dec and sun–sat, ranges a-b, steps */n, lists a,b).' },

  // Server state
  CAIRN_ERR_SHUTTING_DOWN: { status: 503, message: 'Cairn is shutting down', hint: 'Retry shortly; the request was not accepted.' },
  CAIRN_ERR_STORAGE_BUSY: { status: 503, message: 'The SQLite database stayed locked by another writer for {waited} ms', hint: 'Retry shortly; nothing was written. A long `cairn import` or another process on the same file holds the write lock; PostgreSQL has no such limit.' },
  CAIRN_ERR_INTERNAL: { status: 500, message: 'Internal error ({ref})', hint: 'Nothing was acknowledged; retry with the same messageId. The server log has the details under this reference.' },
} as const satisfies Record<string, { status: number; message: string; hint: string }>;

export type ErrorCode = keyof typeof ERRORS;

export type ErrorParams = Record<string, string | number | undefined>;

function fill(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = params[name];
    return v === undefined ? '' : String(v);
  });
}

/** An error a user caused or can fix; carries a catalogue code and an HTTP status. */
export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly params: ErrorParams;
  readonly details: unknown;

  constructor(code: ErrorCode, params: ErrorParams = {}, details?: unknown) {
    super(fill(ERRORS[code].message, params));
    this.name = 'CairnError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.params = params;
    this.details = details;
  }

  /** Raises a per-item error value as an exception (single-item endpoints). */
  static fromItem(e: ItemError): CairnError {
    const err = new CairnError(e.code);
    err.message = e.message;
    return err;
  }

  get hint(): string {
    return ERRORS[this.code].hint;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: unknown } {
    const out: { code: ErrorCode; message: string; hint?: string; details?: unknown } = { code: this.code, message: this.message };
    if (this.hint) out.hint = this.hint;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

/** A per-item problem, as a value (batches report these instead of failing). */
export interface ItemError {
  code: ErrorCode;
  message: string;
}

export function itemError(code: ErrorCode, params: ErrorParams = {}): ItemError {
  return { code, message: fill(ERRORS[code].message, params) };
}

export function isCairnError(e: unknown): e is CairnError {
  return e instanceof CairnError;
}

/** For exhaustive switches over discriminated unions. */
export function assertUnreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
