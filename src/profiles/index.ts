export { ProfileUnit, type ProfileEvent, type ProfileRow, type IdentityLogRow } from './unit.js';
export { extractIdentities, parseIdentity, normalizeIdentity, identityKey, type Identity } from './identity.js';
export { applyTrait, mergeTraits, traitValues, wins, type TraitValue, type Traits } from './traits.js';
export * as computed from './computed.js';
export type { ComputedState } from './computed.js';
export { currentConsent, hasConsent, type ConsentInput, type ConsentEntry, type ConsentState, type ConsentStatus } from './consent.js';
export {
  applyProfileEvents,
  profileLockKey,
  findCustomerId,
  getProfile,
  getTimeline,
  getConsentLedger,
  getIdentityLog,
  recomputeComputedTraits,
  countProfiles,
  type Profile,
  type TimelineEntry,
  type Page,
} from './repository.js';
export { buildEvalInput, isReachable, type EvalInputOptions } from './view.js';
export { evaluateSegments, updateSegmentMemberships, recomputeSegments, recomputeStages, segmentSizes, getSegmentMemberships, getSegmentHistory, type SegmentChange } from './segments.js';
export { evaluateStages, stageSizes, getCustomerStages, getStageHistory, primaryLifecycle, type StageChange } from './stages.js';
