export { JourneyEngine, type JourneyEngineDeps, type JourneyEngineOptions, type JourneyEngineEvents, type JourneyLogger, type JourneyWorkspace } from './engine.js';
export { resolveJourneys, type ResolvedJourney, type ResolvedJourneys, type ResolvedStep, type ResolvedExit } from './model.js';
export { parseCron, fieldsAt, type Cron, type CronFields } from '../core/index.js';
export { nextLocalTime, wallToUtc } from './time.js';
export { splitHash, posOf, type EnqueueMessages, type EntryResult, type EntryRefusal, type Instance, type TriggerEvent } from './unit.js';
export { listCustomerJourneys, type JourneyInstanceView } from './repository.js';
export { JourneyWebhookSender, journeyWebhookSecret, type JourneyWebhookDeps, type JourneyWebhookOptions, type JourneyWebhookEvents } from './webhooks.js';
