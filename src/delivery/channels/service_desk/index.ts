/** The service-desk channel: suggestions in the agent's customer view. */
export { ServiceDeskAdapter } from './adapter.js';
export { insertSuggestion, listSuggestions, resolveSuggestion, type Suggestion } from './suggestions.js';
