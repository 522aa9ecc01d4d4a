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
export {
  checkDeploymentSettings,
  type DeploymentCheckInput,
  deploymentSettingsOf,
  type DeploymentSettings,
  DeploymentSettingsSchema,
  type ServingModel,
} from './serving-checks';
export { derivedMaxModelLen } from './vllm-checks';
export { parseVllmArgs, type VllmArgs } from './vllm-args';
export { countingStore, type ReadStats } from './io';
export { formatParameters } from './config-checks';
