export {
  importFile,
  detectFormat,
  IMPORT_FORMATS,
  DEFAULT_BATCH,
  MAX_BATCH,
  type ImportFormat,
  type ImportOptions,
  type ImportProgress,
  type ImportResult,
  type ImportRuntime,
} from './importer.js';
export { type RejectedRow } from './error-report.js';
