/**
 * Real-time decisioning: candidates by placement or channel, eligibility, consent and suppression,
 * offer caps, arbitration, explanation, and the decision log. See docs/decisioning.md.
 */
export { DecisionService, listDecisions, getDecision, type DecideInput, type DecidedOffer, type DecisionResult, type LoggedDecision, type DecisionServiceOptions } from './service.js';
export { arbitrate, evaluateOffer, compareEvaluated, NO_PROPENSITY, REASON_CODES, type ReasonCode, type Step, type StepName, type CandidateExplanation, type Propensity, type Subject, type DecideContext, type Evaluated, type DecisionOutcome } from './engine.js';
export { CapCounts, periodStart, OFFER_VIEWED, OFFER_CLICKED, EXPOSURE_EVENTS } from './caps.js';
export { planOf, candidatesFor, type DecisionPlan } from './plan.js';
export { contentVars, offerBlock, channelContentKey, type ContentInput } from './content.js';
export { previewOffer, type PreviewInput, type OfferPreview, type PreviewBlock, type PreviewMissing } from './preview.js';
