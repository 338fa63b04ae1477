export * from './schema.js';
export { parseBlueprint, loadBlueprintFile, codeFrame, BlueprintError, BlueprintLocator, type BlueprintIssue, type LoadedBlueprint } from './load.js';
export { resolveModel, DEFAULT_IDENTITY_KEYS, type WorkspaceModel, type ResolvedIdentityKey, type ResolvedComputedTrait, type ResolvedStage } from './model.js';
export { PRESET_RULES, PRESET_NAMES } from './presets.js';
export { collectConditions, collectTemplates, blueprintSymbols, type BlueprintCondition, type ConditionKind, type BlueprintTemplate, type BlueprintSymbols } from './collect.js';
