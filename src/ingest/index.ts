export { IngestPipeline, type ItemOutcome, type IngestEvents, type PipelineOptions } from './pipeline.js';
export { ThreadCommitter, writerThreadAvailable } from './writer.js';
export { commitGroup, inlineCommitter, type CommitRequest, type CommitResult, type CommittedWorkspace, type Committer } from './commit.js';
export { normalizeMessage, readConsent, isStorableText, MESSAGE_TYPES, MAX_EVENT_BYTES, MAX_BATCH_BYTES, CONSENT_TRAIT, type MessageType, type Normalized, type NormalizeOptions, type BatchDefaults } from './segment.js';
export { readBody, parseJson, jsonDepth, MAX_DEPTH } from './body.js';
export { ingestMessages, type ItemResult, type TrackingResult } from './tracking.js';
export { mapPayload, ruleMatches, type MappingResult } from './connectors/index.js';
export { importFile, detectFormat, IMPORT_FORMATS, DEFAULT_BATCH, type ImportFormat, type ImportOptions, type ImportProgress, type ImportResult, type ImportRuntime, type RejectedRow } from './import/index.js';
