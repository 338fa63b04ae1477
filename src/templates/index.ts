/**
 * Liquid templates for offer and message content. Every template is parsed once (at blueprint
 * load and when a content block is compiled) and rendered synchronously on one safely configured
 * engine: no file system, strict filters, lenient variables (fallbacks with `default`), time,
 * memory and output limits, dates in the customer's time zone. See docs/templates.md.
 */
export {
  compileContentBlock,
  renderTemplate,
  analyzeTemplate,
  missingVariables,
  hasLiquid,
  renderScope,
  TEMPLATE_ROOTS,
  type TemplateVars,
  type TemplateScope,
  type RenderedContent,
  type CompiledContent,
  type VariantTrace,
  type VariantCheck,
  type MissingVariable,
} from './content.js';
export { TemplateError, isTemplateError, templateFrame, lineColumn, type TemplateErrorCode } from './errors.js';
export { TEMPLATE_LIMITS, CAIRN_FILTERS, filterNames, customerLocale, canonicalLocale, type TemplateReference } from './engine.js';
