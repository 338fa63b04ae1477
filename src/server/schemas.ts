import Type from 'typebox';

/**
 * HTTP shapes, declared once for validation and the OpenAPI document. Tracking bodies are
 * documented here but validated per message by ingest (one bad message must not reject a batch).
 */
export const ErrorBody = Type.Object(
  {
    success: Type.Literal(false),
    code: Type.String({ description: 'A CAIRN_ERR_… code from docs/errors.md.' }),
    message: Type.String(),
    hint: Type.Optional(Type.String()),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'Error', description: 'Every error response.' },
);

const Common = {
  messageId: Type.Optional(Type.String({ maxLength: 256, description: 'Unique per source; retries with the same id are stored once (7-day window by default).' })),
  userId: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  anonymousId: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  timestamp: Type.Optional(Type.String({ format: 'date-time', description: 'When it happened. If absent: receivedAt − (sentAt − originalTimestamp).' })),
  originalTimestamp: Type.Optional(Type.String({ format: 'date-time' })),
  sentAt: Type.Optional(Type.String({ format: 'date-time' })),
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  integrations: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  writeKey: Type.Optional(Type.String({ description: 'Alternative to HTTP Basic auth.' })),
};

export const IdentifyBody = Type.Object({ ...Common, traits: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Traits; "$consent" is reserved for consent: { purpose: { channel: status } }.' })) });
export const TrackBody = Type.Object({ ...Common, event: Type.String({ minLength: 1, maxLength: 200 }), properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())) });
export const PageBody = Type.Object({ ...Common, name: Type.Optional(Type.String()), category: Type.Optional(Type.String()), properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())) });
export const GroupBody = Type.Object({ ...Common, groupId: Type.Union([Type.String(), Type.Number()]), traits: Type.Optional(Type.Record(Type.String(), Type.Unknown())) });
export const AliasBody = Type.Object({ ...Common, previousId: Type.Union([Type.String(), Type.Number()]) });
export const BatchBody = Type.Object({
  batch: Type.Array(Type.Record(Type.String(), Type.Unknown(), { description: 'Messages, each with "type".' })),
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Applied to every message without its own keys.' })),
  integrations: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  sentAt: Type.Optional(Type.String({ format: 'date-time' })),
  writeKey: Type.Optional(Type.String()),
});

export const TrackResponse = Type.Object({ success: Type.Literal(true), duplicate: Type.Optional(Type.Boolean()) });
export const ItemError = Type.Object({ index: Type.Integer(), messageId: Type.Optional(Type.String()), code: Type.String(), message: Type.String() });
export const BatchResponse = Type.Object({
  success: Type.Boolean(),
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  rejected: Type.Integer(),
  errors: Type.Array(ItemError),
});

export const ProfileRef = Type.Object({ ref: Type.String({ description: 'A customer id, or an identity as kind:value (email:ana@example.com).' }) });
export const TimelineQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String()),
  source: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
});
export const ConsentBody = Type.Object({
  purpose: Type.String({ minLength: 1 }),
  channel: Type.Optional(Type.String({ minLength: 1, description: 'Default "*" (every channel).' })),
  status: Type.Union([Type.Literal('granted'), Type.Literal('denied'), Type.Literal('withdrawn')]),
  source: Type.Optional(Type.String({ description: 'Where it was given, e.g. preference-center; default api.' })),
  wording_version: Type.Optional(Type.String()),
  occurred_at: Type.Optional(Type.String({ format: 'date-time' })),
  messageId: Type.Optional(Type.String({ maxLength: 256 })),
});
