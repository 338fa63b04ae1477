export * from './schema.js';
export { parseBlueprint, loadBlueprintFile, codeFrame, BlueprintError, BlueprintLocator, type BlueprintIssue, type LoadedBlueprint } from './load.js';
export { resolveModel, DEFAULT_IDENTITY_KEYS, type WorkspaceModel, type ResolvedIdentityKey, type ResolvedComputedTrait, type ResolvedStage, type ResolvedOffer, type ResolvedPlacement, type ResolvedSuppression, type ResolvedOfferCap } from './model.js';
export { PRESET_RULES, PRESET_NAMES } from './presets.js';
export { collectConditions, collectTemplates, blueprintSymbols, type BlueprintCondition, type ConditionKind, type BlueprintTemplate, type BlueprintSymbols } from './collect.js';
export { checkBlueprintTemplates, scalarPosition, type CheckedBlueprintTemplates } from './templates.js';
export { lintBlueprint, checkLintRuleIds, LINT_RULES, LINT_RULE_IDS, type LintFinding, type LintSeverity, type LintRule, type LintResult, type LintOptions } from './lint.js';
