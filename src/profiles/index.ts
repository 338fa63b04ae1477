export { ProfileUnit, type ProfileEvent, type ProfileRow, type IdentityLogRow, type CommittedUnit } from './unit.js';
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
export { evaluateSegments, evaluateProfiles, loadProfiles, reevaluateProfiles, updateSegmentMemberships, recomputeSegments, recomputeStages, segmentSizes, getSegmentMemberships, getSegmentHistory, type SegmentChange, type EvaluationChanges, type EvaluateOptions } from './segments.js';
export { evaluateStages, stageSizes, getCustomerStages, getStageHistory, primaryLifecycle, type StageChange } from './stages.js';
export { nextChange, timePlan, TIME_GRID_MS, type TimePlan } from './due.js';
export { SegmentSweeper, sweepWorkspace, type SweepOptions, type SweepResult, type SweepLogger, type SegmentSweeperDeps } from './sweep.js';
export { MERGE_RULES, mergeEpoch, type CustomerTable, type MergeRule } from './merge.js';
export { loadCustomerFacts, type CustomerFacts } from './facts.js';
