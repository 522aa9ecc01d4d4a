/**
 * garden-deploy as a library, for services that start and follow deployments: connect, start
 * (validated locally first), progress, watch, cancel, rollback, teardown, list; plus the
 * `DeploymentSpec` schema and the types of what the workflows report.
 */
export * from './client';
export * from './spec';
export { DEFAULT_TASK_QUEUE } from './constants';
/** Payload encryption, for services that create their own Temporal clients or workers. */
export {
  AesGcmCodec,
  CodecConfigError,
  Keyring,
  PayloadDecryptionError,
  dataConverterFromEnv,
} from './codec';
/** The custom search attribute keys, for services building their own visibility queries. */
export * as searchAttributes from './search-attributes';
export { DEPLOY_STAGES, STEP_NAMES } from './workflows/types';
export type {
  DeployProgress,
  DeployStage,
  DeploymentOutcome,
  DeploymentResult,
  StepName,
  StepProgress,
  StepStatus,
  TeardownResult,
} from './workflows/types';
export type {
  CleanupOutcome,
  DeploymentResources,
  SmokeResult,
  ValidationSummary,
} from './activities/contract';
