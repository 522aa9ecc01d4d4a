export * from './machines';
export * from './report';
export * from './rules';
export {
  InvalidValidationOptionsError,
  type ValidateOptions,
  ValidateOptionsSchema,
  type ValidationPhase,
  type ValidationProgress,
  validateModel,
  validateStore,
} from './validate';
export { DEFAULT_CONTEXT_LENGTH } from './sizing';
export { countingStore, type ReadStats } from './io';
export { formatParameters } from './config-checks';
