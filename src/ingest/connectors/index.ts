export { mapPayload, ruleMatches, MappingError, type MappingResult } from './mapping.js';
