/**
 * Local emulator of the Vertex AI (Model Garden deploy, endpoints, deployModel and traffic splits,
 * models, operations, prediction), Compute Engine (PSC consumer side), Cloud Monitoring (Vertex
 * prediction metrics, quota usage), Cloud Quotas (serving GPU limits) and Cloud Logging (serving
 * container lines) REST surface garden-deploy uses, with token exchange for ADC, fault injection
 * and an admin API. See `startEmulator`.
 */
export { startEmulator, type RunningEmulator } from './server';
export {
  DEFAULT_EMULATOR_PORT,
  EmulatorConfigError,
  EmulatorConfigSchema,
  TimingSchema,
  parseEmulatorConfig,
  readEmulatorConfigFile,
  type EmulatorConfig,
  type EmulatorConfigInput,
  type EmulatorOptions,
  type Timing,
  type TimingInput,
} from './options';
export {
  FaultConfigSchema,
  FaultRuleSchema,
  type FaultAction,
  type FaultConfigInput,
  type FaultRuleInput,
} from './faults';
export { writeEmulatorCredentials, STS_PATH } from './auth';
export {
  EmulatorAdminClient,
  EmulatorAdminError,
  type EmulatorResources,
  type EmulatorServed,
  type EmulatorStats,
  type IssuedToken,
} from './admin-client';
export { CALL_SERVICES, type CallRate, type CallService, type SecondCount } from './call-rates';
export { StateFileError, projectNumberFor } from './state';
export { DEFAULT_GPU_QUOTA, SERVING_QUOTAS, type QuotaSettingInput, type QuotaView } from './quotas';
export { dedicatedEndpointDns } from './vertex';
export {
  checkProtoJson,
  parseProtoJson,
  roundTripProtoJson,
  lookupMessageType,
  vertexProtoRoot,
  ProtoJsonError,
  V1BETA1,
  type FieldViolation,
  type ProtoJsonCheck,
} from './protos';
